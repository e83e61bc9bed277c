"""The capacity file ``config/capacites.csv``: loading and validation messages."""

from __future__ import annotations

import pytest

from flows.capacites import ACTEURS, load_capacites, parse_capacites
from flows.settings import CONFIG_DIR, REFERENCE_DIR, ConfigError

HEADER = "elsm;acteur;dossiers_par_semaine\n"
ELSMS = {"31", "64B", "82"}


def parse(body: str, name: str = "capacites.csv"):
    from pathlib import Path

    return parse_capacites(HEADER + body, Path(name), ELSMS)


def test_shipped_file_covers_the_sample_elsms_for_every_actor():
    caps = load_capacites(CONFIG_DIR / "capacites.csv", REFERENCE_DIR / "elsm.csv")
    assert caps.elsms == {"31", "64B", "82"}
    for elsm in caps.elsms:
        assert {a for (e, a) in caps.par_file if e == elsm} == set(ACTEURS)
    # Sized by the ELSM's size: 31 large, 64B medium, 82 small.
    total = {e: sum(n for (x, _), n in caps.par_file.items() if x == e) for e in caps.elsms}
    assert total["31"] > total["64B"] > total["82"] > 0


def test_valid_lines_become_typed_capacities():
    caps = parse("31;TECH;40\n\n64B;MC;0\n")
    assert caps.par_file == {("31", "TECH"): 40, ("64B", "MC"): 0}
    assert caps.rows()[0] == {"elsm": "31", "acteur": "TECH", "dossiers_par_semaine": 40}


def test_unknown_elsm_names_file_and_line():
    with pytest.raises(
        ConfigError,
        match=r"capacites.csv, ligne 3 : ELSM inconnu « 99 » \(absent du référentiel elsm.csv\)",
    ):
        parse("31;TECH;40\n99;TECH;4\n")


def test_unknown_actor():
    with pytest.raises(
        ConfigError,
        match=r"capacites.csv, ligne 2 : acteur inconnu « MEDECIN » \(attendu : TECH, CSAM, ISM, MC\)",
    ):
        parse("31;MEDECIN;4\n")


@pytest.mark.parametrize("value", ["-3", "2.5", "dix", "", "٣"])
def test_negative_or_non_integer_number(value):
    with pytest.raises(
        ConfigError,
        match=rf"capacites.csv, ligne 2 : dossiers_par_semaine doit être un entier positif ou nul \(lu : « {value} »\)",
    ):
        parse(f"31;TECH;{value}\n")


def test_duplicate_line_names_both_lines():
    with pytest.raises(
        ConfigError,
        match=r"capacites.csv, ligne 4 : doublon de la ligne 2 \(ELSM 31, acteur TECH\)",
    ):
        parse("31;TECH;40\n31;CSAM;10\n31;TECH;45\n")


def test_wrong_header_and_field_count():
    from pathlib import Path

    with pytest.raises(ConfigError, match=r"capacites.csv, ligne 1 : en-tête attendu"):
        parse_capacites("elsm,acteur,dossiers\n31,TECH,4\n", Path("capacites.csv"), ELSMS)
    with pytest.raises(ConfigError, match=r"ligne 2 : 2 champ\(s\) au lieu de 3"):
        parse("31;TECH\n")


def test_all_errors_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        parse("99;TECH;4\n31;XX;4\n31;MC;-1\n")
    message = str(info.value)
    assert "ligne 2 : ELSM inconnu" in message
    assert "ligne 3 : acteur inconnu" in message
    assert "ligne 4 : dossiers_par_semaine" in message


def test_missing_file_and_bom(tmp_path):
    with pytest.raises(ConfigError, match="fichier de capacités introuvable"):
        load_capacites(tmp_path / "absent.csv", REFERENCE_DIR / "elsm.csv")
    path = tmp_path / "capacites.csv"
    path.write_text("\ufeff" + HEADER + "82;ISM;3\n", encoding="utf-8")
    assert load_capacites(path, REFERENCE_DIR / "elsm.csv").par_file == {("82", "ISM"): 3}

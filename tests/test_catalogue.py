"""The RU catalogue: the shipped defaults, the safe condition language, refused catalogues."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest
import yaml

from flows.settings import CONFIG_DIR, CiblageParams
from flows.target import load_catalogue
from transforms.catalogue import (
    ARRETS_FIELDS,
    CODE_FIELDS,
    EXCLUSION_PARAMETERS,
    CatalogueError,
    check_expression,
    parse_catalogue,
)
from transforms.marts.ciblage import ciblage

SHIPPED = CONFIG_DIR / "catalogue_ru.yml"


def test_the_shipped_catalogue_is_the_spec_table():
    cat = load_catalogue(SHIPPED)
    table = [(c.code, c.rang, c.acteur, c.acteur_repli) for c in cat.codes]
    assert table == [
        ("RU05", 1, "CSAM", "TECH"),
        ("RU10", 2, "MC", "ISM"),
        ("RU04", 3, "CSAM", "TECH"),
        ("RU03", 4, "MC", "CSAM"),
        ("RU06", 5, "TECH", "CSAM"),
        ("RU09", 6, "ISM", "MC"),
        ("RU11", 7, "MC", "ISM"),
        ("RU08", 8, "TECH", "CSAM"),
        ("RU12", 9, "ISM", "MC"),
        ("RU02", 10, "TECH", "CSAM"),
        ("RU07", 11, "TECH", "CSAM"),
        ("RU01", 12, "CSAM", "TECH"),
    ]
    assert cat.code("RU05").libelle == "IJ de plus de 14 mois sans action PDP"
    assert [c.code for c in cat.codes if c.utilise_score] == ["RU01"]
    assert [e.motif for e in cat.exclusions] == ["deces", "action_recente", "en_attente"]
    assert cat.reperes == {
        "PSY": 90,
        "RHU": 45,
        "TRA": 60,
        "ONC": 180,
        "CAR": 90,
        "INF": 15,
        "GRO": 60,
        "AUT": 45,
    }


def test_exclusion_parameters_are_the_settings_thresholds():
    assert set(EXCLUSION_PARAMETERS) == {f.name for f in dataclasses.fields(CiblageParams)}


def test_the_fields_are_the_arrets_interface():
    """When the arrets contract exists (issue 3), it has every field with a compatible type."""
    from expectations.contract import CONTRACTS_DIR, load_contract

    if not (CONTRACTS_DIR / "arrets.yml").exists():
        pytest.skip("contrat arrets pas encore écrit")
    contract = load_contract("arrets")
    family = {"SMALLINT": "INTEGER", "BIGINT": "INTEGER", "INTEGER": "INTEGER"}
    for name, dtype in ARRETS_FIELDS.items():
        theirs = contract.column(name).type
        theirs = "DOUBLE" if theirs.startswith("DECIMAL") else family.get(theirs, theirs)
        assert theirs == dtype, name


@pytest.mark.parametrize(
    "text",
    [
        "risque = 'MAL' and duree_jours between 21 and 60 and score >= 0.5",
        "not coalesce(action_pdp, false) and jours_ij >= 426",
        "mtf_cat in ('PSY', 'RHU') or least(duree_jours, ij_3ans) > 10 * 2",
        "derniere_action_dte is not null and as_of - derniere_action_dte > 90",
        "abs(ratio_pairs_prescripteur - 1) >= 0.5 or greatest(age, 0) < -1",
    ],
)
def test_allowed_conditions(text):
    cond = check_expression(text, CODE_FIELDS, {}, "catalogue_ru.yml : code X")
    assert cond.champs <= set(CODE_FIELDS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jours_ijj >= 426", "champ inconnu « jours_ijj »"),
        ("duree_jours > (select max(duree_jours) from arrets)", "construction non permise"),
        ("risque in (select risque from arrets)", "sous-requête interdite"),
        ("upper(risque) = 'MAL'", "fonction non permise « upper »"),
        ("read_csv('/etc/passwd') is null", "fonction non permise"),
        ("a.duree_jours > 1", "seuls les noms de champs simples"),
        ("duree_jours > $seuil", "paramètre inconnu « $seuil »"),
        ("duree_jours + 1", "n'est pas une condition vrai/faux"),
        ("duree_jours >= 90; drop table arrets", "construction non permise"),
        ("duree_jours >=", "condition illisible"),
        ("case when ald then true end", "non permise « case »"),
        ("risque like 'M%'", "construction non permise"),
        ("", "condition vide"),
    ],
)
def test_refused_conditions_say_why(text, message):
    with pytest.raises(CatalogueError, match=r"^catalogue_ru\.yml : code X : ") as err:
        check_expression(text, CODE_FIELDS, {}, "catalogue_ru.yml : code X")
    assert message in str(err.value)


def _raw() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def _code(raw: dict, code: str) -> dict:
    return next(c for c in raw["codes"] if c["code"] == code)


def _set(code: str, **values):
    def edit(raw):
        _code(raw, code).update(values)

    return edit


def _duplicate_code(raw):
    raw["codes"].append({**_code(raw, "RU07"), "rang": 40})


def _unknown_key(raw):
    _code(raw, "RU07")["seuil"] = 3


def _bad_motif(raw):
    raw["exclusions"][0]["motif"] = "vacances"


def _bad_exclusion_parameter(raw):
    raw["exclusions"][1]["condition"] = "jours_depuis_derniere_action <= $jours"


def _bad_repere(raw):
    raw["reperes"]["XXX"] = 30


def _bad_repere_value(raw):
    raw["reperes"]["PSY"] = -3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("RU03", condition="duree_jour >= 90"), "code RU03 : champ inconnu « duree_jour »"),
        (_duplicate_code, "code RU07 : code en double"),
        (_set("RU07", rang=1), "code RU07 : rang 1 en double (déjà pris par RU05)"),
        (_set("RU02", acteur="SECRETAIRE"), "code RU02 : acteur inconnu « SECRETAIRE »"),
        (_set("RU02", acteur_repli="DRSM"), "code RU02 : acteur inconnu « DRSM »"),
        (_set("RU02", acteur_repli="TECH"), "code RU02 : l'acteur de repli doit différer"),
        (
            _set("RU06", condition="ij_3ans >= (select 300)"),
            "code RU06 : construction non permise",
        ),
        (_set("RU06", condition="sqrt(ij_3ans) > 17"), "code RU06 : fonction non permise"),
        (_set("RU09", valide_du="2025-13-01"), "code RU09 : date invalide pour valide_du"),
        (
            _set("RU09", valide_du=dt.date(2026, 1, 1), valide_au=dt.date(2025, 1, 1)),
            "code RU09 : dates de validité invalides",
        ),
        (_set("RU09", rang="premier"), "code RU09 : rang invalide"),
        (_set("RU09", libelle=""), "code RU09 : clé « libelle » manquante"),
        (_unknown_key, "code RU07 : clé(s) inconnue(s) : seuil"),
        (_bad_motif, "motif d'exclusion inconnu 'vacances'"),
        (_bad_exclusion_parameter, "exclusion action_recente : paramètre inconnu « $jours »"),
        (_bad_repere, "repère de la catégorie inconnue « XXX »"),
        (_bad_repere_value, "repère PSY invalide"),
    ],
)
def test_a_catalogue_with_an_error_is_refused_naming_file_and_code(tmp_path, edit, message):
    raw = _raw()
    edit(raw)
    path = tmp_path / "catalogue_ru.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    assert str(err.value).startswith("catalogue_ru.yml : ")
    assert message in str(err.value)


def test_a_missing_or_unreadable_file_is_refused(tmp_path):
    with pytest.raises(CatalogueError, match="introuvable"):
        load_catalogue(tmp_path / "absent.yml")
    bad = tmp_path / "catalogue_ru.yml"
    bad.write_text("codes: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"catalogue_ru\.yml : YAML invalide"):
        load_catalogue(bad)
    with pytest.raises(CatalogueError, match="section « codes » manquante"):
        parse_catalogue({"reperes": {}}, "catalogue_ru.yml")


def test_a_pilot_changes_the_targeting_by_editing_the_file_alone(tmp_path):
    """Retire RU07, add RU13, lower RU02's threshold: targeting follows, no code change."""
    from tests.test_ciblage import PARAMS, D, arret, frame

    arrets = frame(
        arret("A1", nb_arrets_courts_6m=3),
        arret("A2", duree_jours=40),
        arret("A3", nb_prolongations=4, age=58),
    )
    before = ciblage(arrets, load_catalogue(SHIPPED), D, PARAMS)
    assert dict(zip(before["arret_id"], before["code_ru"], strict=True)) == {"A1": "RU07"}

    text = SHIPPED.read_text(encoding="utf-8")
    start = text.index("  - code: RU07")
    end = text.index("  - code: RU01")
    text = text[:start] + text[end:]  # RU07 retired
    text = text.replace("duree_jours between 45 and 60", "duree_jours between 40 and 60")
    text = text.replace(
        "exclusions:",
        "  - code: RU13\n"
        "    rang: 13\n"
        "    libelle: Prolongations répétées après 55 ans\n"
        "    condition: nb_prolongations >= 4 and age >= 55\n"
        "    acteur: ISM\n"
        "    acteur_repli: CSAM\n"
        "    valide_du: 2026-11-01\n\n"
        "exclusions:",
    )
    edited = tmp_path / "catalogue_ru.yml"
    edited.write_text(text, encoding="utf-8")
    cat = load_catalogue(edited)
    assert [c.code for c in cat.codes][-2:] == ["RU01", "RU13"]
    after = ciblage(arrets, cat, D, PARAMS)
    assert after.select("arret_id", "code_ru", "acteur").rows() == [
        ("A2", "RU02", "TECH"),
        ("A3", "RU13", "ISM"),
    ]
    # RU13 is valid only from 1 November 2026.
    earlier = arrets.with_columns(pl.lit(dt.date(2026, 10, 31)).alias("as_of"))
    assert ciblage(earlier, cat, dt.date(2026, 10, 31), PARAMS)["arret_id"].to_list() == ["A2"]

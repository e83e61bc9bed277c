"""One test per quarantine rule of docs/regles.md, through ``ingest_paths``.

Each file has three lines: a valid neighbour, the line breaking exactly one rule, another
valid neighbour. The defective line (physical line 3) must be quarantined with that rule
alone; its neighbours accepted; and lines read = accepted + quarantined.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from test_ingest_fixtures import (
    ACTIONS_HEADER,
    IJ_HEADER,
    NIR_1,
    NIR_CORSE,
    TEST_KEY,
    action_line,
    checked_variants,
    csv_text,
    ij_line,
)

from flows.ingest import ingest_paths
from flows.settings import DataPaths
from transforms.raw.schema import ACTIONS_RULES, IJ_RULES

WRONG_KEY = NIR_1[:13] + f"{(int(NIR_1[13:]) + 1) % 100:02d}"

# rule -> changes to the middle line (LIG_NUM L2) that break that rule and no other.
IJ_CASES: list[tuple[str, dict]] = [
    ("champ_obligatoire", {"PFS_PRE_NUM": None}),
    ("champ_obligatoire", {"BSE_REM_MNT": None}),
    ("format_invalide", {"ORG_AFF_COD": "31"}),
    ("format_invalide", {"LIG_NUM": "X" * 31}),
    ("format_invalide", {"ARR_NUM": "A" * 21}),
    ("format_invalide", {"BEN_RNG_GEM": "0"}),
    ("format_invalide", {"BEN_RES_DPT": "31"}),
    ("format_invalide", {"PFS_PRE_NUM": "1000123456"}),
    ("format_invalide", {"IJR_EMP_NUM": "123456789"}),
    ("format_invalide", {"PRS_ACT_QTE": "trente"}),
    ("format_invalide", {"BSE_REM_MNT": "1244,105"}),
    ("format_invalide", {"BSE_REM_PRU": "41;47".replace(";", "x")}),
    ("date_invalide", {"EXE_SOI_DTF": "30/02/2024"}),
    ("date_invalide", {"PRE_PRE_DTD": "2024-13-01"}),
    ("date_invalide", {"ARR_DEB_DTE": "1/2/2024"}),
    ("date_hors_plage", {"ARR_DEB_DTE": "31/12/1999"}),
    ("date_hors_plage", {"PRE_PRE_DTD": "16/03/2024"}),
    ("fin_prescrite", {"PRE_FIN_DTE": "27/02/2024"}),
    ("fin_prescrite", {"PRE_FIN_DTE": "01/03/2027"}),
    ("nir_exclusif", {"BEN_NIR": None}),
    ("nir_exclusif", {"BEN_NIR_PSA": "PSA0000000001"}),
    ("nir_format", {"BEN_NIR": NIR_1[:11]}),
    ("nir_format", {"BEN_NIR": "3" + NIR_1[1:]}),
    ("nir_cle", {"BEN_NIR": WRONG_KEY}),
    ("nir_sexe", {"BEN_SEX_COD": "2"}),
    ("nir_annee", {"BEN_NAI_ANN": "1986"}),
    ("periode_ordre", {"EXE_SOI_DTD": "02/03/2024", "PRS_ACT_NBR": "0"}),
    (
        "periode_duree",
        {
            "EXE_SOI_DTF": "03/03/2024",
            "PRS_ACT_NBR": "32",
            "PRS_ACT_QTE": "32",
            "BSE_REM_MNT": "1327,04",
        },
    ),
    ("debut_arret_ordre", {"ARR_DEB_DTE": "02/02/2024"}),
    ("quantite_periode", {"PRS_ACT_NBR": "29", "PRS_ACT_QTE": "29", "BSE_REM_MNT": "1202,63"}),
    ("denombrement_quantite", {"PRS_ACT_NBR": "31"}),
    ("signe_montant", {"BSE_REM_MNT": "-1244,10"}),
    ("montant_coherent", {"BSE_REM_MNT": "1245,11"}),
    ("prix_unitaire", {"BSE_REM_PRU": "260,00", "BSE_REM_MNT": "7800,00"}),
    ("code_inconnu", {"PRE_NAT": "X"}),
    ("code_inconnu", {"MTF_CAT": "ZZZ"}),
    ("code_inconnu", {"TPT_IND": "o"}),
    ("code_inconnu", {"RGO_ASU_NAT": "15"}),
    ("code_inconnu", {"PRS_NAT_REF": "99999"}),
    ("code_inconnu", {"ATT_NAT": "4"}),
    ("organisme_inconnu", {"ORG_AFF_COD": "999"}),
    ("doublon", {"LIG_NUM": "L1"}),
]

ACTION_CASES: list[tuple[str, dict]] = [
    ("champ_obligatoire", {"ACT_TYP": None}),
    ("format_invalide", {"ACT_NUM": "X" * 31}),
    ("format_invalide", {"ORG_AFF_COD": "3111"}),
    ("format_invalide", {"BEN_RNG_GEM": "10"}),
    ("date_invalide", {"ACT_DTE": "32/01/2024"}),
    ("date_hors_plage", {"ACT_DTE": "16/03/2024"}),
    ("date_hors_plage", {"ACT_DTE": "1999-12-31"}),
    ("nir_exclusif", {"BEN_NIR": None}),
    ("nir_format", {"BEN_NIR": NIR_1 + "0"}),
    ("nir_cle", {"BEN_NIR": WRONG_KEY}),
    ("code_inconnu", {"ACT_RES": "PEUT_ETRE"}),
    ("code_inconnu", {"ACT_ACTEUR": "MEDECIN"}),
    ("elsm_inconnu", {"ELSM": "99"}),
    ("organisme_inconnu", {"ORG_AFF_COD": "999"}),
    ("doublon", {"ACT_NUM": "ACT1"}),
]


def _ingest(tmp_path: Path, name: str, text: str | bytes) -> tuple[DataPaths, dict]:
    folder = tmp_path / "arrivee"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    paths = DataPaths(tmp_path / "donnees")
    summary = ingest_paths(paths, [path], TEST_KEY)
    (result,) = summary.fichiers
    assert result.lignes_lues == result.lignes_acceptees + result.lignes_quarantaine
    return paths, result.as_dict()


def _quarantine(paths: DataPaths) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(
            "select ligne, regles, details, texte_original from quarantaine order by ligne"
        ).fetchall()
    finally:
        con.close()


def _accepted(paths: DataPaths, table: str, column: str) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(f"select {column}, ligne from {table} order by ligne").fetchall()
    finally:
        con.close()


def test_every_rule_has_a_case():
    assert {r for r, _ in IJ_CASES} | {"encodage", "entete", "nombre_champs"} == set(IJ_RULES)
    assert {r for r, _ in ACTION_CASES} | {"encodage", "entete", "nombre_champs"} == set(
        ACTIONS_RULES
    )


@pytest.mark.parametrize(
    ("rule", "changes"), IJ_CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(IJ_CASES)]
)
def test_ij_rule(tmp_path, rule, changes):
    rows = [ij_line(LIG_NUM="L1"), ij_line(**{"LIG_NUM": "L2", **changes}), ij_line(LIG_NUM="L3")]
    paths, result = _ingest(tmp_path, "ij_paiements_20240315_311.csv", csv_text(rows, IJ_HEADER))
    quarantined = _quarantine(paths)
    assert [(q[0], q[1]) for q in quarantined] == [(3, [rule])]
    assert result["regles"] == {rule: 1}
    assert result["lignes_lues"] == 3 and result["lignes_acceptees"] == 2
    assert [a[1] for a in _accepted(paths, "lignes_ij", "LIG_NUM")] == [2, 4]
    _ligne, _, details, texte = quarantined[0]
    assert details.startswith(f"{rule} : ")
    assert NIR_1 not in texte and NIR_1 not in details


@pytest.mark.parametrize(
    ("rule", "changes"), ACTION_CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(ACTION_CASES)]
)
def test_action_rule(tmp_path, rule, changes):
    rows = [
        action_line(ACT_NUM="ACT1"),
        action_line(**{"ACT_NUM": "ACT2", **changes}),
        action_line(ACT_NUM="ACT3"),
    ]
    paths, result = _ingest(tmp_path, "actions_20240315_31.csv", csv_text(rows, ACTIONS_HEADER))
    assert [(q[0], q[1]) for q in _quarantine(paths)] == [(3, [rule])]
    assert result["regles"] == {rule: 1}
    assert [a[1] for a in _accepted(paths, "actions", "ACT_NUM")] == [2, 4]


def test_nombre_champs_stops_other_rules(tmp_path):
    text = csv_text(
        [ij_line(LIG_NUM="L1"), ij_line(LIG_NUM="L2"), ij_line(LIG_NUM="L3")], IJ_HEADER
    )
    lines = text.split("\n")
    lines[2] = lines[2] + ";champ en trop;31/02/2024"  # also an impossible date: not evaluated
    lines[3] = ";".join(lines[3].split(";")[:-2])  # two fields short
    paths, result = _ingest(tmp_path, "ij_paiements_20240315_311.csv", "\n".join(lines))
    quarantined = _quarantine(paths)
    assert [(q[0], q[1]) for q in quarantined] == [(3, ["nombre_champs"]), (4, ["nombre_champs"])]
    assert "33 champ(s) au lieu de 31" in quarantined[0][2]
    assert "29 champ(s) au lieu de 31" in quarantined[1][2]
    assert result["regles"] == {"nombre_champs": 2}
    assert NIR_1 not in quarantined[0][3]


def test_action_nombre_champs(tmp_path):
    text = csv_text([action_line(ACT_NUM=f"ACT{i}") for i in (1, 2, 3)], ACTIONS_HEADER)
    lines = text.split("\n")
    lines[2] = lines[2] + ";en trop"
    paths, _result = _ingest(tmp_path, "actions_20240315_31.csv", "\n".join(lines))
    assert [(q[0], q[1]) for q in _quarantine(paths)] == [(3, ["nombre_champs"])]


def test_details_name_values(tmp_path):
    """French details name the column and the values (never the NIR)."""
    rows = [
        ij_line(LIG_NUM="L1", BEN_NIR=WRONG_KEY),
        ij_line(LIG_NUM="L2", EXE_SOI_DTD="02/03/2024", PRS_ACT_NBR="0"),
        ij_line(LIG_NUM="L3", ORG_AFF_COD="999", PRE_NAT="Z"),
    ]
    paths, _ = _ingest(tmp_path, "ij_paiements_20240315_311.csv", csv_text(rows, IJ_HEADER))
    q = _quarantine(paths)
    expected_key = NIR_1[13:]
    assert q[0][2] == f"nir_cle : BEN_NIR : clé {WRONG_KEY[13:]} attendue {expected_key}"
    assert q[1][2] == "periode_ordre : EXE_SOI_DTD 02/03/2024 après EXE_SOI_DTF 01/03/2024"
    assert q[2][1] == ["code_inconnu", "organisme_inconnu"]
    assert q[2][2] == (
        "code_inconnu : PRE_NAT : valeur « Z » hors liste | organisme_inconnu : "
        "ORG_AFF_COD 999 absent du référentiel des organismes (elsm.csv)"
    )
    for row in q:
        assert NIR_1 not in row[3] and WRONG_KEY not in row[3]
        assert re.search(r"18507\*{10}", row[3])


def test_rule_boundaries_accepted(tmp_path):
    """Values exactly at the limits are accepted (≤ 1 € gap, 31-day period, 3 years, 250 €)."""
    rows = [
        ij_line(LIG_NUM="L1", BSE_REM_MNT="1245,10"),  # gap of exactly 1,00 €
        ij_line(LIG_NUM="L2", EXE_SOI_DTF="02/03/2024", PRS_ACT_NBR="31", PRS_ACT_QTE="31",
                BSE_REM_MNT="1285,57"),  # 31 days
        ij_line(LIG_NUM="L3", PRE_FIN_DTE="28/02/2027"),  # exactly 3 years
        ij_line(LIG_NUM="L4", BSE_REM_PRU="250", BSE_REM_MNT="7500"),
        ij_line(LIG_NUM="L5", PRS_ACT_NBR="-30", BSE_REM_MNT="-1244,10"),  # cancellation
        ij_line(LIG_NUM="L6", PRS_ACT_NBR="0", BSE_REM_MNT="12,00"),  # money, no days
        ij_line(LIG_NUM="L7", BEN_NIR=NIR_CORSE, BEN_SEX_COD="2", BEN_NAI_ANN="1992"),
        ij_line(LIG_NUM="L8", BEN_NIR=None, BEN_NIR_PSA="PSA0000000001"),
        ij_line(LIG_NUM="L9", BEN_RNG_GEM=None, TPT_IND=None, ALD_IND=None, DCD_IND=None),
        ij_line(LIG_NUM="L10", PRE_FIN_DTE="30/06/2025"),  # prescribed end after FLX_DIS_DTD
    ]  # fmt: skip
    paths, result = _ingest(tmp_path, "ij_paiements_20240315_311.csv", csv_text(rows, IJ_HEADER))
    assert _quarantine(paths) == []
    assert result["lignes_acceptees"] == 10
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    row = con.execute(
        "select BEN_RNG_GEM, TPT_IND, ALD_IND, DCD_IND from lignes_ij where LIG_NUM = 'L9'"
    ).fetchone()
    con.close()
    assert row == (1, "N", "N", "N")


def test_distinct_parsing_equals_direct_parsing(monkeypatch):
    """Large chunks parse dates/integers per distinct text: same values and flags."""
    import polars as pl

    import transforms.raw.rules as rules
    from flows.ingest import load_references
    from transforms.raw.parsing import split_fields, split_records
    from transforms.raw.schema import IJ_PAIEMENTS

    variants = checked_variants()
    text = csv_text(variants * 10, IJ_HEADER)
    fields = split_fields(split_records(text.split("\n", 1)[1], 2), IJ_HEADER)
    refs = load_references()
    monkeypatch.setattr(rules, "DISTINCT_PARSE_MIN_ROWS", 10**9)
    direct = rules.check_records(fields, IJ_PAIEMENTS, refs, len(IJ_HEADER))
    monkeypatch.setattr(rules, "DISTINCT_PARSE_MIN_ROWS", 1)
    by_distinct = rules.check_records(fields, IJ_PAIEMENTS, refs, len(IJ_HEADER))
    assert sorted(direct.columns) == sorted(by_distinct.columns)
    for name in direct.columns:
        assert direct[name].to_list() == by_distinct[name].to_list(), name
    assert direct["rejete"].to_list() == [False, True, False, True, True] * 10
    assert direct.select(pl.col("_v_BEN_NAI_ANN")).to_series()[3] is None


def test_distinct_parsing_keeps_its_codes_across_chunks_and_starts_afresh_past_its_bound(
    monkeypatch,
):
    import gc

    import polars as pl

    from transforms.raw import rules
    from transforms.raw.schema import IJ_PAIEMENTS

    spec = IJ_PAIEMENTS.column("EXE_SOI_DTD")
    chunks = [
        ["01/03/2024", None, "2024-03-02", "31/02/2024"],
        ["05/03/2024", "01/03/2024", "x", "2024-03-02"],
        ["07/03/2024", "07/03/2024", "1/3/2024", None],
    ]
    monkeypatch.setattr(rules, "MAX_CATEGORIES", 6)
    for texts in chunks * 2:
        gc.collect()  # the mapping must survive between chunks
        frame = pl.DataFrame({"EXE_SOI_DTD": texts}, schema={"EXE_SOI_DTD": pl.String})
        (by_distinct,) = rules._parse_distinct_columns(frame, [spec])
        direct = frame.select(rules._parse_expr(spec, pl.col("EXE_SOI_DTD"))).to_series()
        assert by_distinct.to_list() == direct.to_list(), texts
    assert rules._PARSED[spec].parsed.len() <= 6 + 4  # started afresh past the bound


def test_distinct_parsing_recovers_codes_given_but_never_parsed(monkeypatch):
    """A chunk coded against the mapping, then lost before parsing (an error between the
    two): later chunks still get every text parsed, including codes they do not hold."""
    import polars as pl

    from transforms.raw import rules
    from transforms.raw.schema import IJ_PAIEMENTS

    spec = IJ_PAIEMENTS.column("ARR_DEB_DTE")
    monkeypatch.setattr(rules, "_PARSED", {})  # a fresh mapping for this column
    state = rules._state(spec)
    pl.Series(["02/01/2024", "03/01/2024"]).cast(pl.Categorical(state.categories))  # lost
    for texts in (["04/01/2024", "02/01/2024"], ["03/01/2024", "05/01/2024", "x"]):
        frame = pl.DataFrame({"ARR_DEB_DTE": texts})
        (by_distinct,) = rules._parse_distinct_columns(frame, [spec])
        direct = frame.select(rules._parse_expr(spec, pl.col("ARR_DEB_DTE"))).to_series()
        assert by_distinct.to_list() == direct.to_list(), texts
    assert state.parsed.len() == 5  # 02, 03, 04, 05/01 and « x » (unreadable: null)

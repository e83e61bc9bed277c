"""Data checks (flows/checks.py, expectations/suites.py) on small hand-written tables.

One GX context is shared by the whole module (its import and set-up take a few seconds):
every test writes to the same data folder and its own DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import duckdb
import pytest

from expectations.contract import load_contract, parse_contract
from expectations.suites import describe, describe_all, rules, slice_query
from flows.checks import ChecksFailed, TableSlice, check_table, check_tables, session
from flows.settings import DataPaths

ROOT = Path(__file__).resolve().parents[1]
D = dt.date


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> DataPaths:
    return DataPaths(tmp_path_factory.mktemp("controles_donnees"))


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield c
    c.close()


def ligne(**over) -> dict:
    """A valid lignes_ij row; ``over`` replaces some values."""
    row = {
        "LIG_NUM": "L1",
        "FLX_DIS_DTD": D(2026, 11, 20),
        "ORG_AFF_COD": "311",
        "assure_id": "a" * 32,
        "BEN_RNG_GEM": 1,
        "BEN_SEX_COD": 2,
        "BEN_NAI_ANN": 1975,
        "BEN_RES_DPT": "031",
        "RGO_ASU_NAT": 10,
        "ATT_NAT": None,
        "PRS_NAT_REF": 6110,
        "ARR_NUM": "A1",
        "ARR_DEB_DTE": D(2026, 10, 1),
        "PRE_NAT": "I",
        "PRE_PRE_DTD": D(2026, 10, 1),
        "PRE_FIN_DTE": D(2026, 10, 31),
        "PFS_PRE_NUM": "PS1",
        "PSP_SPE_COD": 1,
        "PRS_MTT_NUM": None,
        "IJR_EMP_NUM": "E1",
        "EXE_SOI_DTD": D(2026, 10, 4),
        "EXE_SOI_DTF": D(2026, 10, 31),
        "PRS_ACT_NBR": 28,
        "PRS_ACT_QTE": 28,
        "BSE_REM_PRU": 42.5,
        "BSE_REM_MNT": 1190.0,
        "TPT_IND": "N",
        "ALD_IND": "N",
        "MTF_CAT": "RHU",
        "DCD_IND": "N",
        "ingestion_id": "h1",
        "fichier": "ij_20261120.csv",
        "ligne": 2,
    }
    row.update(over)
    return row


def lignes(n: int = 4, **over) -> list[dict]:
    return [ligne(LIG_NUM=f"L{i}", ligne=i + 2, assure_id=f"{i:032x}", **over) for i in range(n)]


def load(con, table: str, rows: list[dict], *, nullable: tuple[str, ...] = ()) -> None:
    """Create ``table`` from its contract's DDL and insert ``rows``."""
    contract = load_contract(table)
    con.execute(contract.ddl())
    for col in nullable:
        con.execute(f'alter table "{table}" alter column "{col}" drop not null')
    cols = contract.column_names
    sql = (
        f'insert into "{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)}) '
        f"values ({', '.join('?' for _ in cols)})"
    )
    con.executemany(sql, [[r.get(c) for c in cols] for r in rows])


def action(**over) -> dict:
    row = {
        "ACT_NUM": "X1",
        "FLX_DIS_DTD": D(2026, 11, 20),
        "ELSM": "31",
        "DOSSIER_ID": None,
        "ORG_AFF_COD": "311",
        "assure_id": "b" * 32,
        "BEN_RNG_GEM": 1,
        "ARR_NUM": "A1",
        "ACT_DTE": D(2026, 11, 18),
        "ACT_ACTEUR": "TECH",
        "ACT_TYP": "ETUDE",
        "ACT_RES": None,
        "ingestion_id": "h2",
        "fichier": "actions_20261120.csv",
        "ligne": 2,
    }
    row.update(over)
    return row


def result(report, rule: str):
    return next(r for r in report.results if r.rule == rule)


# ---------------------------------------------------------------------------------------
# Generated rules


def test_rules_are_generated_from_the_contract_with_their_severity(tmp_path):
    contract = parse_contract(
        {
            "table": "essai",
            "grain": "une ligne par id",
            "key": ["id"],
            "key_severity": "warn",
            "columns": [
                {"name": "id", "type": "VARCHAR", "required": True, "regex": "^I[0-9]$"},
                {"name": "n", "type": "SMALLINT", "min": 0, "max": 9, "severity": "warn"},
                {"name": "assure_id", "type": "VARCHAR", "accepted_values": ["x"]},
            ],
            "invariants": [{"name": "n_pair", "expression": "n % 2 = 0", "severity": "warn"}],
        },
        tmp_path / "essai.yml",
    )
    got = [(r.name, r.severity, r.masked) for r in rules(contract)]
    assert got == [
        ("colonnes_presentes", "fail", False),
        ("types_colonnes", "fail", False),
        ("obligatoire.id", "fail", False),
        ("valeurs_acceptees.assure_id", "fail", True),
        ("bornes.n", "warn", False),
        ("format.id", "fail", False),
        ("cle_unique", "warn", False),
        ("n_pair", "warn", False),
    ]
    assert rules(contract)[1].family == "texte,entier,texte"


def test_every_contract_yields_a_suite_and_a_valid_slice_query(paths):
    from expectations.contract import all_contracts
    from expectations.suites import build_suite

    session(paths)  # GX suites need an active context
    con = duckdb.connect()
    for contract in all_contracts():
        suite = build_suite(contract)
        assert [e.meta["regle"] for e in suite.expectations] == [r.name for r in rules(contract)]
        con.execute(contract.ddl())
        sql = slice_query(contract, contract.table, contract.column_names, "1 = $un")
        con.execute(sql, {"un": 1}).fetchall()  # binds: every invariant is valid SQL
        sql = slice_query(contract, contract.table, contract.column_names, key_flag=True)
        con.execute(sql).fetchall()


def test_slice_query_evaluates_invariants_and_skips_missing_columns():
    contract = load_contract("actions")
    con = duckdb.connect()
    con.execute(contract.ddl())
    sql = slice_query(contract, "actions", [c for c in contract.column_names if c != "ACT_DTE"])
    assert "regle__action_avant_mise_a_disposition" not in sql  # reads the missing ACT_DTE
    sql = slice_query(contract, "actions", contract.column_names, "ELSM = $elsm")
    load_rows = [action(), action(ACT_NUM="X2", ACT_DTE=D(2026, 11, 25))]
    cols = contract.column_names
    con.executemany(
        f"insert into actions values ({', '.join('?' for _ in cols)})",
        [[r[c] for c in cols] for r in load_rows],
    )
    rows = con.execute(sql, {"elsm": "31"}).fetchall()
    names = [d[0] for d in con.description]
    flags = [r[names.index("regle__action_avant_mise_a_disposition")] for r in rows]
    assert sorted(flags) == [False, True]
    assert names[len(cols) :] == [
        "valeur__BEN_RNG_GEM",
        "valeur__ligne",
        "regle__action_avant_mise_a_disposition",
    ]


# ---------------------------------------------------------------------------------------
# Checks on a slice


def test_clean_slice_passes_and_writes_json_and_data_docs(con, paths):
    load(con, "lignes_ij", lignes(4))
    report = check_table(con, "lignes_ij", paths, label="ingestion propre")
    assert report.success and report.rows == 4 and report.warnings == []
    assert all(r.success for r in report.results)
    assert result(report, "types_colonnes").observed == "conformes"
    assert result(report, "denombrement_borne").unexpected == 0
    body = json.loads(report.result_path.read_text(encoding="utf-8"))
    assert body["table"] == "lignes_ij" and body["rows"] == 4 and body["success"] is True
    assert report.result_path.parent == paths.checks / "resultats"
    index = paths.checks / "data_docs" / "index.html"
    assert report.docs_index == index and index.exists()
    pages = list((paths.checks / "data_docs" / "validations" / "lignes_ij").rglob("*.html"))
    assert pages, "la page de validation de lignes_ij manque dans les Data Docs"
    assert "lignes_ij" in index.read_text(encoding="utf-8")


def test_null_in_required_column_fails_naming_the_rule(con, paths):
    rows = lignes(4)
    rows[1]["PFS_PRE_NUM"] = None
    load(con, "lignes_ij", rows, nullable=("PFS_PRE_NUM",))
    with pytest.raises(ChecksFailed) as err:
        check_table(con, "lignes_ij", paths, label="prescripteur manquant")
    msg = str(err.value)
    assert msg == (
        "Contrôle lignes_ij (prescripteur manquant) échoué : règle obligatoire.PFS_PRE_NUM "
        "(PFS_PRE_NUM renseigné) — 1 ligne(s) sur 4"
    )
    r = result(err.value.reports[0], "obligatoire.PFS_PRE_NUM")
    assert r.examples == [
        {
            "ORG_AFF_COD": "311",
            "LIG_NUM": "L1",
            "FLX_DIS_DTD": "2026-11-20",
            "fichier": "ij_20261120.csv",
            "ligne": 3,
        }
    ]


def test_value_outside_accepted_values_fails(con, paths):
    load(con, "actions", [action(), action(ACT_NUM="X2", ACT_ACTEUR="DR", ligne=3)])
    with pytest.raises(ChecksFailed, match=r"règle valeurs_acceptees\.ACT_ACTEUR") as err:
        check_table(con, "actions", paths, label="acteur inconnu")
    r = result(err.value.reports[0], "valeurs_acceptees.ACT_ACTEUR")
    assert (r.unexpected, r.examples[0]["ACT_NUM"], r.examples[0]["ligne"]) == (1, "X2", 3)
    assert "1 ligne(s) sur 2" in str(err.value)


def test_value_out_of_bounds_fails(con, paths):
    rows = lignes(3)
    rows[0]["BEN_RNG_GEM"] = 12
    rows[2]["BSE_REM_PRU"] = 251.0
    load(con, "lignes_ij", rows)
    with pytest.raises(ChecksFailed) as err:
        check_table(con, "lignes_ij", paths, label="bornes")
    report = err.value.reports[0]
    assert [r.rule for r in report.failures] == ["bornes.BEN_RNG_GEM", "bornes.BSE_REM_PRU"]
    assert "règle bornes.BEN_RNG_GEM (1 ≤ BEN_RNG_GEM ≤ 9) — 1 ligne(s) sur 3" in str(err.value)


def test_regex_breach_fails(con, paths):
    load(con, "actions", [action(), action(ACT_NUM="X2", ORG_AFF_COD="31")])
    with pytest.raises(ChecksFailed) as err:
        check_table(con, "actions", paths, label="caisse")
    assert [r.rule for r in err.value.reports[0].failures] == ["format.ORG_AFF_COD"]
    assert "(ORG_AFF_COD respecte ^[0-9]{3}$) — 1 ligne(s) sur 2" in str(err.value)


def test_duplicate_key_fails(con, paths):
    rows = lignes(3)
    rows[2]["LIG_NUM"] = "L0"  # same (ORG_AFF_COD, LIG_NUM, FLX_DIS_DTD) as the first row
    load(con, "lignes_ij", rows)
    with pytest.raises(ChecksFailed) as err:
        check_table(con, "lignes_ij", paths, label="doublon")
    r = result(err.value.reports[0], "cle_unique")
    assert (r.success, r.unexpected) == (False, 2)
    assert sorted(e["ligne"] for e in r.examples) == [2, 4]
    assert (
        "règle cle_unique (clé (ORG_AFF_COD, LIG_NUM, FLX_DIS_DTD) unique) — 2 ligne(s) sur 3"
        in (str(err.value))
    )


def test_fail_invariant_raises_with_the_numbers(con, paths):
    rows = lignes(4)
    rows[3]["PRS_ACT_NBR"] = -30  # an annulment larger than the quantity
    load(con, "lignes_ij", rows)
    with pytest.raises(ChecksFailed) as err:
        check_table(con, "lignes_ij", paths, label="ingestion du 20/11")
    assert str(err.value) == (
        "Contrôle lignes_ij (ingestion du 20/11) échoué : règle denombrement_borne "
        "(abs(PRS_ACT_NBR) <= PRS_ACT_QTE) — 1 ligne(s) sur 4"
    )
    assert result(err.value.reports[0], "denombrement_borne").examples[0]["LIG_NUM"] == "L3"


WARN_CONTRACT = {
    "table": "essai_avert",
    "grain": "une ligne par id",
    "key": ["id"],
    "columns": [
        {"name": "id", "type": "VARCHAR", "required": True},
        {"name": "taux", "type": "DOUBLE"},
    ],
    "invariants": [
        {"name": "taux_au_plus_un", "expression": "taux <= 1", "severity": "warn"},
    ],
}


def test_warn_invariant_breach_warns_without_raising(con, paths, tmp_path, caplog):
    contract = parse_contract(WARN_CONTRACT, tmp_path / "essai_avert.yml")
    con.execute(contract.ddl())
    con.execute("insert into essai_avert values ('a', 0.5), ('b', 1.5), ('c', null), ('d', 2)")
    s = session(paths)
    with caplog.at_level(logging.WARNING, logger="ru.controles"):
        report = s.check(con, "essai_avert", label="capacité", contract=contract)
    assert report.success and report.failures == []
    r = result(report, "taux_au_plus_un")
    assert (r.success, r.severity, r.unexpected) == (False, "warn", 2)  # the null row passes
    assert report.warnings == [
        "Contrôle essai_avert (capacité) : règle taux_au_plus_un (taux <= 1) — 2 ligne(s) sur 4"
    ]
    assert report.warnings[0] in caplog.text


def test_where_restricts_the_checked_slice(con, paths):
    rows = lignes(3)
    bad = ligne(LIG_NUM="L9", ingestion_id="h0", PRS_ACT_NBR=99, assure_id="c" * 32)
    load(con, "lignes_ij", [*rows, bad])
    report = check_table(
        con,
        "lignes_ij",
        paths,
        where="ingestion_id in (select unnest($ids))",
        params={"ids": ["h1"]},
        label="ingestion h1",
    )
    assert report.success and report.rows == 3
    empty = check_table(
        con, "lignes_ij", paths, where="ingestion_id = $id", params={"id": "?"}, label="vide"
    )
    assert empty.success and empty.rows == 0
    with pytest.raises(ChecksFailed, match=r"denombrement_borne .* 1 ligne\(s\) sur 1$"):
        check_table(
            con,
            "lignes_ij",
            paths,
            where="ingestion_id = $id",
            params={"id": "h0"},
            label="ingestion h0",
        )


def test_no_identifying_value_in_results_or_data_docs(con, paths, tmp_path):
    rows = lignes(3)
    rows[0]["assure_id"] = "SECRET-ASSURE-1!"  # breaks format.assure_id
    rows[1]["assure_id"] = "SECRET-ASSURE-2"
    rows[1]["BEN_SEX_COD"] = 3
    rows[2]["assure_id"] = "SECRET-ASSURE-3"
    rows[2]["MTF_CAT"] = "PSYCHIATRIE"  # medical: its value is not shown either
    load(con, "lignes_ij", rows)
    with pytest.raises(ChecksFailed) as err:
        check_table(con, "lignes_ij", paths, label="confidentialite")
    report = err.value.reports[0]
    assert [r.rule for r in report.failures] == [
        "valeurs_acceptees.BEN_SEX_COD",
        "valeurs_acceptees.MTF_CAT",
        "format.assure_id",
    ]
    assert result(report, "format.assure_id").examples == [
        {
            "ORG_AFF_COD": "311",
            "LIG_NUM": "L0",
            "FLX_DIS_DTD": "2026-11-20",
            "fichier": "ij_20261120.csv",
            "ligne": 2,
        }
    ]
    written = report.result_path.read_text(encoding="utf-8")
    assert "SECRET-ASSURE" not in written and "PSYCHIATRIE" not in written
    assert "SECRET-ASSURE" not in str(err.value)
    for page in paths.checks.rglob("*"):
        if page.is_file() and page.suffix in (".html", ".json"):
            text = page.read_text(encoding="utf-8", errors="replace")
            assert "SECRET-ASSURE" not in text, page
            assert "PSYCHIATRIE" not in text, page


def test_wrong_type_and_missing_column_are_reported_not_crashed(con, paths):
    contract = load_contract("actions")
    con.execute(contract.ddl())
    con.execute("alter table actions drop column ACT_DTE")
    con.execute('alter table actions alter column "BEN_RNG_GEM" type VARCHAR')
    con.execute(
        "insert into actions by name select 'X1' as ACT_NUM, date '2026-11-20' as FLX_DIS_DTD, "
        "'31' as ELSM, '311' as ORG_AFF_COD, 'z' as assure_id, '1' as BEN_RNG_GEM, "
        "'TECH' as ACT_ACTEUR, 'ETUDE' as ACT_TYP, 'h' as ingestion_id, 'f' as fichier, "
        "2 as ligne"
    )
    with pytest.raises(ChecksFailed) as err:
        check_table(con, "actions", paths, label="schema")
    report = err.value.reports[0]
    failed = {r.rule: r for r in report.failures}
    assert set(failed) == {
        "colonnes_presentes",
        "types_colonnes",
        "obligatoire.ACT_DTE",
        "action_avant_mise_a_disposition",
    }
    assert failed["colonnes_presentes"].observed == "absente(s) : ACT_DTE"
    assert failed["types_colonnes"].observed == "BEN_RNG_GEM : texte (str) au lieu de entier"
    assert failed["action_avant_mise_a_disposition"].error == "non évaluable : colonne absente"
    assert failed["action_avant_mise_a_disposition"].unexpected is None
    assert (
        "règle colonnes_presentes (les 15 colonnes du contrat existent) — observé : "
        "absente(s) : ACT_DTE" in str(err.value)
    )


def test_large_slice_is_checked_in_chunks_with_key_uniqueness_over_the_whole_slice(con, paths):
    rows = lignes(5)
    rows[4]["LIG_NUM"] = "L0"  # duplicates the first row, in another chunk
    rows[2]["PRS_ACT_NBR"] = 40
    load(con, "lignes_ij", rows)
    report = session(paths).check(con, "lignes_ij", label="tranches", max_rows=2, chunk_rows=2)
    assert report.chunks == 3 and report.rows == 5
    assert [(r.rule, r.unexpected) for r in report.failures] == [
        ("cle_unique", 2),
        ("denombrement_borne", 1),
    ]
    assert sorted(e["ligne"] for e in result(report, "cle_unique").examples) == [2, 6]


def test_check_tables_checks_every_table_then_raises(con, paths):
    load(con, "lignes_ij", lignes(2))
    load(con, "actions", [action(), action(ACT_NUM="X2", ACT_DTE=D(2026, 12, 1))])
    before = len(list((paths.checks / "resultats").glob("*.json")))
    with pytest.raises(ChecksFailed) as err:
        check_tables(
            con,
            [
                TableSlice("lignes_ij", "nuit", "FLX_DIS_DTD <= $d", {"d": D(2026, 11, 20)}),
                TableSlice("actions", "nuit"),
            ],
            paths,
        )
    assert [r.success for r in err.value.reports] == [True, False]
    assert str(err.value).startswith("Contrôle actions (nuit) échoué : règle action_avant")
    assert len(list((paths.checks / "resultats").glob("*.json"))) == before + 2


def test_ru_check_reports_each_table_and_exits_in_error_on_a_failed_rule(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    rows = lignes(3)
    rows[1]["PRS_ACT_NBR"] = 29
    load(con, "lignes_ij", rows)
    load(con, "actions", [action()])
    con.close()
    result_ = CliRunner().invoke(app, ["check", "--data", str(tmp_path)])
    assert result_.exit_code == 1, result_.output
    assert "actions : ok — 1 ligne(s)" in result_.output
    assert "lignes_ij : échec — 3 ligne(s)" in result_.output
    assert "règle denombrement_borne (abs(PRS_ACT_NBR) <= PRS_ACT_QTE) — 1 ligne(s) sur 3" in (
        result_.output
    )
    assert len(list((tmp_path / "controles" / "resultats").glob("*.json"))) == 2
    ok = CliRunner().invoke(app, ["check", "actions", "--data", str(tmp_path)])
    assert ok.exit_code == 0, ok.output


def test_gx_results_older_than_90_days_are_pruned(tmp_path):
    import os

    from flows.checks import ChecksSession

    store = tmp_path / "controles" / "gx" / "validations" / "actions" / "nuit" / "20250101"
    store.mkdir(parents=True)
    old, recent = store / "ancien.json", store / "recent.json"
    old.write_text("{}")
    recent.write_text("{}")
    os.utime(old, (0, 0))
    ChecksSession(DataPaths(tmp_path))
    assert not old.exists() and recent.exists()


# ---------------------------------------------------------------------------------------
# Documentation


def test_describe_lists_rules_and_severities():
    text = describe(load_contract("actions"))
    assert "| `format.ORG_AFF_COD` | format | `ORG_AFF_COD respecte ^[0-9]{3}$` | bloquante |" in (
        text
    )
    assert (
        "| `cle_unique` | clé unique | `clé (ELSM, ACT_NUM, FLX_DIS_DTD) unique` | bloquante |"
        in (text)
    )


def test_docs_controles_is_up_to_date():
    doc = ROOT / "docs" / "controles.md"
    assert doc.read_text(encoding="utf-8") == describe_all(), (
        "docs/controles.md est périmé : uv run python -m expectations.suites > docs/controles.md"
    )

"""Point in time: what arrives after D never changes what is built at D; ``build_at`` keeps
each date's rows and replaces a re-built date."""

from __future__ import annotations

from datetime import date

import duckdb
from test_arrets import REF_ELSM, D, action, insert, j, ligne, params, warehouse

from expectations.contract import load_contract
from flows.build import build_at
from flows.settings import DataPaths, load_settings
from transforms.runner import arrets_at

LIGNES = [
    ligne("01/02/2026", "14/02/2026", LIG_NUM="L1", ARR_NUM="1", PRE_FIN_DTE="15/04/2026"),
    ligne(
        "15/02/2026", "28/02/2026", LIG_NUM="L2", ARR_NUM="1", PRE_FIN_DTE="15/04/2026", TPT_IND="O"
    ),
    ligne("01/03/2026", "14/03/2026", LIG_NUM="L3", assure_id="A2", PFS_PRE_NUM="P7"),
    ligne(
        "15/03/2026",
        "28/03/2026",
        LIG_NUM="L4",
        assure_id="A2",
        PFS_PRE_NUM="P7",
        PRE_FIN_DTE="20/04/2026",
    ),
]
ACTIONS = [action("10/03/2026", ACT_NUM="X1", ARR_NUM="1", ACT_ACTEUR="CSAM")]


def _later_arrivals() -> tuple[list[dict], list[dict]]:
    """Lines and actions with FLX_DIS_DTD after D (01/04/2026 and later)."""
    apres = j("01/04/2026")
    lignes = [
        # a correction of L2 (no TPT, fewer days), a cancellation of L3, a new period,
        # a death, a new chained arrêt, a new prescription ending later
        {**LIGNES[1], "FLX_DIS_DTD": apres, "PRS_ACT_NBR": 7, "TPT_IND": "N"},
        ligne(
            "01/03/2026",
            "14/03/2026",
            assure_id="A2",
            PRS_ACT_NBR=-14,
            BSE_REM_MNT=-560.0,
            FLX_DIS_DTD="02/04/2026",
        ),
        ligne(
            "01/03/2026",
            "14/03/2026",
            ARR_NUM="1",
            FLX_DIS_DTD="02/04/2026",
            PRE_PRE_DTD="01/03/2026",
            PRE_FIN_DTE="30/06/2026",
            PRE_NAT="P",
            PFS_PRE_NUM="P9",
        ),
        ligne("29/03/2026", "30/03/2026", assure_id="A2", DCD_IND="O", FLX_DIS_DTD="03/04/2026"),
        ligne("20/03/2026", "25/03/2026", assure_id="A3", FLX_DIS_DTD="05/04/2026"),
    ]
    actions = [
        # effective before D but delivered after D; a re-delivery of X1 with a PDP result
        action("25/03/2026", ARR_NUM="1", ACT_ACTEUR="MC", FLX_DIS_DTD="01/04/2026"),
        {**ACTIONS[0], "FLX_DIS_DTD": j("02/04/2026"), "ACT_TYP": "COURRIER_PDP"},
        action("02/04/2026", assure_id="A2", ACT_ACTEUR="MC"),
    ]
    return lignes, actions


def _snapshot(con: duckdb.DuckDBPyConnection, as_of: date):
    with arrets_at(con, params(as_of), REF_ELSM) as result:
        return (
            result.arrets.order("arret_id").pl(),
            result.prescripteurs.order("PFS_PRE_NUM").pl(),
        )


def test_lines_and_actions_after_d_change_nothing_at_d():
    con = warehouse(LIGNES, ACTIONS)
    arrets_avant, prescripteurs_avant = _snapshot(con, D)
    lignes, actions = _later_arrivals()
    insert(con, "lignes_ij", lignes)
    insert(con, "actions", actions)
    arrets_apres, prescripteurs_apres = _snapshot(con, D)
    assert arrets_apres.equals(arrets_avant)
    assert prescripteurs_apres.equals(prescripteurs_avant)
    assert arrets_avant.height == 2
    # ... and they do change the picture at a later date (the test data is not inert)
    arrets_plus_tard, _ = _snapshot(con, j("05/04/2026"))
    assert arrets_plus_tard.height == 3
    by_assure = {r["assure_id"]: r for r in arrets_plus_tard.to_dicts()}
    assert (by_assure["A1"]["fin_prescrite"], by_assure["A1"]["action_mc"]) == (
        j("30/06/2026"),
        True,
    )
    assert (by_assure["A1"]["tpt_en_cours"], by_assure["A1"]["action_pdp"]) == (False, True)
    assert (by_assure["A2"]["deces"], by_assure["A2"]["en_cours"]) == (True, False)
    assert by_assure["A3"]["jours_ij"] == 6


def _data_folder(tmp_path) -> DataPaths:
    paths = DataPaths(tmp_path / "donnees").ensure()
    con = duckdb.connect(str(paths.warehouse))
    for table in ("lignes_ij", "actions"):
        con.execute(load_contract(table).ddl())
    insert(con, "lignes_ij", LIGNES)
    insert(con, "actions", ACTIONS)
    con.close()
    return paths


def test_build_at_keeps_each_date_and_replaces_a_rebuilt_one(tmp_path):
    paths = _data_folder(tmp_path)
    settings = load_settings()
    first = build_at(paths, D, settings, checks=True)
    assert (first.arrets, first.arrets_en_cours, first.lignes_visibles) == (2, 2, 4)
    assert first.controles.startswith("ok")
    assert (paths.checks / "data_docs" / "index.html").exists()
    build_at(paths, j("20/03/2026"), settings, checks=False)
    again = build_at(paths, D, settings, checks=False)
    assert again.arrets == 2
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    per_date = con.execute(
        "select as_of, count(*) from arrets group by as_of order by as_of"
    ).fetchall()
    assert per_date == [(j("20/03/2026"), 2), (D, 2)]
    presc = con.execute(
        "select as_of, PFS_PRE_NUM, patients from prescripteurs order by as_of, PFS_PRE_NUM"
    ).fetchall()
    assert presc == [
        (j("20/03/2026"), "10000000001", 1),
        (j("20/03/2026"), "P7", 1),
        (D, "10000000001", 1),
        (D, "P7", 1),
    ]
    con.close()


def test_ru_build_command(tmp_path):
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    paths = _data_folder(tmp_path)
    result = CliRunner().invoke(
        app,
        ["build", "--as-of", "2026-03-31", "--data", str(paths.root), "--sans-controles", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["as_of"], summary["arrets"], summary["arrets_en_cours"]) == ("2026-03-31", 2, 2)
    assert summary["controles"] == "non exécutés"
    # default as-of: the latest FLX_DIS_DTD ingested (29/03/2026, L4 paid to 28/03)
    result = CliRunner().invoke(app, ["build", "--data", str(paths.root), "--sans-controles"])
    assert result.exit_code == 0, result.output
    assert "Arrêts au 29/03/2026" in result.stdout


def test_a_failed_check_keeps_the_previous_rows_of_the_date(tmp_path):
    import pytest

    from flows.checks import ChecksFailed

    paths = _data_folder(tmp_path)
    settings = load_settings()
    build_at(paths, D, settings, checks=False)
    # a line whose ARR_DEB_DTE lies after D (ingestion would quarantine it): debut_arret > D
    con = duckdb.connect(str(paths.warehouse))
    insert(
        con,
        "lignes_ij",
        [ligne("01/03/2026", "14/03/2026", assure_id="A9", ARR_NUM="9", ARR_DEB_DTE="01/05/2026")],
    )
    con.close()
    with pytest.raises(ChecksFailed, match="debut_avant_date"):
        build_at(paths, D, settings, checks=True)
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    rows = con.execute("select assure_id from arrets where as_of = $d order by 1", {"d": D})
    assert rows.fetchall() == [("A1",), ("A2",)]
    con.close()

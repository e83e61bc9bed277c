"""Indicators F1, P4, PDP coverage and volumes (spec §7) on hand-written rows.

Each test builds the input tables (`routage`, `actions`, `arrets`) in an in-memory DuckDB with
the columns of docs/architecture.md, runs the models through ``compute_indicators`` and spells
out the expected numerators, denominators and flags.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from expectations.contract import load_contract
from flows.indicators import (
    IndicateursParams,
    IndicatorsError,
    compute_indicators,
    indicators_at,
)
from flows.settings import DataPaths

ARRETS_DDL = """
create table arrets (
  as_of DATE, arret_id VARCHAR, assure_id VARCHAR, ORG_AFF_COD VARCHAR, elsm VARCHAR,
  drsm VARCHAR, ARR_NUM VARCHAR, risque VARCHAR, debut_arret DATE, fin_prescrite DATE,
  dernier_jour_paye DATE, jours_ij INTEGER, montant_ij DECIMAL(14,2), en_cours BOOLEAN,
  duree_jours INTEGER, nb_prolongations INTEGER, prescripteur_initial VARCHAR,
  PSP_SPE_COD SMALLINT, prescripteur_atypique BOOLEAN, ratio_pairs_prescripteur DOUBLE,
  prolongation_autre_prescripteur BOOLEAN, tpt_en_cours BOOLEAN, duree_tpt_jours INTEGER,
  ald BOOLEAN, mtf_cat VARCHAR, deces BOOLEAN, IJR_EMP_NUM VARCHAR, BSE_REM_PRU DECIMAL(12,2),
  sexe SMALLINT, age SMALLINT, ij_3ans INTEGER, nb_arrets_12m INTEGER,
  nb_arrets_courts_6m INTEGER, derniere_action_dte DATE, jours_depuis_derniere_action INTEGER,
  action_mc BOOLEAN, action_pdp BOOLEAN
)
"""

CAPACITES = [
    {"elsm": "31", "acteur": "TECH", "dossiers_par_semaine": 2},
    {"elsm": "31", "acteur": "CSAM", "dossiers_par_semaine": 1},
    {"elsm": "31", "acteur": "MC", "dossiers_par_semaine": 1},
]


def D(text: str) -> date:
    return date.fromisoformat(text)


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    for row in rows:
        cols = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        con.execute(f'insert into "{table}" ({cols}) values ({marks})', list(row.values()))


def make_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(load_contract("routage").ddl())
    con.execute(load_contract("actions").ddl())
    con.execute(ARRETS_DDL)
    return con


def arret(as_of, arret_id, assure_id, arr_num, debut, fin, **extra) -> dict:
    row = {
        "as_of": D(as_of),
        "arret_id": arret_id,
        "assure_id": assure_id,
        "ORG_AFF_COD": "311",
        "elsm": "31",
        "drsm": "Occitanie",
        "ARR_NUM": arr_num,
        "risque": "MAL",
        "debut_arret": D(debut),
        "fin_prescrite": D(fin),
        "dernier_jour_paye": D(fin),
        "jours_ij": 30,
        "en_cours": True,
        "action_pdp": False,
    }
    row.update(extra)
    return row


_seq = iter(range(1, 10_000))


def action(assure_id, act_dte, typ="ETUDE", res="ARRET_JUSTIFIE", flx=None, **extra) -> dict:
    n = next(_seq)
    row = {
        "ACT_NUM": extra.pop("ACT_NUM", f"A{n}"),
        "FLX_DIS_DTD": D(flx or act_dte),
        "ELSM": "31",
        "DOSSIER_ID": None,
        "ORG_AFF_COD": "311",
        "assure_id": assure_id,
        "BEN_RNG_GEM": 1,
        "ARR_NUM": None,
        "ACT_DTE": D(act_dte),
        "ACT_ACTEUR": "TECH",
        "ACT_TYP": typ,
        "ACT_RES": res,
        "ingestion_id": "i",
        "fichier": "actions.csv",
        "ligne": n + 1,
    }
    row.update(extra)
    return row


def route(as_of, dossier_id, arret_id, assure_id, code="RU02", acteur="TECH", **extra) -> dict:
    d = D(as_of)
    affecte = acteur is not None
    row = {
        "dossier_id": dossier_id,
        "as_of": d,
        "semaine_iso": d.strftime("%G-W%V"),
        "elsm": "31",
        "arret_id": arret_id,
        "assure_id": assure_id,
        "code_ru": code,
        "acteur": acteur,
        "rang_file": 1,
        "statut": "affecte" if affecte else "non_affecte",
        "motif": None if affecte else "capacite_atteinte",
    }
    row.update(extra)
    return row


def rows(results, table: str) -> list[dict]:
    return results[table].to_pylist()


def compute(con, as_of: str, capacites=None, **params):
    return compute_indicators(
        con, D(as_of), CAPACITES if capacites is None else capacites, IndicateursParams(**params)
    )


# ---------------------------------------------------------------- F1


def f1_db(snapshots=("2026-04-20", "2026-04-29", "2026-04-30")) -> duckdb.DuckDBPyConnection:
    """Seven dossiers routed on Monday 2 March 2026 in ELSM 31, one backlog dossier, one
    dossier routed in April in ELSM 64B, and two old ones at the edge of the 13-month window.
    """
    con = make_db()
    arrets = [
        ("A1", "U1", "N1", "2026-01-05", "2026-06-30"),
        ("A2", "U2", "N2", "2026-01-05", "2026-06-30"),
        ("A3", "U3", "N3", "2026-01-05", "2026-06-30"),
        ("A4", "U4", None, "2026-01-10", "2026-05-31"),
        ("A5", "U5", "N5", "2026-01-05", "2026-06-30"),
        ("A6", "U6", "N6", "2026-01-05", "2026-03-05"),
        ("A7", "U7", "N7", "2026-01-05", "2026-06-30"),
        ("A8", "U8", "N8", "2026-01-05", "2026-06-30"),
        ("B1", "V1", "M1", "2026-03-01", "2026-06-30"),
        ("O1", "W1", "K1", "2025-01-01", "2025-12-31"),
        ("O2", "W2", "K2", "2025-01-01", "2025-12-31"),
    ]
    for snap in snapshots:
        insert(
            con,
            "arrets",
            [
                arret(snap, *a, elsm="64B" if a[0] == "B1" else "31", ORG_AFF_COD="311")
                for a in arrets
            ],
        )
    routed = "2026-03-02"
    insert(
        con,
        "routage",
        [route(routed, f"D{i}", f"A{i}", f"U{i}") for i in range(1, 8)]
        + [route(routed, "D8", "A8", "U8", acteur=None)]
        + [route("2026-04-15", "E1", "B1", "V1", elsm="64B")]
        + [route("2025-03-10", "O1", "O1", "W1"), route("2025-04-10", "O2", "O2", "W2")],
    )
    insert(
        con,
        "actions",
        [
            # D1: effective action at D + 30 on the same ARR_NUM -> counts
            action("U1", "2026-04-01", ARR_NUM="N1"),
            # D2: effective action at D + 31 -> too late
            action("U2", "2026-04-02", ARR_NUM="N2"),
            # D3: convocation not honoured -> not effective
            action("U3", "2026-03-07", "CONVOCATION", "NON_HONORE", ARR_NUM="N3"),
            # D4: CLOE letter without result nor ARR_NUM, within the arrêt's dates -> counts
            action("U4", "2026-03-05", "COURRIER_CLOE", None),
            # D5: call still pending (empty result) -> not effective
            action("U5", "2026-03-04", "APPEL", "", ARR_NUM="N5"),
            # D6: answer carrying the dossier id, after the arrêt's fin_prescrite -> counts
            action("U6", "2026-03-12", "AVIS_SUR_PIECES", None, DOSSIER_ID="D6"),
            # D7: effective action the day before routing -> outside [D, D + 30]
            action("U7", "2026-03-01", ARR_NUM="N7"),
            # D8 is backlog: its action does not make it a routed dossier
            action("U8", "2026-03-03", ARR_NUM="N8"),
            # O2 (April 2025): effective action within 30 days
            action("W2", "2025-04-20", ARR_NUM="K2"),
        ],
    )
    return con


def test_f1_counts_actions_effective_within_30_days_of_routing():
    results = compute(f1_db(), "2026-04-20")
    assert rows(results, "indicateurs_f1") == [
        {
            "as_of": D("2026-04-20"),
            "elsm": "31",
            "mois": D("2025-04-01"),
            "dossiers_routes": 1,
            "dossiers_avec_action": 1,
            "taux": 1.0,
            "provisoire": False,
        },
        {
            "as_of": D("2026-04-20"),
            "elsm": "31",
            "mois": D("2026-03-01"),
            "dossiers_routes": 7,  # D1..D7; D8 is backlog
            "dossiers_avec_action": 3,  # D1 (D+30), D4 (CLOE by date), D6 (DOSSIER_ID)
            "taux": pytest.approx(3 / 7),
            "provisoire": True,  # 20/04 < 31/03 + 30 days
        },
        {
            "as_of": D("2026-04-20"),
            "elsm": "64B",
            "mois": D("2026-04-01"),
            "dossiers_routes": 1,
            "dossiers_avec_action": 0,
            "taux": 0.0,
            "provisoire": True,
        },
    ]


def test_f1_month_is_provisional_until_its_end_plus_30_days():
    con = f1_db()
    march = {}
    for as_of in ("2026-04-29", "2026-04-30"):
        found = [r for r in rows(compute(con, as_of), "indicateurs_f1") if r["elsm"] == "31"]
        march[as_of] = {r["mois"]: r["provisoire"] for r in found}[D("2026-03-01")]
    assert march == {"2026-04-29": True, "2026-04-30": False}


def test_f1_sees_only_actions_delivered_by_d():
    con = f1_db(snapshots=("2026-03-20", "2026-03-31"))
    # D2's pending call is re-delivered with a result on 25/03: visible from then on.
    insert(
        con,
        "actions",
        [
            action("U2", "2026-03-10", "APPEL", None, ACT_NUM="R1", flx="2026-03-10"),
            action("U2", "2026-03-10", "APPEL", "ARRET_JUSTIFIE", ACT_NUM="R1", flx="2026-03-25"),
        ],
    )

    def march_numerator(as_of):
        found = rows(compute(con, as_of), "indicateurs_f1")
        return next(r for r in found if r["mois"] == D("2026-03-01"))["dossiers_avec_action"]

    # 20/03: D4 (05/03) and D6 (12/03) only; 31/03: also D2 through its new version.
    assert (march_numerator("2026-03-20"), march_numerator("2026-03-31")) == (2, 3)


def test_f1_keeps_13_months_of_history():
    found = rows(compute(f1_db(), "2026-04-20"), "indicateurs_f1")
    assert min(r["mois"] for r in found) == D("2025-04-01")  # March 2025 left out
    shorter = rows(compute(f1_db(), "2026-04-20", historique_mois=2), "indicateurs_f1")
    assert sorted({r["mois"] for r in shorter}) == [D("2026-03-01"), D("2026-04-01")]


# ---------------------------------------------------------------- P4


def p4_db(as_of="2026-07-15") -> duckdb.DuckDBPyConnection:
    con = make_db()
    insert(
        con,
        "arrets",
        [
            # ended exactly at first action + 90 (10/04 + 90 = 09/07) -> ended
            arret(as_of, "P1", "U1", "N1", "2026-03-01", "2026-07-09"),
            # prescription running until action + 91 -> not ended
            arret(
                as_of,
                "P2",
                "U2",
                "N2",
                "2026-03-01",
                "2026-07-20",
                risque="ATMP",
                dernier_jour_paye=D("2026-07-10"),
            ),
            # first action not honoured (March); first effective one in April; ended in May
            arret(as_of, "P3", "U3", None, "2026-03-01", "2026-05-01"),
            # first effective action in May: not published before August
            arret(as_of, "P4", "U4", "N4", "2026-03-01", "2026-05-31"),
            # first effective action in March, still running
            arret(as_of, "P5", "U5", "N5", "2026-02-01", "2026-08-31"),
            # ELSM 64B: prescription ended early but a day paid at action + 95 -> not ended
            arret(
                as_of,
                "P6",
                "U6",
                "N6",
                "2026-03-01",
                "2026-05-10",
                elsm="64B",
                dernier_jour_paye=D("2026-07-14"),
            ),
        ],
    )
    insert(
        con,
        "actions",
        [
            action("U1", "2026-04-10", ARR_NUM="N1"),
            action("U1", "2026-05-10", ARR_NUM="N1"),
            action("U2", "2026-04-20", "CONVOCATION", "REPRISE_FIXEE", ARR_NUM="N2"),
            action("U3", "2026-03-20", "INVITATION", "NON_HONORE"),
            action("U3", "2026-04-05", "EMS", None),
            action("U4", "2026-05-02", ARR_NUM="N4"),
            action("U5", "2026-03-15", ARR_NUM="N5"),
            action("U5", "2026-04-12", ARR_NUM="N5"),
            action("U6", "2026-04-10", ARR_NUM="N6", ELSM="64B"),
        ],
    )
    return con


def test_p4_share_of_arrets_ended_within_90_days_of_first_action():
    found = rows(compute(p4_db(), "2026-07-15"), "indicateurs_p4")
    assert found == [
        {
            "as_of": D("2026-07-15"),
            "elsm": "31",
            "mois": D("2026-03-01"),
            "arrets_avec_action": 1,  # P5
            "arrets_termines": 0,
            "taux": 0.0,
        },
        {
            "as_of": D("2026-07-15"),
            "elsm": "31",
            "mois": D("2026-04-01"),
            "arrets_avec_action": 3,  # P1, P2, P3
            "arrets_termines": 2,  # P1 (exactly + 90), P3
            "taux": pytest.approx(2 / 3),
        },
        {
            "as_of": D("2026-07-15"),
            "elsm": "64B",
            "mois": D("2026-04-01"),
            "arrets_avec_action": 1,
            "arrets_termines": 0,
            "taux": 0.0,
        },
    ]


def test_p4_is_published_three_months_late():
    def months(as_of):
        found = rows(compute(p4_db(as_of), as_of), "indicateurs_p4")
        return sorted({r["mois"].isoformat() for r in found})

    assert months("2026-07-31") == ["2026-03-01", "2026-04-01"]
    assert months("2026-08-01") == ["2026-03-01", "2026-04-01", "2026-05-01"]


# ---------------------------------------------------------------- PDP


def test_pdp_coverage_of_arrets_with_426_ij_days_or_more():
    d = "2026-07-15"
    con = make_db()
    insert(
        con,
        "arrets",
        [
            arret(d, "L1", "U1", "N1", "2025-01-01", "2026-09-30", jours_ij=426, action_pdp=True),
            arret(d, "L2", "U2", "N2", "2025-01-01", "2026-09-30", jours_ij=425, action_pdp=True),
            arret(d, "L3", "U3", "N3", "2025-01-01", "2026-09-30", jours_ij=500),
            arret(d, "L4", "U4", "N4", "2025-01-01", "2026-09-30", jours_ij=430, action_pdp=None),
            arret(d, "L5", "U5", "N5", "2025-01-01", "2026-07-01", jours_ij=600, en_cours=False),
            arret(
                d,
                "L6",
                "U6",
                "N6",
                "2025-01-01",
                "2026-09-30",
                jours_ij=700,
                action_pdp=True,
                elsm="64B",
            ),
            # an older snapshot is not today's picture
            arret("2026-07-14", "L7", "U7", "N7", "2025-01-01", "2026-09-30", jours_ij=900),
        ],
    )
    assert rows(compute(con, d), "indicateurs_pdp") == [
        {
            "as_of": D(d),
            "elsm": "31",
            "arrets_longs": 3,
            "arrets_avec_pdp": 1,
            "taux": pytest.approx(1 / 3),
        },
        {"as_of": D(d), "elsm": "64B", "arrets_longs": 1, "arrets_avec_pdp": 1, "taux": 1.0},
    ]


# ---------------------------------------------------------------- volumes


def volumes_db() -> duckdb.DuckDBPyConnection:
    con = make_db()
    insert(
        con,
        "routage",
        [
            # week 2026-W10, Monday 02/03
            route("2026-03-02", "X1", "a1", "u1", "RU03", "MC"),
            route("2026-03-02", "X2", "a2", "u2", "RU02", "TECH"),
            route("2026-03-02", "X3", "a3", "u3", "RU02", None),
            route("2026-03-02", "X4", "a4", "u4", "RU05", "CSAM"),
            # Tuesday 03/03: X3 still waiting, one new dossier waiting
            route("2026-03-03", "X5", "a5", "u5", "RU02", "TECH"),
            route("2026-03-03", "X3", "a3", "u3", "RU02", None),
            route("2026-03-03", "X6", "a6", "u6", "RU07", None),
            # Thursday 05/03: after D, not seen
            route("2026-03-05", "X7", "a7", "u7", "RU02", "TECH"),
            # week 2026-W09
            route("2026-02-24", "Y1", "b1", "v1", "RU02", "TECH"),
            route("2026-02-24", "Y2", "b2", "v2", "RU03", None),
            # ELSM 64B has no capacity line: everything waits
            route(
                "2026-03-02", "Z1", "c1", "w1", "RU02", None, elsm="64B", motif="pas_de_capacite"
            ),
        ],
    )
    return con


def test_volumes_per_elsm_week_code_and_actor():
    found = rows(compute(volumes_db(), "2026-03-04"), "volumes")
    table = {
        (r["elsm"], r["semaine_iso"], r["axe"], r["valeur"]): (
            r["dossiers_affectes"],
            r["dossiers_en_attente"],
            r["capacite"],
            r["taux_capacite"],
        )
        for r in found
    }
    assert table == {
        ("31", "2026-W10", "total", "total"): (4, 2, 4, 1.0),
        ("31", "2026-W10", "code_ru", "RU02"): (2, 1, None, None),
        ("31", "2026-W10", "code_ru", "RU03"): (1, 0, None, None),
        ("31", "2026-W10", "code_ru", "RU05"): (1, 0, None, None),
        ("31", "2026-W10", "code_ru", "RU07"): (0, 1, None, None),
        ("31", "2026-W10", "acteur", "TECH"): (2, 0, 2, 1.0),
        ("31", "2026-W10", "acteur", "CSAM"): (1, 0, 1, 1.0),
        ("31", "2026-W10", "acteur", "MC"): (1, 0, 1, 1.0),
        ("31", "2026-W09", "total", "total"): (1, 1, 4, 0.25),
        ("31", "2026-W09", "code_ru", "RU02"): (1, 0, None, None),
        ("31", "2026-W09", "code_ru", "RU03"): (0, 1, None, None),
        ("31", "2026-W09", "acteur", "TECH"): (1, 0, 2, 0.5),
        ("31", "2026-W09", "acteur", "CSAM"): (0, 0, 1, 0.0),
        ("31", "2026-W09", "acteur", "MC"): (0, 0, 1, 0.0),
        ("64B", "2026-W10", "total", "total"): (0, 1, None, None),
        ("64B", "2026-W10", "code_ru", "RU02"): (0, 1, None, None),
    }
    assert len(found) == len(table)


def test_volumes_history_is_limited_in_weeks():
    found = rows(compute(volumes_db(), "2026-03-04", historique_semaines=1), "volumes")
    assert {r["semaine_iso"] for r in found} == {"2026-W10"}


# ---------------------------------------------------------------- the step


def _warehouse(tmp_path) -> DataPaths:
    paths = DataPaths(tmp_path / "donnees").ensure()
    src = f1_db()
    con = duckdb.connect(str(paths.warehouse))
    for table in ("routage", "actions", "arrets"):
        con.register("_src", src.table(table).to_arrow_table())
        con.execute(f"create table {table} as select * from _src")
        con.unregister("_src")
    con.close()
    return paths


def _capacites(tmp_path):
    path = tmp_path / "capacites.csv"
    path.write_text("elsm;acteur;dossiers_par_semaine\n31;TECH;2\n", encoding="utf-8")
    return path


def test_indicators_at_stores_rows_and_replaces_them_on_rerun(tmp_path):
    paths = _warehouse(tmp_path)
    capacites = _capacites(tmp_path)
    first = indicators_at(paths, D("2026-04-20"), capacites_path=capacites, checks=False)
    indicators_at(paths, D("2026-04-30"), capacites_path=capacites, checks=False)
    again = indicators_at(paths, D("2026-04-20"), capacites_path=capacites, checks=False)
    assert first.lignes == again.lignes
    assert first.lignes["indicateurs_f1"] == 3
    assert first.f1_dernier_mois_definitif == "2025-04" and first.f1_national == 1.0
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    per_date = con.execute(
        "select as_of, count(*) from indicateurs_f1 group by as_of order by as_of"
    ).fetchall()
    assert per_date == [(D("2026-04-20"), 3), (D("2026-04-30"), 3)]
    assert con.execute(
        "select dossiers_routes, dossiers_avec_action, provisoire from indicateurs_f1 "
        "where as_of = '2026-04-30' and elsm = '31' and mois = '2026-03-01'"
    ).fetchone() == (7, 3, False)
    con.close()
    assert again.as_dict()["as_of"] == "2026-04-20"


def test_indicators_at_says_which_step_is_missing(tmp_path):
    paths = _warehouse(tmp_path)
    with pytest.raises(IndicatorsError, match=r"ru build --as-of 2026-05-01"):
        indicators_at(paths, D("2026-05-01"), capacites_path=_capacites(tmp_path))
    empty = DataPaths(tmp_path / "vide").ensure()
    duckdb.connect(str(empty.warehouse)).close()
    with pytest.raises(IndicatorsError, match="ru route"):
        indicators_at(empty, D("2026-05-01"), capacites_path=_capacites(tmp_path))


def test_stored_rows_meet_their_contracts(tmp_path):
    """The data checks pass on the stored rows, and every fail-level invariant holds."""
    paths = _warehouse(tmp_path)
    summary = indicators_at(paths, D("2026-04-30"), capacites_path=_capacites(tmp_path))
    assert summary.controles.startswith("ok")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    for table in ("indicateurs_f1", "indicateurs_p4", "indicateurs_pdp", "volumes"):
        contract = load_contract(table)
        assert [r[0] for r in con.execute(f"describe {table}").fetchall()] == (
            contract.column_names
        )
        for inv in [i for i in contract.invariants if i.severity == "fail"]:
            bad = con.execute(f"select count(*) from {table} where not ({inv.expression})")
            assert bad.fetchone() == (0,), (table, inv.name)
    con.close()


def test_window_boundaries_follow_the_parameters():
    # with a 31-day window, D2's action at D + 31 counts too
    found = rows(compute(f1_db(), "2026-04-20", fenetre_action_jours=31), "indicateurs_f1")
    march = next(r for r in found if r["mois"] == D("2026-03-01"))
    assert march["dossiers_avec_action"] == 4
    assert D("2026-03-02") + timedelta(days=31) == D("2026-04-02")


def test_action_matching_follows_the_arrets_rules():
    """An action whose ARR_NUM no arrêt carries is matched by assuré and date (as in
    int_actions_arret); one whose ARR_NUM is another arrêt's goes to that arrêt only."""
    d = "2026-04-30"
    con = make_db()
    insert(
        con,
        "arrets",
        [
            arret(d, "A1", "U1", "N1", "2026-01-05", "2026-06-30"),
            arret(d, "A2", "U1", "N2", "2026-01-05", "2026-06-30"),
            arret(d, "A3", "U3", "N3", "2026-01-05", "2026-06-30"),
        ],
    )
    insert(
        con,
        "routage",
        [
            route("2026-03-02", "D1", "A1", "U1"),
            route("2026-03-02", "D3", "A3", "U3"),
        ],
    )
    insert(
        con,
        "actions",
        [
            # on U1's other arrêt N2: not an action on A1
            action("U1", "2026-03-05", ARR_NUM="N2"),
            # ARR_NUM unknown to the warehouse: matched to A3 by date
            action("U3", "2026-03-05", ARR_NUM="INCONNU"),
        ],
    )
    [march] = rows(compute(con, d), "indicateurs_f1")
    assert (march["dossiers_routes"], march["dossiers_avec_action"]) == (2, 1)

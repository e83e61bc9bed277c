"""The arrêts at D (spec §2) on hand-written lines in an in-memory DuckDB.

Tables come from the contracts' DDL; every test spells out the lines and the expected
values. D = 31/03/2026 unless told otherwise.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from expectations.contract import load_contract
from flows.settings import load_settings
from transforms.runner import BuildParams, arrets_at

D = date(2026, 3, 31)
REF_ELSM = pl.DataFrame(
    {
        "code_organisme": ["311", "312", "641"],
        "elsm": ["31", "31", "64B"],
        "drsm": ["Occitanie", "Occitanie", "Nouvelle-Aquitaine"],
    }
)
_numeros = itertools.count(1)


def j(text: str) -> date:
    """'JJ/MM/AAAA' -> date (the extract's format, easier to read in the tests)."""
    day, month, year = text.split("/")
    return date(int(year), int(month), int(day))


def ligne(debut: str, fin: str, **values) -> dict:
    """One accepted line paying ``debut``..``fin`` (JJ/MM/AAAA), every column defaulted."""
    dtd, dtf = j(debut), j(fin)
    jours = (dtf - dtd).days + 1
    nbr = values.pop("PRS_ACT_NBR", jours)
    row = {
        "LIG_NUM": str(next(_numeros)),
        "FLX_DIS_DTD": dtf + timedelta(days=1),
        "ORG_AFF_COD": "311",
        "assure_id": "A1",
        "BEN_RNG_GEM": 1,
        "BEN_SEX_COD": 2,
        "BEN_NAI_ANN": 1980,
        "BEN_RES_DPT": "031",
        "RGO_ASU_NAT": 10,
        "ATT_NAT": None,
        "PRS_NAT_REF": 6111,
        "ARR_NUM": None,
        "ARR_DEB_DTE": None,
        "PRE_NAT": "I",
        "PRE_PRE_DTD": dtd,
        "PRE_FIN_DTE": dtf,
        "PFS_PRE_NUM": "10000000001",
        "PSP_SPE_COD": 1,
        "PRS_MTT_NUM": None,
        "IJR_EMP_NUM": "12345678900011",
        "EXE_SOI_DTD": dtd,
        "EXE_SOI_DTF": dtf,
        "PRS_ACT_NBR": nbr,
        "PRS_ACT_QTE": jours,
        "BSE_REM_PRU": 40.0,
        "BSE_REM_MNT": 40.0 * nbr if nbr else 40.0 * jours,
        "TPT_IND": "N",
        "ALD_IND": "N",
        "MTF_CAT": None,
        "DCD_IND": "N",
        "ingestion_id": "test",
        "fichier": "ij_paiements_test.csv",
        "ligne": 2,
    }
    for key, value in values.items():
        if key not in row:
            raise KeyError(key)
        row[key] = j(value) if isinstance(value, str) and value.count("/") == 2 else value
    return row


def action(act_dte: str, **values) -> dict:
    """One accepted action on ``act_dte`` (JJ/MM/AAAA), every column defaulted."""
    row = {
        "ACT_NUM": f"ACT{next(_numeros)}",
        "FLX_DIS_DTD": j(act_dte),
        "ELSM": "31",
        "DOSSIER_ID": None,
        "ORG_AFF_COD": "311",
        "assure_id": "A1",
        "BEN_RNG_GEM": 1,
        "ARR_NUM": None,
        "ACT_DTE": j(act_dte),
        "ACT_ACTEUR": "TECH",
        "ACT_TYP": "ETUDE",
        "ACT_RES": None,
        "ingestion_id": "test",
        "fichier": "actions_test.csv",
        "ligne": 2,
    }
    for key, value in values.items():
        if key not in row:
            raise KeyError(key)
        row[key] = j(value) if isinstance(value, str) and value.count("/") == 2 else value
    return row


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    columns = load_contract(table).column_names
    placeholders = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    con.executemany(
        f'insert into "{table}" ({names}) values ({placeholders})',
        [[row[c] for c in columns] for row in rows],
    )


def warehouse(lignes: list[dict], actions: list[dict] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with ``lignes_ij`` and ``actions`` (contract DDL) and the rows."""
    con = duckdb.connect()
    for table, rows in (("lignes_ij", lignes), ("actions", list(actions))):
        con.execute(load_contract(table).ddl())
        if rows:
            insert(con, table, rows)
    return con


def params(as_of: date = D, **overrides) -> BuildParams:
    s = load_settings()
    values = {
        "as_of": as_of,
        "rgo_asu_nat": s.perimetre.rgo_asu_nat,
        "prs_nat_ref": s.perimetre.prs_nat_ref,
        "ecart_max_jours": s.arrets.ecart_max_jours,
        "fenetre_historique_jours": s.arrets.fenetre_historique_jours,
        "fenetre_ij_3ans_jours": s.arrets.fenetre_ij_3ans_jours,
        "fenetre_arrets_12m_jours": s.arrets.fenetre_arrets_12m_jours,
        "fenetre_arrets_courts_jours": s.arrets.fenetre_arrets_courts_jours,
        "duree_arret_court_max_jours": s.arrets.duree_arret_court_max_jours,
        "fenetre_prescripteurs_jours": s.prescripteurs.fenetre_jours,
        "patients_min": s.prescripteurs.patients_min,
        "ratio_atypique": s.prescripteurs.ratio_atypique,
    }
    values.update(overrides)
    return BuildParams(**values)


def build(lignes: list[dict], actions: list[dict] = (), as_of: date = D) -> list[dict]:
    """The ``arrets`` rows at ``as_of``, as dicts, ordered by debut_arret then arret_id."""
    con = warehouse(lignes, actions)
    with arrets_at(con, params(as_of), REF_ELSM) as result:
        rows = result.arrets.order("debut_arret, arret_id").pl().to_dicts()
    con.close()
    return rows


def only(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return rows[0]


# --- chaining of lines without ARR_NUM -----------------------------------------------------


def test_gap_of_two_days_joins_the_arret():
    rows = build([ligne("01/03/2026", "14/03/2026"), ligne("17/03/2026", "30/03/2026")])
    arret = only(rows)
    assert arret["debut_arret"] == j("01/03/2026")
    assert arret["jours_ij"] == 28
    assert arret["dernier_jour_paye"] == j("30/03/2026")
    assert arret["ARR_NUM"] is None


def test_gap_of_three_days_starts_a_new_arret():
    rows = build([ligne("01/03/2026", "14/03/2026"), ligne("18/03/2026", "30/03/2026")])
    assert [(r["debut_arret"], r["jours_ij"]) for r in rows] == [
        (j("01/03/2026"), 14),
        (j("18/03/2026"), 13),
    ]
    assert rows[0]["arret_id"] != rows[1]["arret_id"]


def test_chaining_is_per_assure_and_risk():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026"),
            ligne("15/03/2026", "28/03/2026", RGO_ASU_NAT=40),
            ligne("15/03/2026", "28/03/2026", assure_id="A2"),
        ]
    )
    assert sorted((r["assure_id"], r["risque"], r["jours_ij"]) for r in rows) == [
        ("A1", "ATMP", 14),
        ("A1", "MAL", 14),
        ("A2", "MAL", 14),
    ]


def test_overlap_joins_even_after_a_long_line():
    # the third line starts 2 days after the *latest* end seen (31/03), not after the 2nd line
    rows = build(
        [
            ligne("01/03/2026", "31/03/2026", PRE_FIN_DTE="30/04/2026"),
            ligne("05/03/2026", "10/03/2026", PRS_ACT_NBR=0),
            ligne("03/04/2026", "05/04/2026", FLX_DIS_DTD="06/04/2026"),
        ],
        as_of=j("10/04/2026"),
    )
    assert only(rows)["jours_ij"] == 34


def test_arret_id_is_a_stable_hash_of_the_key():
    lignes = [ligne("01/03/2026", "14/03/2026"), ligne("15/03/2026", "28/03/2026")]
    first = only(build(lignes))["arret_id"]
    # a later payment of the same chain does not change its id
    later = [*lignes, ligne("29/03/2026", "30/03/2026")]
    assert only(build(later))["arret_id"] == first
    import hashlib

    assert first == hashlib.md5(b"C|A1|MAL|2026-03-01").hexdigest()
    numbered = only(build([ligne("01/03/2026", "14/03/2026", ARR_NUM="X9")]))
    assert numbered["arret_id"] == hashlib.md5(b"N|A1|311|X9").hexdigest()


def test_lines_with_arr_num_group_by_number_whatever_the_gap():
    rows = build(
        [
            ligne("01/01/2026", "14/01/2026", ARR_NUM="77", ARR_DEB_DTE="28/12/2025"),
            ligne("01/03/2026", "14/03/2026", ARR_NUM="77", PRE_NAT="P"),
            ligne("01/03/2026", "14/03/2026", ARR_NUM="78"),
        ]
    )
    assert [(r["ARR_NUM"], r["debut_arret"], r["jours_ij"]) for r in rows] == [
        ("77", j("28/12/2025"), 28),
        ("78", j("01/03/2026"), 14),
    ]


# --- cancellations, multi-employer lines, corrections --------------------------------------


def test_cancellation_nets_to_zero_and_is_not_a_paid_day():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026", ARR_NUM="5", PRE_FIN_DTE="30/04/2026"),
            ligne("15/03/2026", "28/03/2026", ARR_NUM="5", PRE_FIN_DTE="30/04/2026"),
            # cancels 15–28/03: same assuré and period, no ARR_NUM on the cancellation
            ligne("15/03/2026", "28/03/2026", PRS_ACT_NBR=-14, BSE_REM_MNT=-560.0),
        ]
    )
    arret = only(rows)
    assert arret["jours_ij"] == 14
    assert float(arret["montant_ij"]) == 560.0
    assert arret["dernier_jour_paye"] == j("14/03/2026")


def test_fully_cancelled_arret_has_zero_days_and_no_paid_day():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026"),
            ligne("01/03/2026", "14/03/2026", PRS_ACT_NBR=-14, BSE_REM_MNT=-560.0),
        ]
    )
    arret = only(rows)
    assert arret["jours_ij"] == 0
    assert float(arret["montant_ij"]) == 0.0
    assert arret["dernier_jour_paye"] is None


def test_orphan_cancellation_never_makes_days_negative():
    """The paid line was quarantined (awaiting correction): its cancellation alone nets to
    zero days, not to a negative count, while the money stays as delivered."""
    rows = build(
        [
            ligne("01/03/2026", "05/03/2026", ARR_NUM="5", PRE_FIN_DTE="30/04/2026"),
            ligne("15/03/2026", "28/03/2026", ARR_NUM="5", PRS_ACT_NBR=-14, BSE_REM_MNT=-560.0),
        ]
    )
    arret = only(rows)
    assert arret["jours_ij"] == 0
    assert float(arret["montant_ij"]) == 200.0 - 560.0


def test_repaid_period_after_cancellation_counts_once():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026"),
            ligne("01/03/2026", "14/03/2026", PRS_ACT_NBR=-14, BSE_REM_MNT=-560.0),
            ligne("01/03/2026", "14/03/2026", BSE_REM_PRU=42.0, BSE_REM_MNT=588.0),
        ]
    )
    arret = only(rows)
    assert arret["jours_ij"] == 14
    assert float(arret["montant_ij"]) == 588.0
    assert arret["dernier_jour_paye"] == j("14/03/2026")


def test_multi_employer_lines_do_not_count_days_twice():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026", IJR_EMP_NUM="11111111100011"),
            ligne(
                "01/03/2026",
                "14/03/2026",
                PRS_ACT_NBR=0,
                BSE_REM_MNT=280.0,
                IJR_EMP_NUM="22222222200022",
            ),
        ]
    )
    arret = only(rows)
    assert arret["jours_ij"] == 14
    assert float(arret["montant_ij"]) == 840.0
    assert arret["dernier_jour_paye"] == j("14/03/2026")


def test_corrected_line_supersedes_the_old_version_from_its_flx_dis_dtd():
    old = ligne("01/03/2026", "14/03/2026", LIG_NUM="L1", FLX_DIS_DTD="15/03/2026")
    new = {**old, "FLX_DIS_DTD": j("20/03/2026"), "PRS_ACT_NBR": 10, "PRE_FIN_DTE": j("30/04/2026")}
    before = only(build([old, new], as_of=j("19/03/2026")))
    assert (before["jours_ij"], before["fin_prescrite"]) == (14, j("14/03/2026"))
    after = only(build([old, new], as_of=j("20/03/2026")))
    assert (after["jours_ij"], after["fin_prescrite"]) == (10, j("30/04/2026"))


def test_out_of_scope_lines_build_no_arret_and_are_counted():
    con = warehouse(
        [
            ligne("01/03/2026", "14/03/2026"),
            ligne("01/03/2026", "14/03/2026", assure_id="A2", RGO_ASU_NAT=30, PRS_NAT_REF=6121),
            ligne("01/03/2026", "14/03/2026", assure_id="A3", PRS_NAT_REF=6131),
            ligne("15/03/2026", "28/03/2026", assure_id="A3", PRS_NAT_REF=6131),
        ]
    )
    with arrets_at(con, params(), REF_ELSM) as result:
        assert result.arrets.aggregate("count(*)").fetchall() == [(1,)]
        assert result.hors_perimetre.fetchall() == [(10, 6131, 2), (30, 6121, 1)]


# --- prescription: fin_prescrite, prolongations, prescribers -------------------------------


def test_fin_prescrite_comes_from_the_latest_prescription():
    rows = build(
        [
            ligne(
                "01/03/2026",
                "14/03/2026",
                ARR_NUM="1",
                PRE_PRE_DTD="01/03/2026",
                PRE_FIN_DTE="20/04/2026",
            ),
            # paid later but prescribed earlier: does not decide
            ligne(
                "15/03/2026",
                "28/03/2026",
                ARR_NUM="1",
                PRE_PRE_DTD="28/02/2026",
                PRE_FIN_DTE="15/05/2026",
            ),
            ligne(
                "15/03/2026",
                "20/03/2026",
                ARR_NUM="1",
                PRE_NAT="P",
                PRE_PRE_DTD="14/03/2026",
                PRE_FIN_DTE="10/04/2026",
            ),
        ]
    )
    assert only(rows)["fin_prescrite"] == j("10/04/2026")


def test_fin_prescrite_ties_latest_flx_then_highest_lig_num():
    base = {"ARR_NUM": "1", "PRE_PRE_DTD": "01/03/2026"}
    by_flx = [
        ligne(
            "01/03/2026",
            "10/03/2026",
            LIG_NUM="9",
            FLX_DIS_DTD="20/03/2026",
            PRE_FIN_DTE="05/04/2026",
            **base,
        ),
        ligne(
            "11/03/2026",
            "14/03/2026",
            LIG_NUM="8",
            FLX_DIS_DTD="21/03/2026",
            PRE_FIN_DTE="06/04/2026",
            **base,
        ),
    ]
    assert only(build(by_flx))["fin_prescrite"] == j("06/04/2026")
    by_lig = [
        ligne(
            "01/03/2026",
            "10/03/2026",
            LIG_NUM="10",
            FLX_DIS_DTD="20/03/2026",
            PRE_FIN_DTE="07/04/2026",
            **base,
        ),
        ligne(
            "11/03/2026",
            "14/03/2026",
            LIG_NUM="9",
            FLX_DIS_DTD="20/03/2026",
            PRE_FIN_DTE="06/04/2026",
            **base,
        ),
    ]
    # "10" > "9" as a number
    assert only(build(by_lig))["fin_prescrite"] == j("07/04/2026")


def test_en_cours_and_duree_jours():
    rows = build(
        [
            ligne(
                "01/03/2026",
                "14/03/2026",
                ARR_NUM="1",
                ARR_DEB_DTE="25/02/2026",
                PRE_FIN_DTE="31/03/2026",
            ),
            ligne(
                "01/03/2026", "14/03/2026", ARR_NUM="2", assure_id="A2", PRE_FIN_DTE="30/03/2026"
            ),
        ]
    )
    by_num = {r["ARR_NUM"]: r for r in rows}
    assert by_num["1"]["en_cours"] is True
    assert by_num["1"]["duree_jours"] == 35  # 25/02 .. 31/03 inclusive
    assert by_num["2"]["en_cours"] is False
    assert by_num["2"]["duree_jours"] is None


def test_nb_prolongations_and_prescripteur_initial():
    rows = build(
        [
            ligne(
                "01/03/2026",
                "07/03/2026",
                ARR_NUM="1",
                PRE_NAT="P",
                PFS_PRE_NUM="P2",
                PRE_PRE_DTD="06/03/2026",
                PSP_SPE_COD=33,
            ),
            ligne(
                "01/03/2026",
                "05/03/2026",
                ARR_NUM="1",
                PFS_PRE_NUM="P1",
                PRE_PRE_DTD="01/03/2026",
                PSP_SPE_COD=1,
            ),
            ligne(
                "08/03/2026",
                "14/03/2026",
                ARR_NUM="1",
                PRE_NAT="P",
                PFS_PRE_NUM="P2",
                PRE_PRE_DTD="06/03/2026",
                PSP_SPE_COD=33,
            ),
            ligne(
                "15/03/2026",
                "21/03/2026",
                ARR_NUM="1",
                PRE_NAT="P",
                PFS_PRE_NUM="P2",
                PRE_PRE_DTD="14/03/2026",
                PSP_SPE_COD=33,
            ),
        ]
    )
    arret = only(rows)
    assert arret["nb_prolongations"] == 2  # (06/03, P2) and (14/03, P2)
    assert (arret["prescripteur_initial"], arret["PSP_SPE_COD"]) == ("P1", 1)


def test_prescripteur_initial_falls_back_to_the_earliest_line():
    rows = build(
        [
            ligne(
                "08/03/2026",
                "14/03/2026",
                ARR_NUM="1",
                PRE_NAT="P",
                PFS_PRE_NUM="P2",
                PRE_PRE_DTD="07/03/2026",
            ),
            ligne(
                "01/03/2026",
                "07/03/2026",
                ARR_NUM="1",
                PRE_NAT="P",
                PFS_PRE_NUM="P3",
                PRE_PRE_DTD="28/02/2026",
            ),
        ]
    )
    assert only(rows)["prescripteur_initial"] == "P3"


@pytest.mark.parametrize(
    ("prolongateur", "medecin_traitant", "expected"),
    [
        ("P1", None, False),  # the initial prescriber prolongs
        ("P2", "P2", False),  # the médecin traitant prolongs: exception
        ("P2", "P9", True),  # someone else
        ("P2", None, True),  # someone else, no médecin traitant known
    ],
)
def test_prolongation_autre_prescripteur(prolongateur, medecin_traitant, expected):
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026", ARR_NUM="1", PFS_PRE_NUM="P1"),
            ligne(
                "15/03/2026",
                "28/03/2026",
                ARR_NUM="1",
                PRE_NAT="P",
                PFS_PRE_NUM=prolongateur,
                PRS_MTT_NUM=medecin_traitant,
            ),
        ]
    )
    assert only(rows)["prolongation_autre_prescripteur"] is expected


# --- TPT, ALD, motif, latest line ----------------------------------------------------------


def test_trailing_tpt_run():
    rows = build(
        [
            ligne("01/01/2026", "14/01/2026", ARR_NUM="1", TPT_IND="O"),
            ligne("15/01/2026", "28/01/2026", ARR_NUM="1", TPT_IND="N"),
            ligne("29/01/2026", "11/02/2026", ARR_NUM="1", TPT_IND="O"),
            ligne("12/02/2026", "25/02/2026", ARR_NUM="1", TPT_IND="O", PRE_FIN_DTE="30/04/2026"),
            # a cancelled full-time period does not break the run
            ligne("26/02/2026", "11/03/2026", ARR_NUM="1", TPT_IND="N"),
            ligne(
                "26/02/2026",
                "11/03/2026",
                ARR_NUM="1",
                TPT_IND="N",
                PRS_ACT_NBR=-14,
                BSE_REM_MNT=-560.0,
            ),
        ]
    )
    arret = only(rows)
    assert arret["tpt_en_cours"] is True
    assert arret["duree_tpt_jours"] == (D - j("29/01/2026")).days + 1 == 62


def test_tpt_not_running_when_the_latest_line_is_full_time():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026", ARR_NUM="1", TPT_IND="O"),
            ligne("15/03/2026", "28/03/2026", ARR_NUM="1", TPT_IND="N"),
        ]
    )
    arret = only(rows)
    assert (arret["tpt_en_cours"], arret["duree_tpt_jours"]) == (False, None)


def test_ald_mtf_cat_and_latest_line_fields():
    rows = build(
        [
            ligne(
                "01/03/2026",
                "14/03/2026",
                ARR_NUM="1",
                MTF_CAT="RHU",
                ALD_IND="O",
                BSE_REM_PRU=40.0,
                IJR_EMP_NUM="11111111100011",
            ),
            ligne(
                "15/03/2026",
                "28/03/2026",
                ARR_NUM="1",
                MTF_CAT="PSY",
                BSE_REM_PRU=41.47,
                BSE_REM_MNT=580.58,
                IJR_EMP_NUM="99999999900099",
            ),
            ligne(
                "29/03/2026",
                "30/03/2026",
                ARR_NUM="1",
                MTF_CAT=None,
                BSE_REM_PRU=41.47,
                BSE_REM_MNT=82.94,
                IJR_EMP_NUM="99999999900099",
            ),
        ]
    )
    arret = only(rows)
    assert arret["ald"] is True
    assert arret["mtf_cat"] == "PSY"
    assert float(arret["BSE_REM_PRU"]) == 41.47
    assert arret["IJR_EMP_NUM"] == "99999999900099"
    assert (arret["sexe"], arret["age"]) == (2, 46)
    assert arret["ORG_AFF_COD"] == "311"
    assert (arret["elsm"], arret["drsm"]) == ("31", "Occitanie")


def test_elsm_from_the_latest_line_of_a_chained_arret():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026", ORG_AFF_COD="311"),
            ligne("15/03/2026", "28/03/2026", ORG_AFF_COD="641"),
        ]
    )
    arret = only(rows)
    assert (arret["ORG_AFF_COD"], arret["elsm"], arret["drsm"]) == (
        "641",
        "64B",
        "Nouvelle-Aquitaine",
    )


def test_atmp_versus_maladie():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026", RGO_ASU_NAT=40, ATT_NAT=1, PRE_FIN_DTE="30/04/2026"),
            ligne("01/02/2026", "14/02/2026"),
        ]
    )
    assert [(r["risque"], r["en_cours"]) for r in rows] == [("MAL", False), ("ATMP", True)]
    # ij_3ans counts maladie days only; nb_arrets_12m counts MAL arrêts only
    assert {r["ij_3ans"] for r in rows} == {14}
    assert {r["nb_arrets_12m"] for r in rows} == {1}


def test_deceased_assure_has_no_arret_en_cours():
    rows = build(
        [
            ligne("01/03/2026", "14/03/2026", ARR_NUM="1", PRE_FIN_DTE="30/04/2026"),
            ligne("01/01/2026", "14/01/2026", ARR_NUM="2"),
            ligne("15/03/2026", "20/03/2026", ARR_NUM="1", DCD_IND="O", PRE_FIN_DTE="30/04/2026"),
        ]
    )
    assert [(r["ARR_NUM"], r["deces"], r["en_cours"], r["duree_jours"]) for r in rows] == [
        ("2", True, False, None),
        ("1", True, False, None),
    ]


# --- per assuré ----------------------------------------------------------------------------


def test_ij_3ans_window_boundary():
    limite = D - timedelta(days=1095)  # 01/04/2023
    assert limite == j("01/04/2023")
    rows = build(
        [
            ligne("20/03/2023", "31/03/2023", ARR_NUM="1"),  # ends D - 1096: out
            ligne("22/03/2023", "01/04/2023", ARR_NUM="2", assure_id="A2"),  # ends D - 1095: in
            ligne("01/03/2026", "10/03/2026", ARR_NUM="3"),
            ligne("01/03/2026", "10/03/2026", ARR_NUM="4", ALD_IND="O", assure_id="A2"),
        ],
    )
    ij = {r["ARR_NUM"]: r["ij_3ans"] for r in rows}
    assert ij == {"1": 10, "3": 10, "2": 11, "4": 11}


def test_short_repeated_arrets():
    rows = build(
        [
            # MAL, started 30/09/2025 = D - 182, span 10 days: counts
            ligne("30/09/2025", "09/10/2025", ARR_NUM="1"),
            # started D - 183: outside the 6 months
            ligne("29/09/2025", "05/10/2025", ARR_NUM="2"),
            # span 15 days (prescribed to 15/01 although paid to 10/01): not short
            ligne("01/01/2026", "10/01/2026", ARR_NUM="3", PRE_FIN_DTE="15/01/2026"),
            # span exactly 14 days: short
            ligne("01/02/2026", "14/02/2026", ARR_NUM="4"),
            # AT/MP short arrêt: not counted
            ligne("01/03/2026", "05/03/2026", ARR_NUM="5", RGO_ASU_NAT=40),
        ]
    )
    assert {r["nb_arrets_courts_6m"] for r in rows} == {2}
    assert {r["nb_arrets_12m"] for r in rows} == {4}


# --- actions -------------------------------------------------------------------------------


def test_action_matching_by_arr_num_and_by_date():
    lignes = [
        ligne("01/01/2026", "14/01/2026", ARR_NUM="1", PRE_FIN_DTE="31/01/2026"),
        ligne("01/03/2026", "14/03/2026", ARR_NUM="2", PRE_FIN_DTE="30/04/2026"),
    ]
    actions = [
        # by number: dated during arrêt 2's window but carries ARR_NUM 1
        action("05/03/2026", ARR_NUM="1", ACT_ACTEUR="MC", ACT_TYP="CONVOCATION"),
        # by date: no ARR_NUM, inside arrêt 2's [debut, fin_prescrite]
        action("10/03/2026", ACT_TYP="COURRIER_PDP", ACT_ACTEUR="CSAM"),
        # by date, but outside every arrêt: matched to none
        action("20/02/2026", ACT_ACTEUR="MC"),
        # another assuré
        action("11/03/2026", assure_id="A2", ACT_ACTEUR="MC"),
        # after D: invisible
        action("01/04/2026", ACT_ACTEUR="MC"),
    ]
    rows = build(lignes, actions)
    got = {
        r["ARR_NUM"]: (
            r["derniere_action_dte"],
            r["jours_depuis_derniere_action"],
            r["action_mc"],
            r["action_pdp"],
        )
        for r in rows
    }
    assert got == {
        "1": (j("05/03/2026"), 26, True, False),
        "2": (j("10/03/2026"), 21, False, True),
    }


def test_pdp_result_and_latest_action_version():
    lignes = [ligne("01/03/2026", "14/03/2026", ARR_NUM="1", PRE_FIN_DTE="30/04/2026")]
    first = action("05/03/2026", ACT_NUM="A", ARR_NUM="1", ACT_TYP="APPEL")
    # re-delivered with a PDP result after D: invisible at D
    second = {**first, "FLX_DIS_DTD": j("02/04/2026"), "ACT_RES": "PDP_ENGAGEE"}
    arret = only(build(lignes, [first, second]))
    assert (arret["action_mc"], arret["action_pdp"]) == (False, False)
    arret = only(build(lignes, [first, second], as_of=j("02/04/2026")))
    assert arret["action_pdp"] is True


def test_no_action_gives_false_flags_and_null_date():
    arret = only(build([ligne("01/03/2026", "14/03/2026")]))
    assert (arret["derniere_action_dte"], arret["jours_depuis_derniere_action"]) == (None, None)
    assert (arret["action_mc"], arret["action_pdp"]) == (False, False)


def test_lookback_window():
    fenetre = D - timedelta(days=1460)  # 01/04/2022
    rows = build(
        [
            ligne("01/03/2022", "31/03/2022", ARR_NUM="1"),  # ended the day before: out
            ligne("01/03/2022", "01/04/2022", ARR_NUM="2"),  # ends on the boundary: in
        ]
    )
    assert fenetre == j("01/04/2022")
    assert [r["ARR_NUM"] for r in rows] == ["2"]

"""The ciblage transform on hand-written arrêts: every threshold of every code, exclusions."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from flows.settings import CONFIG_DIR
from flows.target import load_catalogue
from transforms.catalogue import ARRETS_FIELDS
from transforms.marts.ciblage import CIBLAGE_COLUMNS, ciblage, codes_evalues

D = dt.date(2026, 11, 20)
PARAMS = {"action_recente_jours": 14, "en_attente_jours": 28}
_PL_TYPES = {
    "DATE": pl.Date,
    "VARCHAR": pl.String,
    "INTEGER": pl.Int32,
    "DOUBLE": pl.Float64,
    "BOOLEAN": pl.Boolean,
}
SCHEMA = {name: _PL_TYPES[t] for name, t in ARRETS_FIELDS.items()}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(CONFIG_DIR / "catalogue_ru.yml")


def arret(arret_id: str = "A1", **values) -> dict:
    """An arrêt en cours at D that meets no code; ``values`` override its fields."""
    row = {
        "as_of": D,
        "arret_id": arret_id,
        "assure_id": f"assure-{arret_id}",
        "ORG_AFF_COD": "311",
        "elsm": "31",
        "drsm": "OCC",
        "ARR_NUM": f"N{arret_id}",
        "risque": "MAL",
        "debut_arret": D - dt.timedelta(days=9),
        "fin_prescrite": D + dt.timedelta(days=10),
        "dernier_jour_paye": D - dt.timedelta(days=2),
        "jours_ij": 7,
        "montant_ij": 280.0,
        "en_cours": True,
        "duree_jours": 10,
        "nb_prolongations": 0,
        "prescripteur_initial": "10000000001",
        "PSP_SPE_COD": 1,
        "prescripteur_atypique": False,
        "ratio_pairs_prescripteur": 1.0,
        "prolongation_autre_prescripteur": False,
        "tpt_en_cours": False,
        "duree_tpt_jours": None,
        "ald": False,
        "mtf_cat": "AUT",
        "deces": False,
        "IJR_EMP_NUM": "12345678900011",
        "BSE_REM_PRU": 40.0,
        "sexe": 1,
        "age": 45,
        "ij_3ans": 7,
        "nb_arrets_12m": 1,
        "nb_arrets_courts_6m": 0,
        "derniere_action_dte": None,
        "jours_depuis_derniere_action": None,
        "action_mc": False,
        "action_pdp": False,
    }
    unknown = set(values) - set(row)
    assert not unknown, unknown
    row.update(values)
    return row


def frame(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=SCHEMA)


def run(catalogue, *rows, scores=None, routage=None, as_of=D) -> pl.DataFrame:
    return ciblage(frame(*rows), catalogue, as_of, PARAMS, scores=scores, routage=routage)


def met_codes(out: pl.DataFrame, arret_id: str = "A1") -> list[str]:
    row = out.filter(pl.col("arret_id") == arret_id)
    if row.is_empty():
        return []
    primary = row["code_ru"][0]
    return ([primary] if primary else []) + row["autres_codes"][0].to_list()


def scores_of(**by_id: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "arret_id": list(by_id),
            "score": list(by_id.values()),
            "raisons": [["3 prolongations"] for _ in by_id],
            "raisons_medicales": [["arrêt psy"] for _ in by_id],
        },
        schema={
            "arret_id": pl.String,
            "score": pl.Float64,
            "raisons": pl.List(pl.String),
            "raisons_medicales": pl.List(pl.String),
        },
    )


def test_a_neutral_arret_meets_nothing(catalogue):
    out = run(catalogue, arret())
    assert out.is_empty()
    assert out.columns == list(CIBLAGE_COLUMNS)


# (code, fields that just meet it, fields that just miss it)
BOUNDARIES = [
    ("RU05", {"jours_ij": 426}, {"jours_ij": 425}),
    ("RU05", {"jours_ij": 500}, {"jours_ij": 500, "action_pdp": True}),
    ("RU10", {"risque": "ATMP", "duree_jours": 1461}, {"risque": "ATMP", "duree_jours": 1460}),
    ("RU10", {"risque": "ATMP", "duree_jours": 1461}, {"risque": "MAL", "duree_jours": 1461}),
    ("RU04", {"duree_jours": 180}, {"duree_jours": 179}),
    (
        "RU04",
        {"duree_jours": 200, "jours_depuis_derniere_action": 91},
        {"duree_jours": 200, "jours_depuis_derniere_action": 90},
    ),
    ("RU03", {"duree_jours": 90}, {"duree_jours": 89}),
    ("RU03", {"duree_jours": 90}, {"duree_jours": 90, "action_mc": True}),
    ("RU03", {"duree_jours": 90}, {"duree_jours": 90, "risque": "ATMP"}),
    ("RU06", {"ij_3ans": 300}, {"ij_3ans": 299}),
    ("RU06", {"ij_3ans": 300}, {"ij_3ans": 300, "ald": True}),
    (
        "RU09",
        {"tpt_en_cours": True, "duree_tpt_jours": 180},
        {"tpt_en_cours": True, "duree_tpt_jours": 179},
    ),
    (
        "RU09",
        {"tpt_en_cours": True, "duree_tpt_jours": 180},
        {"tpt_en_cours": False, "duree_tpt_jours": 180},
    ),
    (
        "RU11",
        {"prescripteur_atypique": True, "duree_jours": 30},
        {"prescripteur_atypique": True, "duree_jours": 29},
    ),
    (
        "RU11",
        {"prescripteur_atypique": True, "duree_jours": 30},
        {"prescripteur_atypique": False, "duree_jours": 30},
    ),
    (
        "RU08",
        {"prolongation_autre_prescripteur": True},
        {"prolongation_autre_prescripteur": True, "risque": "ATMP"},
    ),
    # PSY repère 90 days: 2 × 90 = 180.
    ("RU12", {"mtf_cat": "PSY", "duree_jours": 181}, {"mtf_cat": "PSY", "duree_jours": 180}),
    # No repère for an unknown category: the code is not met whatever the duration.
    ("RU12", {"mtf_cat": "INF", "duree_jours": 31}, {"mtf_cat": None, "duree_jours": 31}),
    ("RU02", {"duree_jours": 45}, {"duree_jours": 44}),
    ("RU02", {"duree_jours": 60}, {"duree_jours": 61}),
    (
        "RU02",
        {"duree_jours": 50},
        {
            "duree_jours": 50,
            "derniere_action_dte": D - dt.timedelta(days=30),
            "jours_depuis_derniere_action": 30,
        },
    ),
    ("RU07", {"nb_arrets_courts_6m": 2}, {"nb_arrets_courts_6m": 1}),
]


@pytest.mark.parametrize(("code", "meets", "misses"), BOUNDARIES)
def test_each_threshold_is_met_just_at_its_boundary(catalogue, code, meets, misses):
    out = run(catalogue, arret("A1", **meets), arret("A2", **misses))
    assert code in met_codes(out, "A1")
    assert code not in met_codes(out, "A2")


@pytest.mark.parametrize(
    ("meets", "misses"),
    [
        (({"duree_jours": 21}, 0.5), ({"duree_jours": 20}, 0.9)),
        (({"duree_jours": 60}, 0.5), ({"duree_jours": 61}, 0.9)),
        (({"duree_jours": 30}, 0.5), ({"duree_jours": 30}, 0.4999)),
        (({"duree_jours": 30}, 0.8), ({"duree_jours": 30, "risque": "ATMP"}, 0.8)),
    ],
)
def test_ru01_needs_a_score_of_at_least_one_half(catalogue, meets, misses):
    out = run(
        catalogue,
        arret("A1", **meets[0]),
        arret("A2", **misses[0]),
        scores=scores_of(A1=meets[1], A2=misses[1]),
    )
    assert "RU01" in met_codes(out, "A1")
    assert out.filter(pl.col("arret_id") == "A1")["score"][0] == meets[1]
    a1 = out.filter(pl.col("arret_id") == "A1").row(0, named=True)
    assert (a1["raisons"], a1["raisons_medicales"]) == (["3 prolongations"], ["arrêt psy"])
    assert "RU01" not in met_codes(out, "A2")


def test_without_a_model_ru01_is_not_evaluated(catalogue):
    evalues, sautes = codes_evalues(catalogue, D, modele_disponible=False)
    assert [c.code for c in sautes] == ["RU01"]
    assert "RU01" not in [c.code for c in evalues]
    out = run(catalogue, arret("A1", duree_jours=30), arret("A2", duree_jours=50))
    assert met_codes(out, "A1") == []
    # RU02 still runs on the rules alone, with an empty score and no reasons.
    row = out.row(0, named=True)
    assert (row["arret_id"], row["code_ru"], row["score"], row["raisons"]) == (
        "A2",
        "RU02",
        None,
        [],
    )
    assert row["raisons_medicales"] == []


def test_the_primary_code_is_the_lowest_rank_and_the_others_are_kept_in_rank_order(catalogue):
    # RU05 (rank 1), RU03 (rank 4), RU07 (rank 11), RU04 (rank 3), RU12 AUT 2×45 (rank 9).
    out = run(catalogue, arret(jours_ij=430, duree_jours=200, nb_arrets_courts_6m=3))
    row = out.row(0, named=True)
    assert row["code_ru"] == "RU05"
    assert row["rang"] == 1
    assert row["autres_codes"] == ["RU04", "RU03", "RU12", "RU07"]
    assert (row["acteur"], row["acteur_repli"]) == ("CSAM", "TECH")
    assert (row["exclu"], row["motif_exclusion"]) == (False, None)
    assert row["duree_jours"] == 200
    assert row["elsm"] == "31"
    assert row["as_of"] == D


def test_arrets_not_en_cours_or_of_another_date_are_not_targeted(catalogue):
    out = run(
        catalogue,
        arret("A1", jours_ij=500, en_cours=False, duree_jours=None),
        arret("A2", jours_ij=500, as_of=D - dt.timedelta(days=1)),
        arret("A3", jours_ij=500),
    )
    assert out["arret_id"].to_list() == ["A3"]


def test_deceased_assure_is_excluded_and_still_reported(catalogue):
    # An arrêt of a deceased assuré is not en cours (arrets.sql) but its prescription runs.
    dead = {"deces": True, "en_cours": False, "duree_jours": None}
    out = run(
        catalogue,
        arret("A1", jours_ij=500, **dead),
        arret("A2", jours_ij=500, fin_prescrite=D - dt.timedelta(days=1), **dead),
        arret("A3", **dead),
    )
    row = out.row(0, named=True)
    assert out["arret_id"].to_list() == ["A1", "A3"]
    assert (row["code_ru"], row["exclu"], row["motif_exclusion"]) == ("RU05", True, "deces")
    # Its duration is counted as if it had gone on: debut_arret is D - 9.
    assert row["duree_jours"] == 10
    assert out.row(1, named=True)["code_ru"] is None


@pytest.mark.parametrize(("days", "excluded"), [(0, True), (14, True), (15, False)])
def test_action_in_the_last_14_days_excludes(catalogue, days, excluded):
    out = run(
        catalogue,
        arret(
            jours_ij=500,
            derniere_action_dte=D - dt.timedelta(days=days),
            jours_depuis_derniere_action=days,
        ),
    )
    row = out.row(0, named=True)
    assert row["code_ru"] == "RU05"
    assert row["exclu"] is excluded
    assert row["motif_exclusion"] == ("action_recente" if excluded else None)


def _ledger(*rows: tuple[str, int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"arret_id": a, "as_of": D - dt.timedelta(days=ago), "statut": s} for a, ago, s in rows],
        schema={"arret_id": pl.String, "as_of": pl.Date, "statut": pl.String},
    )


def test_routed_in_the_last_28_days_with_no_action_since_is_en_attente(catalogue):
    action_20_days_ago = {
        "derniere_action_dte": D - dt.timedelta(days=20),
        "jours_depuis_derniere_action": 20,
    }
    out = run(
        catalogue,
        arret("A1", jours_ij=500),  # routed 28 days ago: en attente
        arret("A2", jours_ij=500),  # routed 29 days ago: targeted again
        arret("A3", jours_ij=500, **action_20_days_ago),  # routed 25 days ago, action since
        arret("A4", jours_ij=500),  # only in the backlog: never given to anyone
        arret("A5", jours_ij=500),  # routed today by an earlier run of the same night
        routage=_ledger(
            ("A1", 28, "affecte"),
            ("A1", 60, "affecte"),
            ("A2", 29, "affecte"),
            ("A3", 25, "affecte"),
            ("A4", 7, "non_affecte"),
            ("A5", 0, "affecte"),
        ),
    )
    motifs = dict(zip(out["arret_id"], out["motif_exclusion"], strict=True))
    assert motifs == {"A1": "en_attente", "A2": None, "A3": None, "A4": None, "A5": None}


def test_an_exclusion_alone_gives_a_row_without_code(catalogue):
    out = run(catalogue, arret(jours_depuis_derniere_action=3, derniere_action_dte=D))
    row = out.row(0, named=True)
    assert (row["code_ru"], row["rang"], row["acteur"], row["autres_codes"]) == (
        None,
        None,
        None,
        [],
    )
    assert (row["exclu"], row["motif_exclusion"]) == (True, "action_recente")


def test_the_first_exclusion_in_catalogue_order_is_the_reason(catalogue):
    out = run(
        catalogue,
        arret(
            jours_ij=500,
            deces=True,
            en_cours=False,
            jours_depuis_derniere_action=1,
            derniere_action_dte=D,
        ),
    )
    assert out["motif_exclusion"].to_list() == ["deces"]


def test_only_codes_valid_at_d_are_evaluated(tmp_path, catalogue):
    text = (CONFIG_DIR / "catalogue_ru.yml").read_text(encoding="utf-8")
    bad = tmp_path / "catalogue_ru.yml"
    bad.write_text(
        text.replace(
            "    acteur_repli: TECH\n    valide_du: 2024-01-01\n\n  - code: RU10",
            "    acteur_repli: TECH\n    valide_du: 2024-01-01\n    valide_au: 2026-11-19\n\n"
            "  - code: RU10",
        ),
        encoding="utf-8",
    )
    cat = load_catalogue(bad)
    assert cat.code("RU05").valide_au == dt.date(2026, 11, 19)
    assert run(cat, arret(jours_ij=500)).is_empty()
    assert met_codes(run(cat, arret(jours_ij=500), as_of=D - dt.timedelta(days=1))) == []
    yesterday = arret(jours_ij=500, as_of=D - dt.timedelta(days=1))
    assert met_codes(run(cat, yesterday, as_of=D - dt.timedelta(days=1))) == ["RU05"]


def test_the_input_frames_are_not_modified(catalogue):
    arrets = frame(arret(jours_ij=500))
    before = arrets.clone()
    ciblage(arrets, catalogue, D, PARAMS)
    assert arrets.equals(before)


def test_reasons_computed_afterwards_replace_only_the_targeted_rows(catalogue):
    from transforms.marts.ciblage import with_reasons

    out = run(
        catalogue,
        arret("A1", duree_jours=30),
        arret("A2", duree_jours=50),
        scores=scores_of(A1=0.7, A2=0.2),
    )
    reasons = pl.DataFrame(
        {
            "arret_id": ["A1", "Z9"],
            "raisons": [["52 ans", "3 prolongations"], ["hors ciblage"]],
            "raisons_medicales": [["arrêt psy"], []],
        }
    )
    done = with_reasons(out, reasons)
    assert done.columns == out.columns and done["arret_id"].to_list() == ["A1", "A2"]
    assert done.row(0, named=True)["raisons"] == ["52 ans", "3 prolongations"]
    assert done.row(1, named=True)["raisons"] == ["3 prolongations"]  # kept as it was


# --- ru target on a warehouse (rules only: no promoted model) -----------------------------


def _warehouse_with_arrets(data_dir, rows, routage_rows=()):
    import duckdb

    from expectations.contract import load_contract
    from flows.settings import DataPaths

    paths = DataPaths(data_dir).ensure()
    con = duckdb.connect(str(paths.warehouse))
    con.execute(load_contract("arrets").ddl())
    con.register("nouveaux", frame(*rows))
    con.execute("insert into arrets by name select * from nouveaux")
    if routage_rows:
        con.execute(load_contract("routage").ddl())
        ledger = pl.DataFrame(
            [
                {
                    "dossier_id": f"D{i:016x}",
                    "as_of": D - dt.timedelta(days=ago),
                    "semaine_iso": "2026-W44",
                    "elsm": "31",
                    "arret_id": a,
                    "assure_id": f"assure-{a}",
                    "code_ru": "RU05",
                    "autres_codes": [],
                    "acteur": "CSAM",
                    "rang_file": 1,
                    "score": None,
                    "raisons": [],
                    "statut": "affecte",
                    "motif": None,
                }
                for i, (a, ago) in enumerate(routage_rows)
            ]
        )
        con.register("registre", ledger)
        con.execute("insert into routage by name select * from registre")
    con.close()
    return paths


def test_ru_target_writes_ciblage_and_replaces_the_date(data_dir, tmp_path):
    import duckdb

    from flows.settings import load_settings
    from flows.target import target_at

    paths = _warehouse_with_arrets(
        data_dir,
        [
            arret("A1", jours_ij=500),
            arret("A2", duree_jours=50),
            arret("A3", jours_ij=430),  # routed 10 days ago, no action since
            arret("A4"),
        ],
        routage_rows=[("A3", 10)],
    )
    settings = load_settings()
    summary = target_at(paths, D, settings)
    assert summary.modele is None and summary.codes_non_evalues == ["RU01"]
    assert (summary.lignes, summary.cibles, summary.exclus) == (3, 2, {"en_attente": 1})
    assert summary.par_code == {"RU02": 1, "RU05": 2}
    assert summary.controles.startswith("ok")

    # A pilot retires RU02 in the catalogue file: the next run of the same date replaces it.
    text = (CONFIG_DIR / "catalogue_ru.yml").read_text(encoding="utf-8")
    start, end = text.index("  - code: RU02"), text.index("  - code: RU07")
    edited = tmp_path / "catalogue_ru.yml"
    edited.write_text(text[:start] + text[end:], encoding="utf-8")
    again = target_at(paths, D, settings, catalogue_path=edited)
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    rows = con.execute(
        "select arret_id, code_ru, exclu, motif_exclusion from ciblage where as_of = $d "
        "order by arret_id",
        {"d": D},
    ).fetchall()
    con.close()
    assert again.lignes == 2
    assert rows == [("A1", "RU05", False, None), ("A3", "RU05", True, "en_attente")]


def test_ru_target_without_arrets_says_what_to_do(data_dir):
    from flows.settings import DataPaths, load_settings
    from flows.target import TargetError, target_at

    paths = _warehouse_with_arrets(data_dir, [arret("A1")])
    with pytest.raises(TargetError, match="ru build --as-of 2026-11-21"):
        target_at(DataPaths(paths.root), D + dt.timedelta(days=1), load_settings())

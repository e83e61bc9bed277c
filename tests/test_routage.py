"""Routing within capacity (spec §5): the pure transform and the ``ru route`` step."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from flows.route import route_at
from flows.settings import DataPaths, load_settings
from transforms.marts.routage import ROUTAGE_SCHEMA, dossier_id, route, semaine_iso

MON = date(2026, 11, 16)  # ISO week 2026-W47
WED = date(2026, 11, 18)
NEXT_MON = date(2026, 11, 23)  # 2026-W48

# Catalogue actors (spec §3): RU02 TECH→CSAM, RU03 MC→CSAM, RU09 ISM→MC.
CODES = {
    "RU03": (4, "MC", "CSAM"),
    "RU09": (6, "ISM", "MC"),
    "RU02": (10, "TECH", "CSAM"),
}

CIBLAGE_SCHEMA = {
    "as_of": pl.Date,
    "arret_id": pl.String,
    "assure_id": pl.String,
    "elsm": pl.String,
    "code_ru": pl.String,
    "rang": pl.Int32,
    "autres_codes": pl.List(pl.String),
    "acteur": pl.String,
    "acteur_repli": pl.String,
    "score": pl.Float64,
    "raisons": pl.List(pl.String),
    "exclu": pl.Boolean,
    "motif_exclusion": pl.String,
    "duree_jours": pl.Int32,
}


def cible(arret_id, code="RU02", elsm="31", score=None, duree=50, exclu=False, motif=None, d=MON):
    rang, acteur, repli = CODES[code]
    return {
        "as_of": d,
        "arret_id": arret_id,
        "assure_id": "as_" + arret_id,
        "elsm": elsm,
        "code_ru": code,
        "rang": rang,
        "autres_codes": [],
        "acteur": acteur,
        "acteur_repli": repli,
        "score": score,
        "raisons": ["arrêt psy"] if score is not None else [],
        "exclu": exclu,
        "motif_exclusion": motif,
        "duree_jours": duree,
    }


def ciblage_frame(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CIBLAGE_SCHEMA)


def caps(**per_actor) -> pl.DataFrame:
    """Capacities of ELSM 31 from keyword arguments, e.g. caps(TECH=1, CSAM=0)."""
    return pl.DataFrame(
        [{"elsm": "31", "acteur": a, "dossiers_par_semaine": n} for a, n in per_actor.items()],
        schema={"elsm": pl.String, "acteur": pl.String, "dossiers_par_semaine": pl.Int64},
    )


EMPTY_LEDGER = pl.DataFrame(schema=ROUTAGE_SCHEMA)


def allocation(routage: pl.DataFrame) -> list[tuple]:
    return routage.select("arret_id", "statut", "acteur", "rang_file", "motif").rows()


# --- pure transform ---------------------------------------------------------------------


def test_capacity_then_fallback_then_backlog_in_order():
    rows = [cible("a1", duree=60), cible("a2", duree=55), cible("a3", duree=50)]
    result = route(ciblage_frame(rows), caps(TECH=1, CSAM=1), EMPTY_LEDGER, MON)
    assert allocation(result.routage) == [
        ("a1", "affecte", "TECH", 1, None),
        ("a2", "affecte", "CSAM", 1, None),
        ("a3", "non_affecte", None, 1, "capacite_atteinte"),
    ]


def test_order_is_rank_then_score_desc_then_duree_desc_then_arret_id():
    rows = [
        cible("z_low_rank", code="RU02", score=0.99, duree=400),  # rank 10
        cible("b_no_score", code="RU03", score=None, duree=300),  # rank 4, null score last
        cible("c_score_09", code="RU03", score=0.9, duree=91),
        cible("d_score_05_long", code="RU03", score=0.5, duree=200),
        cible("f_score_05_short_f", code="RU03", score=0.5, duree=100),
        cible("e_score_05_short_e", code="RU03", score=0.5, duree=100),
    ]
    result = route(ciblage_frame(rows), caps(MC=10, TECH=10), EMPTY_LEDGER, MON)
    mc = result.routage.filter(pl.col("acteur") == "MC").sort("rang_file")
    assert mc.get_column("arret_id").to_list() == [
        "c_score_09",
        "d_score_05_long",
        "e_score_05_short_e",
        "f_score_05_short_f",
        "b_no_score",
    ]
    assert mc.get_column("rang_file").to_list() == [1, 2, 3, 4, 5]
    assert allocation(result.routage.filter(pl.col("acteur") == "TECH")) == [
        ("z_low_rank", "affecte", "TECH", 1, None)
    ]


def test_higher_ranked_code_takes_the_shared_fallback_capacity_first():
    # RU03 (rank 4, MC→CSAM) is served before RU02 (rank 10, TECH→CSAM): with MC and TECH
    # full, the single CSAM place goes to the RU03 dossier even though RU02 is longer.
    rows = [cible("a_ru02", code="RU02", duree=400), cible("b_ru03", code="RU03", duree=95)]
    result = route(ciblage_frame(rows), caps(MC=0, TECH=0, CSAM=1), EMPTY_LEDGER, MON)
    assert allocation(result.routage) == [
        ("b_ru03", "affecte", "CSAM", 1, None),
        ("a_ru02", "non_affecte", None, 1, "capacite_atteinte"),
    ]


def test_elsm_without_capacity_line_goes_to_backlog():
    rows = [cible("a1", elsm="82"), cible("a2", elsm="31")]
    result = route(ciblage_frame(rows), caps(TECH=5), EMPTY_LEDGER, MON)
    assert result.routage.select("elsm", "arret_id", "statut", "motif").rows() == [
        ("31", "a2", "affecte", None),
        ("82", "a1", "non_affecte", "pas_de_capacite"),
    ]


def test_excluded_rows_are_not_candidates():
    rows = [cible("a1", exclu=True, motif="en_attente"), cible("a2")]
    result = route(ciblage_frame(rows), caps(TECH=5), EMPTY_LEDGER, MON)
    assert result.routage.get_column("arret_id").to_list() == ["a2"]


def test_remaining_capacity_counts_only_other_nights_of_the_same_week():
    ledger = pl.DataFrame(
        [
            # Monday of the same week: uses 1 TECH place.
            {"dossier_id": "D1", "as_of": MON, "semaine_iso": "2026-W47", "elsm": "31",
             "acteur": "TECH", "statut": "affecte"},
            # Backlog rows use no capacity.
            {"dossier_id": "D2", "as_of": MON, "semaine_iso": "2026-W47", "elsm": "31",
             "acteur": None, "statut": "non_affecte"},
            # The night being re-run: replaced, not counted.
            {"dossier_id": "D3", "as_of": WED, "semaine_iso": "2026-W47", "elsm": "31",
             "acteur": "TECH", "statut": "affecte"},
            # Previous week: not counted.
            {"dossier_id": "D4", "as_of": date(2026, 11, 13), "semaine_iso": "2026-W46",
             "elsm": "31", "acteur": "TECH", "statut": "affecte"},
        ]
    )  # fmt: skip
    rows = [cible("a1", d=WED, duree=70), cible("a2", d=WED, duree=60)]
    result = route(ciblage_frame(rows), caps(TECH=2, CSAM=0), ledger, WED)
    assert allocation(result.routage) == [
        ("a1", "affecte", "TECH", 1, None),
        ("a2", "non_affecte", None, 1, "capacite_atteinte"),
    ]


def test_dossier_already_allocated_this_week_is_not_allocated_twice():
    did = dossier_id("a1", "RU02", "2026-W47")
    ledger = pl.DataFrame(
        [{"dossier_id": did, "as_of": MON, "semaine_iso": "2026-W47", "elsm": "31",
          "acteur": "TECH", "statut": "affecte"}]
    )  # fmt: skip
    rows = [cible("a1", d=WED), cible("a2", d=WED)]
    result = route(ciblage_frame(rows), caps(TECH=5), ledger, WED)
    assert result.routage.get_column("arret_id").to_list() == ["a2"]
    assert result.deja_affectes.rows() == [(did, "a1", "31")]


def test_dossier_id_is_stable_and_depends_on_code_and_week():
    assert dossier_id("a1", "RU02", "2026-W47") == dossier_id("a1", "RU02", "2026-W47")
    assert dossier_id("a1", "RU02", "2026-W47") != dossier_id("a1", "RU02", "2026-W48")
    assert dossier_id("a1", "RU02", "2026-W47") != dossier_id("a1", "RU03", "2026-W47")
    assert len(dossier_id("a1", "RU02", "2026-W47")) == 17
    assert semaine_iso(date(2027, 1, 1)) == "2026-W53"
    assert semaine_iso(MON) == semaine_iso(WED) == "2026-W47" != semaine_iso(NEXT_MON)


def test_inputs_are_not_mutated():
    frame = ciblage_frame([cible("a1"), cible("a2")])
    before = frame.clone()
    route(frame, caps(TECH=1), EMPTY_LEDGER, MON)
    assert frame.equals(before)


# --- the ru route step on a warehouse -------------------------------------------------


@pytest.fixture(autouse=True)
def fast_checks(request, monkeypatch):
    """The GX data checks take seconds per data folder: one test below runs them for real
    (``real_checks`` marker by name); the others replace them with a no-op."""
    if "real_checks" not in request.node.name:
        monkeypatch.setattr("flows.route._run_checks", lambda con, paths, as_of: "non exécutés")


@pytest.fixture
def paths(tmp_path) -> DataPaths:
    paths = DataPaths(tmp_path / "donnees").ensure()
    return paths


def write_ciblage(paths: DataPaths, rows) -> None:
    frame = ciblage_frame(rows)
    con = duckdb.connect(str(paths.warehouse))
    try:
        con.execute(
            "create table if not exists ciblage (as_of DATE, arret_id VARCHAR, assure_id VARCHAR,"
            " elsm VARCHAR, code_ru VARCHAR, rang INTEGER, autres_codes VARCHAR[],"
            " acteur VARCHAR, acteur_repli VARCHAR, score DOUBLE, raisons VARCHAR[],"
            " exclu BOOLEAN, motif_exclusion VARCHAR, duree_jours INTEGER)"
        )
        con.register("f", frame)
        con.execute("insert into ciblage by name select * from f")
    finally:
        con.close()


def ledger(paths: DataPaths) -> pl.DataFrame:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.sql("select * from routage order by as_of, elsm, arret_id").pl()
    finally:
        con.close()


def capacity_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "capacites.csv"
    path.write_text("elsm;acteur;dossiers_par_semaine\n" + text, encoding="utf-8")
    return path


def test_two_nights_of_a_week_share_capacity_and_a_new_week_resets_it(paths, tmp_path):
    cap = capacity_file(tmp_path, "31;TECH;2\n31;CSAM;0\n")
    settings = load_settings()
    write_ciblage(paths, [cible("a1", d=MON, duree=60), cible("a2", d=MON, duree=50)])
    monday = route_at(paths, MON, settings, capacites_file=cap)
    assert (monday.affectes, monday.non_affectes) == (2, 0)

    # Wednesday: a1 and a2 are en attente upstream; a3 is new, TECH is full for the week.
    write_ciblage(
        paths,
        [
            cible("a1", d=WED, exclu=True, motif="en_attente"),
            cible("a2", d=WED, exclu=True, motif="en_attente"),
            cible("a3", d=WED),
        ],
    )
    wednesday = route_at(paths, WED, settings, capacites_file=cap)
    assert (wednesday.affectes, wednesday.non_affectes) == (0, 1)
    assert wednesday.attente_par_motif == {"capacite_atteinte": 1}

    # Next Monday: a new ISO week, capacity is whole again.
    write_ciblage(paths, [cible("a3", d=NEXT_MON), cible("a4", d=NEXT_MON, duree=40)])
    next_week = route_at(paths, NEXT_MON, settings, capacites_file=cap)
    assert next_week.semaine_iso == "2026-W48"
    assert (next_week.affectes, next_week.non_affectes) == (2, 0)

    rows = ledger(paths).select("as_of", "arret_id", "acteur", "statut", "semaine_iso").rows()
    assert rows == [
        (MON, "a1", "TECH", "affecte", "2026-W47"),
        (MON, "a2", "TECH", "affecte", "2026-W47"),
        (WED, "a3", None, "non_affecte", "2026-W47"),
        (NEXT_MON, "a3", "TECH", "affecte", "2026-W48"),
        (NEXT_MON, "a4", "TECH", "affecte", "2026-W48"),
    ]
    ids = ledger(paths).filter(pl.col("arret_id") == "a3").get_column("dossier_id").to_list()
    assert ids[0] != ids[1]  # a new week is a new dossier


def test_rerunning_a_night_replaces_it_without_double_booking(paths, tmp_path):
    cap = capacity_file(tmp_path, "31;TECH;1\n31;CSAM;1\n")
    settings = load_settings()
    write_ciblage(paths, [cible("a1", d=MON)])
    route_at(paths, MON, settings, capacites_file=cap)
    write_ciblage(paths, [cible("a2", d=WED, duree=80), cible("a3", d=WED, duree=70)])
    first = route_at(paths, WED, settings, capacites_file=cap)
    before = ledger(paths)
    second = route_at(paths, WED, settings, capacites_file=cap)
    after = ledger(paths)
    assert after.equals(before)
    assert (first.affectes, first.non_affectes) == (second.affectes, second.non_affectes) == (1, 1)
    assert after.filter(pl.col("as_of") == WED).select("arret_id", "acteur", "statut").rows() == [
        ("a2", "CSAM", "affecte"),
        ("a3", None, "non_affecte"),
    ]
    assert after.group_by("as_of", "dossier_id").len().get_column("len").max() == 1


def test_rerunning_an_earlier_night_sees_the_later_nights_of_the_week(paths, tmp_path):
    cap = capacity_file(tmp_path, "31;TECH;1\n")
    settings = load_settings()
    write_ciblage(paths, [cible("a1", d=MON)])
    write_ciblage(paths, [cible("a2", d=WED)])
    route_at(paths, WED, settings, capacites_file=cap)  # Wednesday ran first (backfill)
    monday = route_at(paths, MON, settings, capacites_file=cap)
    assert monday.attente_par_motif == {"capacite_atteinte": 1}


def test_dossier_already_allocated_on_another_night_is_skipped_by_the_step(paths, tmp_path):
    cap = capacity_file(tmp_path, "31;TECH;5\n")
    settings = load_settings()
    # Upstream failed to mark a1 en attente on Wednesday: the guard still holds.
    write_ciblage(paths, [cible("a1", d=MON)])
    write_ciblage(paths, [cible("a1", d=WED), cible("a2", d=WED)])
    route_at(paths, MON, settings, capacites_file=cap)
    wednesday = route_at(paths, WED, settings, capacites_file=cap)
    assert (wednesday.candidats, wednesday.affectes, wednesday.deja_affectes) == (2, 1, 1)
    assert ledger(paths).filter(pl.col("arret_id") == "a1").height == 1


def test_elsm_without_capacity_warns(paths, tmp_path, caplog):
    cap = capacity_file(tmp_path, "31;TECH;5\n")
    write_ciblage(paths, [cible("a1", elsm="82"), cible("a2", elsm="82"), cible("a3")])
    with caplog.at_level(logging.WARNING, logger="ru.route"):
        summary = route_at(paths, MON, load_settings(), capacites_file=cap)
    assert summary.elsm_sans_capacite == ["82"]
    assert summary.attente_par_motif == {"pas_de_capacite": 2}
    assert "ELSM 82 : aucune capacité dans capacites.csv, ses 2 dossier(s)" in caplog.text


def test_route_without_ciblage_at_that_date_fails_in_french(paths, tmp_path):
    from flows.warehouse import WarehouseError

    write_ciblage(paths, [cible("a1", d=MON)])
    with pytest.raises(WarehouseError, match=r"aucun ciblage au 18/11/2026"):
        route_at(paths, WED, load_settings(), capacites_file=capacity_file(tmp_path, ""))


def test_cli_route(paths, tmp_path, monkeypatch):
    from flows.cli import app

    write_ciblage(paths, [cible("a1"), cible("a2", elsm="99X")])
    result = CliRunner().invoke(app, ["route", "--as-of", "2026-11-16", "--data", str(paths.root)])
    assert result.exit_code == 0, result.output
    assert "Orientation du 16/11/2026 (semaine 2026-W47) : 2 dossier(s) candidat(s)" in (
        result.output
    )
    assert "ELSM sans capacité déclarée : 99X" in result.output


def test_candidate_without_elsm_is_reported_not_routed():
    rows = [cible("a1", elsm=None), cible("a2")]
    result = route(ciblage_frame(rows), caps(TECH=5), EMPTY_LEDGER, MON)
    assert result.routage.get_column("arret_id").to_list() == ["a2"]
    assert result.sans_elsm.rows() == [("a1", "RU02")]


def test_ledger_passes_its_contract_real_checks(paths, tmp_path):
    cap = capacity_file(tmp_path, "31;TECH;1\n31;CSAM;0\n")
    write_ciblage(paths, [cible("a1", score=0.8), cible("a2"), cible("a3", elsm="82")])
    summary = route_at(paths, MON, load_settings(), capacites_file=cap)
    assert summary.controles == "ok"
    results = list((paths.checks).rglob("*.json"))
    assert any("routage" in p.name for p in results), results


def test_occupation_counts_the_night_and_the_week():
    from transforms.marts.routage import occupation

    ledger = pl.DataFrame(
        [{"dossier_id": "D1", "as_of": MON, "semaine_iso": "2026-W47", "elsm": "31",
          "acteur": "TECH", "statut": "affecte"}]
    )  # fmt: skip
    rows = [cible("a1", d=WED, duree=70), cible("a2", d=WED, duree=60)]
    capacity = caps(MC=3, TECH=2, CSAM=1)
    result = route(ciblage_frame(rows), capacity, ledger, WED)
    assert occupation(capacity, ledger, result.routage, WED).rows() == [
        ("31", "TECH", 2, 1, 2, 0),
        ("31", "CSAM", 1, 1, 1, 0),
        ("31", "MC", 3, 0, 0, 3),
    ]


def test_a_night_with_nothing_targeted_routes_nothing_without_failing(paths, tmp_path):
    """ru target ran at D and kept no arrêt: routing records an empty night, not an error."""
    import duckdb

    from flows.warehouse import record_step, step_done

    write_ciblage(paths, [cible("a1", d=MON)])
    con = duckdb.connect(str(paths.warehouse))
    record_step(con, "ciblage", WED, 0)
    con.close()
    summary = route_at(paths, WED, load_settings(), capacites_file=capacity_file(tmp_path, ""))
    assert summary.affectes == 0 and summary.non_affectes == 0
    con = duckdb.connect(str(paths.warehouse))
    assert step_done(con, "orientation", WED)
    assert con.execute("select count(*) from routage where as_of = ?", [WED]).fetchall() == [(0,)]
    con.close()

"""The training snapshots computed on changed assurés only are, row by row, what full builds
give at each date (transforms/snapshots.py), and see nothing delivered after their date."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from transforms.runner import arrets_snapshots
from transforms.snapshots import FINAL_DROPPED, arrets_en_cours_snapshots

D = dt.date(2026, 3, 31)
# Consecutive dates two weeks apart (lines and corrections delivered in between), a gap of
# three months, and D.
DATES = [dt.date(2025, 6, 5), dt.date(2025, 6, 19), dt.date(2025, 7, 3), dt.date(2025, 10, 23)]


@pytest.fixture(scope="module")
def warehouse_paths(tmp_path_factory):
    """A warehouse ingested from the project's generator (800 assurés over 2.5 years,
    corrected lines and cancellations included, data until 30/06/2026)."""
    from tests.sample_warehouse import ingested_sample

    return ingested_sample(tmp_path_factory, n_assures=800, graine=5)


def _sorted(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    return frame.sort(key)


@pytest.fixture(scope="module")
def both(warehouse_paths):
    """The fast snapshots and one full build per date, on the same warehouse."""
    from flows.build import build_params, load_ref_elsm
    from flows.settings import load_settings
    from flows.warehouse import warehouse

    params = build_params(D, load_settings())
    ref = load_ref_elsm()
    with warehouse(warehouse_paths, read_only=True) as con:
        fast = arrets_en_cours_snapshots(con, params, DATES, ref, final=D)
        full_arrets, full_prescripteurs = arrets_snapshots(con, params, [*DATES, D], ref)
        changes = con.execute(
            "select count(*) filter (where n > 1), count(*) from (select count(*) as n "
            "from lignes_ij where FLX_DIS_DTD <= $d group by ORG_AFF_COD, LIG_NUM)",
            {"d": D},
        ).fetchall()[0]
    return fast, full_arrets, full_prescripteurs, changes


def test_the_data_has_corrections_between_the_dates(both):
    """The comparison means something: lines get new versions, there are arrêts en cours."""
    fast, _, _, (corrected, lines) = both
    assert corrected > 0 and lines > 1000
    assert fast.en_cours["as_of"].unique().sort().to_list() == DATES
    assert fast.en_cours.group_by("as_of").len()["len"].min() > 20


def test_arrets_en_cours_equal_a_full_build_at_each_date(both):
    fast, full, _, _ = both
    key = ["as_of", "arret_id"]
    expected = full.filter(pl.col("as_of").is_in(DATES) & pl.col("en_cours"))
    assert fast.en_cours.schema == expected.schema
    assert _sorted(fast.en_cours, key).equals(_sorted(expected, key))


def test_prescribers_equal_a_full_build_at_each_date(both):
    fast, _, full, _ = both
    key = ["as_of", "PFS_PRE_NUM"]
    expected = full.filter(pl.col("as_of").is_in(DATES))
    assert _sorted(fast.prescripteurs, key).equals(_sorted(expected, key))
    assert fast.prescripteurs["ratio_pairs"].is_not_null().sum() > 0


def test_final_rows_equal_a_full_build_for_the_assures_seen_en_cours(both):
    fast, full, _, _ = both
    assures = fast.en_cours["assure_id"].unique()
    expected = full.filter((pl.col("as_of") == D) & pl.col("assure_id").is_in(assures.implode()))
    assert expected.height > fast.en_cours.filter(pl.col("as_of") == DATES[-1]).height
    expected = expected.drop(FINAL_DROPPED)
    assert _sorted(fast.final, ["arret_id"]).equals(_sorted(expected, ["arret_id"]))


def test_a_final_date_must_follow_the_snapshots(warehouse_paths):
    from flows.build import build_params, load_ref_elsm
    from flows.settings import load_settings
    from flows.warehouse import warehouse

    with (
        warehouse(warehouse_paths, read_only=True) as con,
        pytest.raises(ValueError, match="doit suivre"),
    ):
        arrets_en_cours_snapshots(
            con, build_params(D, load_settings()), DATES, load_ref_elsm(), final=DATES[-1]
        )

"""The chronicity model: labels without leakage, time split, fit vs baseline, artifact,
scoring checks and reasons."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import numpy as np
import polars as pl
import pytest

from models.evaluation import beats, lift_top, metrics
from models.features import FEATURE_NAMES
from models.registry import (
    ModelError,
    load_promoted,
    load_version,
    promote,
    promoted_version,
    save_version,
)
from models.scoring import FeatureMismatch, reasons_for, score_arrets, score_frame
from models.training import (
    TrainingError,
    TrainParams,
    labels,
    metadata_of,
    parse_train_params,
    predict,
    snapshot_dates,
    snapshot_step,
    time_split,
    train,
    training_rows,
)
from tests.test_ciblage import SCHEMA, arret

D = dt.date(2026, 3, 1)
PARAMS = TrainParams()
MTF = ["PSY", "RHU", "TRA", "ONC", "CAR", "INF", "GRO", "AUT"]
MTF_EFFECT = np.array([1.0, 0.5, 0.3, 1.3, 0.6, -0.8, 0.2, 0.0])


def history(n: int = 12_000, seed: int = 7) -> pl.DataFrame:
    """Synthetic arrêts: start, true length and attributes; the length depends on the
    medical category, age, ALD, an atypical prescriber and prolongation rhythm."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2023-01-01") + rng.integers(0, 1150, n).astype("timedelta64[D]")
    mtf = rng.choice(len(MTF), n, p=[0.15, 0.2, 0.12, 0.05, 0.05, 0.15, 0.05, 0.23])
    age = rng.integers(20, 65, n)
    ald = rng.random(n) < 0.1
    atyp = rng.random(n) < 0.1
    interval = rng.choice([10, 15, 30], n)
    mu = (
        np.log(25)
        + MTF_EFFECT[mtf]
        + 0.03 * (age - 40)
        + 0.6 * ald
        + 0.5 * atyp
        + 0.3 * (interval == 10)
    )
    length = np.maximum(1, np.exp(rng.normal(mu, 0.8))).astype(int)
    return pl.DataFrame(
        {
            "arret_id": [f"H{i:06d}" for i in range(n)],
            "debut_arret": start.astype("datetime64[D]").astype(dt.date).tolist(),
            "longueur": length,
            "mtf_cat": [MTF[m] for m in mtf],
            "age": age,
            "ald": ald,
            "prescripteur_atypique": atyp,
            "intervalle": interval,
            "PSP_SPE_COD": rng.choice([1, 33, 41], n, p=[0.85, 0.1, 0.05]),
            "sexe": rng.choice([1, 2], n),
            "BSE_REM_PRU": rng.uniform(20, 90, n).round(2),
            "nb_arrets_12m": rng.poisson(0.5, n) + 1,
        }
    )


def arrets_at(h: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The ``arrets`` rows at ``day`` as the pipeline would see them: nothing after ``day``
    (a running arrêt's prescription is only known 7 days ahead)."""
    end = pl.col("debut_arret") + pl.duration(days=pl.col("longueur") - 1)
    visible = h.filter(pl.col("debut_arret") <= day)
    running = end >= day
    duree = (pl.lit(day) - pl.col("debut_arret")).dt.total_days() + 1
    seen = pl.min_horizontal(duree, pl.col("longueur"))
    base = arret("x")
    frame = visible.select(
        pl.lit(day).alias("as_of"),
        "arret_id",
        ("A" + pl.col("arret_id")).alias("assure_id"),
        pl.lit("MAL").alias("risque"),
        "debut_arret",
        pl.when(running)
        .then(pl.lit(day) + pl.duration(days=7))
        .otherwise(end)
        .alias("fin_prescrite"),
        pl.min_horizontal(end, pl.lit(day) - pl.duration(days=2)).alias("dernier_jour_paye"),
        (seen - 3).clip(0).cast(pl.Int32).alias("jours_ij"),
        running.alias("en_cours"),
        pl.when(running).then(duree).cast(pl.Int32).alias("duree_jours"),
        ((seen - 1) // pl.col("intervalle")).cast(pl.Int32).alias("nb_prolongations"),
        pl.col("PSP_SPE_COD").cast(pl.Int32),
        "prescripteur_atypique",
        pl.when(pl.col("prescripteur_atypique"))
        .then(2.5)
        .otherwise(1.0)
        .alias("ratio_pairs_prescripteur"),
        pl.lit(False).alias("prolongation_autre_prescripteur"),
        pl.lit(False).alias("tpt_en_cours"),
        "ald",
        "mtf_cat",
        pl.lit(False).alias("deces"),
        "BSE_REM_PRU",
        pl.col("sexe").cast(pl.Int32),
        pl.col("age").cast(pl.Int32),
        (seen - 3).clip(0).cast(pl.Int32).alias("ij_3ans"),
        pl.col("nb_arrets_12m").cast(pl.Int32),
        pl.lit(0, pl.Int32).alias("nb_arrets_courts_6m"),
    )
    missing = {k: v for k, v in base.items() if k not in frame.columns}
    frame = frame.with_columns(pl.lit(v).alias(k) for k, v in missing.items())
    return frame.select(pl.col(k).cast(t) for k, t in SCHEMA.items())


@pytest.fixture(scope="module")
def dataset():
    h = history()
    dates = snapshot_dates(dt.date(2023, 1, 1), D, PARAMS)
    snapshots = pl.concat([arrets_at(h, s) for s in dates])
    rows = training_rows(snapshots, arrets_at(h, D), D, PARAMS)
    return h, rows


@pytest.fixture(scope="module")
def trained(dataset):
    _, rows = dataset
    return train(rows, PARAMS)


@pytest.fixture
def saved(tmp_path, trained):
    meta = metadata_of(
        trained, PARAMS, D, "20260301-test", "2026-03-01T00:00:00+00:00", True, "ok", None
    )
    save_version(tmp_path, "20260301-test", trained.pipeline, meta, "# carte")
    promote(tmp_path, "20260301-test", "ok", "2026-03-01T00:00:00+00:00")
    return tmp_path, meta


# --- labels and leakage -------------------------------------------------------------------


def test_label_is_reaching_180_days_as_known_at_d():
    at_d = pl.DataFrame(
        {
            "arret_id": ["A", "B", "C"],
            "debut_arret": [dt.date(2025, 1, 1)] * 3,
            # A: 180 days (prescribed to day 180); B: 179 days; C: paid to day 180.
            "fin_prescrite": [dt.date(2025, 6, 29), dt.date(2025, 6, 28), dt.date(2025, 3, 1)],
            "dernier_jour_paye": [dt.date(2025, 6, 1), dt.date(2025, 6, 28), dt.date(2025, 6, 29)],
        }
    )
    assert labels(at_d, 180).sort("arret_id")["chronique"].to_list() == [True, False, True]


def test_a_row_is_used_only_when_its_label_is_settled_by_d():
    s = dt.date(2025, 6, 1)
    snapshot = pl.DataFrame(
        [
            arret("A", as_of=s, duree_jours=21),  # settled on S + 159
            arret("B", as_of=s, duree_jours=90),  # settled on S + 90
            arret("C", as_of=s, duree_jours=20),  # too short
            arret("E", as_of=s, duree_jours=91),  # too long
            arret("F", as_of=s, duree_jours=50, risque="ATMP"),
        ],
        schema=SCHEMA,
    )
    at_d = pl.DataFrame(
        {
            "arret_id": ["A", "B", "C", "E", "F"],
            "debut_arret": [dt.date(2025, 1, 1)] * 5,
            "fin_prescrite": [dt.date(2026, 1, 1)] * 5,
            "dernier_jour_paye": [None] * 5,
        },
        schema_overrides={"dernier_jour_paye": pl.Date},
    )
    d_early = s + dt.timedelta(days=158)
    assert training_rows(snapshot, at_d, d_early, PARAMS)["arret_id"].to_list() == ["B"]
    d_late = s + dt.timedelta(days=159)
    rows = training_rows(snapshot, at_d, d_late, PARAMS)
    assert rows["arret_id"].to_list() == ["A", "B"]
    assert rows.columns == ["snapshot", "arret_id", *FEATURE_NAMES, "chronique"]


def test_labels_never_use_data_after_d(dataset):
    """The training rows are the same whether or not the history goes on after D."""
    h, rows = dataset
    truncated = h.with_columns(
        # Every arrêt running at D stops the day after D: invisible at D, so no change.
        pl.when(pl.col("debut_arret") + pl.duration(days=pl.col("longueur") - 1) > D)
        .then((pl.lit(D) - pl.col("debut_arret")).dt.total_days() + 2)
        .otherwise(pl.col("longueur"))
        .alias("longueur")
    )
    dates = snapshot_dates(dt.date(2023, 1, 1), D, PARAMS)
    again = training_rows(
        pl.concat([arrets_at(truncated, s) for s in dates]), arrets_at(truncated, D), D, PARAMS
    )
    assert again.equals(rows)


def test_snapshot_dates_step_back_from_the_last_fully_labelled_date():
    dates = snapshot_dates(dt.date(2024, 1, 1), dt.date(2025, 12, 31), PARAMS)
    assert dates[-1] == dt.date(2025, 12, 31) - dt.timedelta(days=159)
    assert dates[0] >= dt.date(2025, 1, 1)
    assert {(b - a).days for a, b in itertools.pairwise(dates)} == {14}


def test_snapshot_step_grows_with_each_started_slice_of_visible_lines():
    from dataclasses import replace

    per = PARAMS.lignes_par_pas_snapshots
    assert [snapshot_step(PARAMS, n) for n in (0, 1, per)] == [14, 14, 14]
    assert [snapshot_step(PARAMS, n) for n in (per + 1, 2 * per, 2 * per + 1)] == [28, 28, 42]
    wide = replace(PARAMS, pas_snapshots_jours=snapshot_step(PARAMS, 9_172_294))
    dates = snapshot_dates(dt.date(2023, 1, 1), dt.date(2026, 3, 31), wide)
    assert {(b - a).days for a, b in itertools.pairwise(dates)} == {28}
    assert dates[-1] == dt.date(2026, 3, 31) - dt.timedelta(days=159)  # same latest date


def test_time_split_validates_on_the_latest_dates_and_embargoes_training(dataset):
    _, rows = dataset
    split = time_split(rows, PARAMS)
    assert max(split.dates_train) < min(split.dates_valid)
    assert (
        split.dates_valid == sorted(rows["snapshot"].unique().to_list())[-len(split.dates_valid) :]
    )
    first_valid = min(split.dates_valid)
    settled = split.train.select(
        (pl.col("snapshot") + pl.duration(days=180 - pl.col("duree_jours"))).max()
    ).item()
    assert settled <= first_valid
    # No arrêt is on both sides.
    assert not set(split.train["arret_id"]) & set(split.valid["arret_id"])


def test_too_little_history_is_refused():
    one_date = pl.DataFrame({"snapshot": [D], "duree_jours": [30]})
    with pytest.raises(TrainingError, match="au moins 2 dates"):
        time_split(one_date, PARAMS)


# --- metrics ------------------------------------------------------------------------------


def test_lift_shares_ties_at_the_cut():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    # Top 10 % = 1 row; the three tied best rows hold 1 positive out of 3: lift = (1/3) / 0.2.
    assert lift_top(y, np.array([5, 5, 5, 1, 1, 1, 1, 1, 1, 1.0])) == pytest.approx(5 / 3)
    assert lift_top(y, np.array([9, 0, 0, 0, 8, 0, 0, 0, 0, 0.0])) == pytest.approx(5.0)


def test_beats_needs_both_margins():
    strong = metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    weak = metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.8, 0.2, 0.9]))
    assert beats(strong, weak, 0.01, 0.01)[0]
    assert not beats(weak, strong, 0.01, 0.01)[0]
    assert not beats(strong, strong, 0.01, 0.01)[0]
    assert "ne bat pas" in beats(strong, strong, 0.01, 0.01)[1]


def test_the_model_beats_the_duration_baseline_on_the_time_split(trained):
    m, b = trained.modele, trained.reference
    print(
        f"\nvalidation ({m.n} lignes, {m.positifs} chroniques) — modèle : AUC {m.roc_auc:.3f} "
        f"AP {m.average_precision:.3f} Brier {m.brier:.4f} lift10 {m.lift_top10:.2f} | "
        f"durée seule : AUC {b.roc_auc:.3f} AP {b.average_precision:.3f} Brier {b.brier:.4f} "
        f"lift10 {b.lift_top10:.2f}"
    )
    assert m.n > 1000 and 0 < m.positifs < m.n
    assert m.roc_auc - b.roc_auc >= 0.05
    assert m.average_precision - b.average_precision >= 0.05
    assert m.lift_top10 > b.lift_top10
    assert m.brier < b.brier
    assert trained.promouvable


def test_parameters_file_is_validated():
    assert parse_train_params({"marge_auc": 0.02}, "m.yml").marge_auc == 0.02
    with pytest.raises(TrainingError, match=r"m\.yml : paramètre\(s\) inconnu\(s\) : pas"):
        parse_train_params({"pas": 7}, "m.yml")
    with pytest.raises(TrainingError, match="duree_min"):
        parse_train_params({"duree_min": 100}, "m.yml")
    with pytest.raises(TrainingError, match="entier"):
        parse_train_params({"pas_snapshots_jours": 1.5}, "m.yml")


# --- artifact -----------------------------------------------------------------------------


def test_artifact_round_trip_predicts_identically(saved, trained, dataset):
    root, _meta = saved
    assert promoted_version(root) == "20260301-test"
    loaded = load_promoted(root)
    assert loaded is not None and loaded.version == "20260301-test"
    _, rows = dataset
    sample = rows.head(2000)
    assert np.array_equal(predict(loaded.pipeline, sample), predict(trained.pipeline, sample))
    written = json.loads((root / "chronicite" / "20260301-test" / "metadata.json").read_text())
    assert list(written["features"]) == list(FEATURE_NAMES)
    assert written["features"]["age"] == "Int32"
    assert written["metriques"]["modele"]["roc_auc"] == trained.modele.roc_auc
    assert written["empreinte_donnees"] == trained.empreinte and len(trained.empreinte) == 64
    assert written["versions"]["scikit-learn"].startswith("1.")
    assert written["dates_validation"] and written["dates_entrainement"]
    # No pickle anywhere.
    assert not list(root.rglob("*.pkl")) and not list(root.rglob("*.pickle"))


def test_no_promoted_model_means_none(tmp_path):
    assert load_promoted(tmp_path) is None


class _Foreign:
    """A type no chronicity pipeline contains."""


def test_an_artifact_with_unexpected_types_is_refused(tmp_path, saved, trained):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    root, _meta = saved
    artifact = root / "chronicite" / "20260301-test" / "model.skops"
    sio.dump(LogisticRegression(), artifact)
    with pytest.raises(ModelError, match="n'est pas un pipeline de chronicité"):
        load_version(root, "20260301-test")
    sio.dump({"f": _Foreign()}, artifact)
    with pytest.raises(ModelError, match="types non reconnus"):
        load_version(root, "20260301-test")


def test_the_model_card_is_french_and_states_the_baseline(saved):
    from models.card import model_card

    _, meta = saved
    card = model_card(meta)
    assert "Carte du modèle de chronicité" in card
    assert "référence (classement par durée)" in card
    assert f"{meta['metriques']['modele']['roc_auc']:.3f}".replace(".", ",") in card
    assert "Limites" in card


# --- scoring ------------------------------------------------------------------------------


def _current(h: pl.DataFrame) -> pl.DataFrame:
    return arrets_at(h, dt.date(2026, 2, 1))


def test_scoring_gives_a_probability_to_every_eligible_arret(saved, dataset):
    root, _ = saved
    h, _ = dataset
    frame = pl.concat(
        [
            _current(h),
            pl.DataFrame(
                [
                    arret("ATMP1", as_of=dt.date(2026, 2, 1), risque="ATMP", duree_jours=40),
                    arret("COURT", as_of=dt.date(2026, 2, 1), duree_jours=20),
                    arret("LONG", as_of=dt.date(2026, 2, 1), duree_jours=400),
                ],
                schema=SCHEMA,
            ),
        ]
    )
    scores = score_arrets(load_promoted(root), frame, dt.date(2026, 2, 1))
    expected = frame.filter(
        (pl.col("risque") == "MAL") & pl.col("en_cours") & (pl.col("duree_jours") >= 21)
    )
    assert sorted(scores["arret_id"]) == sorted(expected["arret_id"])
    assert "LONG" in scores["arret_id"] and "ATMP1" not in scores["arret_id"]
    assert scores["score"].is_between(0, 1).all()
    assert scores["score"].null_count() == 0
    assert scores["raisons"].list.len().sum() == 0  # reasons only on demand
    explained = reasons_for(
        load_promoted(root), frame, dt.date(2026, 2, 1), scores["arret_id"].head(500)
    )
    assert explained.height == 500
    assert explained["score"].equals(scores["score"].head(500))
    lengths = explained["raisons"].list.len() + explained["raisons_medicales"].list.len()
    assert lengths.max() <= 3 and lengths.sum() > 0


def test_reasons_name_what_raises_the_score_in_plain_french(saved):
    root, _ = saved
    model = load_promoted(root)
    day = dt.date(2026, 2, 1)
    risky = arret(
        "R",
        as_of=day,
        duree_jours=40,
        mtf_cat="PSY",
        age=62,
        ald=True,
        prescripteur_atypique=True,
        ratio_pairs_prescripteur=2.5,
        nb_prolongations=3,
    )
    ordinary = arret("O", as_of=day, duree_jours=40, mtf_cat="INF", age=25)
    scores = score_frame(
        model.pipeline, model.metadata, pl.DataFrame([risky, ordinary], schema=SCHEMA)
    )
    r = scores.row(0, named=True)
    o = scores.row(1, named=True)
    assert r["score"] > o["score"]
    reasons = r["raisons"] + r["raisons_medicales"]
    assert 1 <= len(reasons) <= 3
    assert set(r["raisons_medicales"]) <= {"arrêt psy", "ALD", "temps partiel thérapeutique"}
    assert set(reasons) & {"arrêt psy", "62 ans", "ALD", "prescripteur atypique"}
    assert not set(r["raisons"]) & {"arrêt psy", "ALD"}


def test_scoring_refuses_a_missing_or_retyped_feature(saved, dataset):
    root, _ = saved
    model = load_promoted(root)
    frame = _current(dataset[0])
    with pytest.raises(FeatureMismatch, match="caractéristique « nb_prolongations » absente"):
        score_arrets(model, frame.drop("nb_prolongations"), dt.date(2026, 2, 1))
    with pytest.raises(
        FeatureMismatch, match="« age » de type Float64 dans la table arrets, Int32"
    ):
        score_arrets(model, frame.with_columns(pl.col("age").cast(pl.Float64)), dt.date(2026, 2, 1))


def test_scoring_refuses_a_model_trained_on_other_features(saved, dataset):
    root, _meta = saved
    model = load_promoted(root)
    other = {**model.metadata, "features": {"duree_jours": "Int32"}}
    with pytest.raises(FeatureMismatch, match="réentraînez-le"):
        score_arrets(
            type(model)(model.version, model.pipeline, other, model.path),
            _current(dataset[0]),
            dt.date(2026, 2, 1),
        )


# --- end to end on the project's generator: ingest → snapshots → train → target ------------

E2E_D = dt.date(2026, 3, 31)


@pytest.fixture(scope="module")
def warehouse_paths(tmp_path_factory):
    """A warehouse ingested from the project's synthetic generator (2,500 assurés, data
    until 30/06/2026, i.e. three months after the training date E2E_D)."""
    from tests.sample_warehouse import ingested_sample

    return ingested_sample(tmp_path_factory, n_assures=2500, graine=11)


def _truncated_copy(paths, day: dt.date, folder):
    """A copy of the warehouse without any line or action delivered after ``day``."""
    import shutil

    import duckdb

    from flows.settings import DataPaths

    copy = DataPaths(folder)
    copy.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths.warehouse, copy.warehouse)
    con = duckdb.connect(str(copy.warehouse))
    # lignes_ij / actions are views over the lake: the copy gets truncated tables instead.
    for table in ("lignes_ij", "actions"):
        con.execute(
            f"create table {table}_avant as select * from {table} where FLX_DIS_DTD <= $d",
            {"d": day},
        )
        con.execute(f"drop view {table}")
        con.execute(f"alter table {table}_avant rename to {table}")
    con.close()
    return copy


def _frames(paths, day: dt.date):
    from flows.build import load_ref_elsm
    from flows.settings import load_settings
    from flows.train import training_frames
    from flows.warehouse import warehouse

    with warehouse(paths) as con:
        return training_frames(con, day, load_settings(), PARAMS, load_ref_elsm())


@pytest.mark.slow
def test_snapshots_and_labels_see_nothing_after_their_date(warehouse_paths, tmp_path):
    """Deleting every line delivered after D changes nothing in the training set at D, and
    deleting what came after a snapshot S changes nothing in the arrêts at S."""
    snapshots, at_d, dates = _frames(warehouse_paths, E2E_D)
    assert len(dates) >= 2 and snapshots.height > 0
    truncated = _truncated_copy(warehouse_paths, E2E_D, tmp_path / "a_d")
    snapshots_t, at_d_t, dates_t = _frames(truncated, E2E_D)
    key = ["as_of", "arret_id"]
    assert dates_t == dates
    assert snapshots_t.sort(key).equals(snapshots.sort(key))
    assert at_d_t.sort(key).equals(at_d.sort(key))
    rows = training_rows(snapshots, at_d, E2E_D, PARAMS)
    assert training_rows(snapshots_t, at_d_t, E2E_D, PARAMS).equals(rows)

    s = dates[len(dates) // 2]
    at_s = _truncated_copy(warehouse_paths, s, tmp_path / "a_s")
    from flows.build import build_params, load_ref_elsm
    from flows.settings import load_settings
    from flows.warehouse import warehouse
    from models.features import eligible_condition
    from transforms.runner import arrets_snapshots

    with warehouse(at_s) as con:
        alone, _ = arrets_snapshots(con, build_params(s, load_settings()), [s], load_ref_elsm())
    population = eligible_condition(PARAMS.duree_min, PARAMS.duree_max)
    assert alone.filter(population).height > 0
    assert (
        alone.filter(population).sort(key).equals(snapshots.filter(pl.col("as_of") == s).sort(key))
    )


@pytest.mark.slow
def test_train_then_target_end_to_end(warehouse_paths):
    from flows.build import build_at
    from flows.settings import load_settings
    from flows.target import target_at
    from flows.train import train_at
    from flows.warehouse import warehouse

    settings = load_settings()
    paths = warehouse_paths
    summary = train_at(paths, E2E_D, settings)
    folder = paths.modeles / "chronicite" / summary.version
    assert {p.name for p in folder.iterdir()} == {"model.skops", "metadata.json", "carte_modele.md"}
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert meta["as_of"] == "2026-03-31"
    with warehouse(paths) as con:
        visible = con.execute(
            "select count(*) from lignes_ij where FLX_DIS_DTD <= $d", {"d": E2E_D}
        ).fetchall()[0][0]
    assert meta["parametres"]["pas_snapshots_jours"] == snapshot_step(PARAMS, visible) == 14
    assert max(meta["dates_validation"]) <= "2025-10-23"  # D − 159 days
    verdict = beats(
        metrics_from(meta["metriques"]["modele"]),
        metrics_from(meta["metriques"]["reference_duree"]),
        PARAMS.marge_auc,
        PARAMS.marge_ap,
    )[0]
    assert summary.promu is verdict
    assert (promoted_version(paths.modeles) == summary.version) is verdict
    print(f"\n{summary.lignes} lignes ; modèle {summary.metriques} ; référence {summary.reference}")

    build_at(paths, E2E_D, settings, checks=False)
    # A snapshot stored by `ru build` is what training recomputes (reutiliser_arrets).
    from flows.build import build_params, load_ref_elsm
    from transforms.runner import arrets_snapshots

    with warehouse(paths) as con:
        stored = con.sql("select * from arrets where as_of = $d", params={"d": E2E_D}).pl()
        fresh, _ = arrets_snapshots(con, build_params(E2E_D, settings), [E2E_D], load_ref_elsm())
    key = ["arret_id"]
    assert (
        fresh.select(pl.col(c).cast(t) for c, t in stored.schema.items())
        .sort(key)
        .equals(stored.sort(key))
    )
    # Rules only (no promoted model yet, or the trained one did not beat the baseline).
    if not verdict:
        rules_only = target_at(paths, E2E_D, settings)
        assert rules_only.codes_non_evalues == ["RU01"] and rules_only.modele is None
        promote(paths.modeles, summary.version, "forcé pour le test", "2026-03-31")
    first = target_at(paths, E2E_D, settings)
    assert first.modele == summary.version and first.codes_non_evalues == []
    again = target_at(paths, E2E_D, settings)  # re-targeting a date replaces it
    with warehouse(paths, read_only=True) as con:
        n = con.execute("select count(*) from ciblage where as_of = $d", {"d": E2E_D}).fetchone()[0]
        scored = con.execute(
            "select count(*) filter (where c.score is null), count(*) from ciblage c "
            "join arrets a using (as_of, arret_id) where c.as_of = $d and a.risque = 'MAL' "
            "and a.duree_jours >= 21",
            {"d": E2E_D},
        ).fetchone()
    assert n == first.lignes == again.lignes > 0
    assert scored[0] == 0 and scored[1] > 0


def metrics_from(d: dict):
    from models.evaluation import Metrics

    return Metrics(**d)

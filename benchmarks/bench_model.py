"""Benchmark of the chronicity model: training time and scoring throughput (arrêts/second).

    uv run python benchmarks/bench_model.py
    uv run python benchmarks/bench_model.py --lignes 500000 --arrets 2000000
    uv run python benchmarks/bench_model.py --entrepot /tmp/ru_bench10 --as-of 2026-03-31 --entrainement

With ``--entrepot --entrainement``: ``ru train --as-of`` end to end on that warehouse
(``flows.train.train_at``: snapshots, fit, evaluation against the baseline, artifact), as on
a fresh warehouse (arrêts stored by earlier builds are not reused), with its wall and CPU
time and the time of each stage (the snapshots' stages are logged at INFO level).

Training alone: ``models.training.train`` (time split, 3 calibration folds + final fit,
evaluation against the baseline) on ``--lignes`` training rows drawn by a generator local to
this benchmark (features of the ``arrets`` table, chronicity depending on category, age,
ALD, prescriber and prolongation rhythm). With ``--entrepot --photographie``, the time of one
full build at a past date (``arrets_snapshots``, what a snapshot cost before
``transforms/snapshots.py``) is also measured.

Scoring: ``models.scoring.score_frame`` on ``--arrets`` arrêts en cours; then the reasons
(one extra prediction per feature) on one in ten of them, as ``ru target`` computes reasons
only for the arrêts it keeps in ``ciblage``. Wall time and CPU time of the process are both
given: on a shared machine the second is the fairer figure. With ``--entrepot``, the arrêts
at ``--as-of`` of that warehouse (``ru build`` must have run) are scored as well.
Targets (issue 4): scoring > 200,000 arrêts/s, training < 5 minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MTF = ["PSY", "RHU", "TRA", "ONC", "CAR", "INF", "GRO", "AUT"]
MTF_EFFECT = np.array([1.0, 0.5, 0.3, 1.3, 0.6, -0.8, 0.2, 0.0])


def generate(n: int, seed: int, training: bool) -> pl.DataFrame:
    """``n`` arrêts maladie en cours with the model's features (dtypes of ``arrets``); with
    ``training``, also a snapshot date among 40 and the label ``chronique``."""
    rng = np.random.default_rng(seed)
    mtf = rng.choice(len(MTF), n, p=[0.15, 0.2, 0.12, 0.05, 0.05, 0.15, 0.05, 0.23])
    age = rng.integers(20, 65, n)
    ald = rng.random(n) < 0.1
    atyp = rng.random(n) < 0.05
    interval = rng.choice([10, 15, 30], n)
    mu = np.log(25) + MTF_EFFECT[mtf] + 0.03 * (age - 40) + 0.6 * ald + 0.5 * atyp
    mu += 0.3 * (interval == 10)
    # Lengths of arrêts still running at ≥ 21 days; the duration seen is uniform up to 90.
    length = np.exp(rng.normal(mu, 0.8))
    length = np.where(length < 21, 21 + rng.exponential(30, n), length).astype(int)
    duree = (21 + rng.random(n) * (np.minimum(length, 90) - 21 + 1)).astype(int)
    if not training:
        duree = np.where(rng.random(n) < 0.3, duree + rng.integers(0, 400, n), duree)
    frame = pl.DataFrame(
        {
            "arret_id": [f"B{i:09d}" for i in range(n)],
            "risque": ["MAL"] * n,
            "en_cours": np.ones(n, dtype=bool),
            "mtf_cat": [MTF[m] for m in mtf],
            "PSP_SPE_COD": rng.choice([1, 33, 41], n, p=[0.85, 0.1, 0.05]).astype(np.int16),
            "sexe": rng.choice([1, 2], n).astype(np.int16),
            "duree_jours": duree.astype(np.int32),
            "nb_prolongations": ((duree - 1) // interval).astype(np.int32),
            "age": age.astype(np.int16),
            "jours_ij": np.maximum(duree - 3, 0).astype(np.int32),
            "BSE_REM_PRU": rng.uniform(20, 90, n).round(2),
            "ij_3ans": (np.maximum(duree - 3, 0) + rng.poisson(20, n)).astype(np.int32),
            "nb_arrets_12m": (rng.poisson(0.5, n) + 1).astype(np.int32),
            "nb_arrets_courts_6m": rng.poisson(0.2, n).astype(np.int32),
            "ratio_pairs_prescripteur": np.where(atyp, 2.5, rng.uniform(0.5, 1.5, n)),
            "prescripteur_atypique": atyp,
            "prolongation_autre_prescripteur": rng.random(n) < 0.1,
            "ald": ald,
            "tpt_en_cours": rng.random(n) < 0.02,
        }
    )
    frame = frame.with_columns(pl.col("BSE_REM_PRU").cast(pl.Decimal(12, 2)))
    if training:
        first = dt.date(2024, 1, 1)
        dates = [first + dt.timedelta(days=14 * k) for k in range(40)]
        frame = frame.with_columns(
            pl.Series("snapshot", [dates[i] for i in rng.integers(0, 40, n)]),
            pl.Series("chronique", length >= 180),
        )
    return frame


def arrets_from_warehouse(folder: Path, as_of: dt.date) -> pl.DataFrame:
    import duckdb

    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql("select * from arrets where as_of = $d", params={"d": as_of}).pl()
    finally:
        con.close()


def score_batch(result, meta: dict, arrets: pl.DataFrame, source: str) -> None:
    from models.scoring import score_frame

    n = arrets.height
    print(f"Score de {n:,} {source}…".replace(",", " "), flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    scores = score_frame(result.pipeline, meta, arrets, with_reasons=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"  score : {wall:.1f} s, {n / wall:,.0f} arrêts/s ({n / cpu:,.0f} par seconde de "
        f"calcul) — cible > 200 000 ; score moyen {scores['score'].mean():.3f}".replace(",", " ")
    )
    # Reasons are computed for the targeted arrêts only (ciblage rows): here one in ten.
    subset = arrets.sample(fraction=0.1, seed=3)
    t0, c0 = time.perf_counter(), time.process_time()
    score_frame(result.pipeline, meta, subset, with_reasons=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"  raisons ({subset.height:,} arrêts ciblés) : {wall:.1f} s, "
        f"{subset.height / wall:,.0f} arrêts/s ({subset.height / cpu:,.0f} par seconde de "
        "calcul)".replace(",", " "),
        flush=True,
    )


def snapshot_time(folder: Path, day: dt.date) -> None:
    """Time of one full build at ``day`` on a warehouse (``arrets_snapshots``)."""
    import duckdb

    from flows.build import build_params, load_ref_elsm
    from flows.settings import load_settings
    from transforms.runner import arrets_snapshots

    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        t0 = time.perf_counter()
        frame, _ = arrets_snapshots(con, build_params(day, load_settings()), [day], load_ref_elsm())
        print(
            f"Un build complet à une date passée (arrêts au {day}, {frame.height:,} arrêts) : "
            f"{time.perf_counter() - t0:.1f} s".replace(",", " ")
        )
    finally:
        con.close()


def train_on_warehouse(folder: Path, day: dt.date) -> None:
    """``ru train --as-of day`` on a warehouse, end to end (``flows.train.train_at``:
    snapshots, fit, evaluation, artifact), as on a fresh warehouse: arrêts stored by earlier
    builds are not reused (``reutiliser_arrets`` off), every snapshot is computed."""
    import resource
    from dataclasses import replace

    from flows.settings import DataPaths, load_settings
    from flows.train import load_train_params, train_at

    paths = DataPaths(folder)
    params = replace(load_train_params(), reutiliser_arrets=False)
    print(f"ru train --as-of {day} sur {folder} (sans réutiliser la table arrets)…", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = train_at(paths, day, load_settings(), params)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"  entraînement de bout en bout : {wall:.1f} s ({cpu:.1f} s de calcul ; cible < 300 s), "
        f"pic mémoire {peak:.1f} Gio ; {summary.dates_observation} dates d'observation, "
        f"{summary.lignes_entrainement} lignes d'entraînement, {summary.lignes_validation} "
        f"de validation ; AUC {summary.metriques['roc_auc']:.3f} contre "
        f"{summary.reference['roc_auc']:.3f} (durée seule) ; "
        f"{'promu' if summary.promu else 'non promu'}"
    )
    print(f"  étapes (s) : {summary.durees_s}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lignes", type=int, default=500_000, help="lignes d'entraînement")
    parser.add_argument("--arrets", type=int, default=1_000_000, help="arrêts à scorer")
    parser.add_argument("--entrepot", type=Path, default=None)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 3, 31))
    parser.add_argument(
        "--entrainement",
        action="store_true",
        help="mesure `ru train --as-of` de bout en bout sur l'entrepôt (ses photographies)",
    )
    parser.add_argument(
        "--photographie",
        action="store_true",
        help="mesure aussi un build complet à une date passée sur l'entrepôt (long)",
    )
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="  %(name)s : %(message)s")

    from models.features import eligible
    from models.training import TrainParams, metadata_of, train

    params = TrainParams()
    if args.entrepot and args.entrainement:
        train_on_warehouse(args.entrepot, args.as_of)
    print(f"Entraînement sur {args.lignes:,} lignes générées…".replace(",", " "), flush=True)
    rows = generate(args.lignes, seed=1, training=True)
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(rows, params)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    m, b = result.modele, result.reference
    print(
        f"  entraînement + évaluation : {fit_s:.1f} s ({fit_cpu:.1f} s de calcul ; cible "
        f"< 300 s) ; "
        f"{result.split.train.height} lignes d'entraînement, {result.split.valid.height} de "
        f"validation ; AUC {m.roc_auc:.3f} contre {b.roc_auc:.3f} (durée seule), "
        f"AP {m.average_precision:.3f} contre {b.average_precision:.3f}"
    )
    meta = metadata_of(result, params, args.as_of, "bench", "", True, "", None)

    batches = [(generate(args.arrets, seed=2, training=False), "arrêts générés")]
    if args.entrepot:
        arrets = arrets_from_warehouse(args.entrepot, args.as_of)
        batches.append(
            (
                arrets.filter(eligible(arrets, params.duree_min)),
                f"arrêts en cours au {args.as_of} de {args.entrepot} ({arrets.height:,} arrêts "
                "dans la table)".replace(",", " "),
            )
        )
    for arrets, source in batches:
        score_batch(result, meta, arrets, source)
    if args.entrepot and args.photographie:
        snapshot_time(args.entrepot, args.as_of - dt.timedelta(days=159))
    print("Mesures prises sur une machine partagée (2 cœurs, d'autres tâches en parallèle).")


if __name__ == "__main__":
    main()

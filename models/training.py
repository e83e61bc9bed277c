"""Training set, time split, fit and evaluation of the chronicity model (spec §4).

Pure functions: frames and typed parameters in, a fitted pipeline and its metrics out. The
snapshots themselves (``arrets`` at past dates S, same code path as ``ru build``) are built
by ``flows/train.py`` with :func:`transforms.snapshots.arrets_en_cours_snapshots`.

Label: ``chronique`` = the arrêt reaches ``seuil_chronique_jours`` (180) days. For a row of the
snapshot S with duration d, it is settled on S + (180 − d); a row is used only when that date
is ≤ the training as-of date D, and the label is read from the arrêts at D (nothing later).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from models.evaluation import Metrics, baseline_metrics, beats, metrics
from models.features import (
    CATEGORICAL,
    ENCODED_ORDER,
    FEATURE_NAMES,
    NUMERIC,
    eligible,
    feature_types,
    to_model_input,
)

_HYPER_KEYS = {
    "learning_rate",
    "max_iter",
    "max_leaf_nodes",
    "min_samples_leaf",
    "l2_regularization",
}


class TrainingError(ValueError):
    """Training cannot proceed (parameters, not enough data); the message says why."""


@dataclass(frozen=True)
class TrainParams:
    """Parameters of ``config/modele_chronicite.yml``."""

    pas_snapshots_jours: int = 14
    # Past this many visible payment lines, the step grows by pas_snapshots_jours per started
    # slice (see snapshot_step): the training rows grow with the volume, the snapshots cost.
    lignes_par_pas_snapshots: int = 5_000_000
    historique_min_jours: int = 365
    part_validation: float = 0.25
    duree_min: int = 21
    duree_max: int = 90
    seuil_chronique_jours: int = 180
    marge_auc: float = 0.01
    marge_ap: float = 0.01
    plis_calibration: int = 3
    methode_calibration: str = "sigmoid"
    seuil_raison: float = 0.01
    graine: int = 0
    # OpenMP threads for fitting and scoring: the boosting's threads spin badly on a machine
    # shared with other jobs (≈ 20× slower measured), one thread per process is the safe default.
    fils: int = 1
    # Read the snapshots already stored by `ru build` (table arrets) instead of recomputing.
    reutiliser_arrets: bool = True
    hyperparametres: dict[str, Any] = field(
        default_factory=lambda: {
            "learning_rate": 0.15,
            "max_iter": 50,
            "max_leaf_nodes": 12,
            "min_samples_leaf": 40,
            "l2_regularization": 1.0,
        }
    )


def parse_train_params(raw: dict, name: str) -> TrainParams:
    """Validate the YAML content of the model's parameter file."""
    if not isinstance(raw, dict):
        raise TrainingError(f"{name} : table de paramètres attendue")
    defaults = TrainParams()
    known = set(TrainParams.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise TrainingError(f"{name} : paramètre(s) inconnu(s) : {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key in known:
        if key not in raw:
            continue
        value = raw[key]
        default = getattr(defaults, key)
        if key == "hyperparametres":
            if not isinstance(value, dict) or set(value) - _HYPER_KEYS:
                raise TrainingError(
                    f"{name} : hyperparametres : clés permises {', '.join(sorted(_HYPER_KEYS))}"
                )
            value = {**default, **value}
        elif key == "reutiliser_arrets":
            if not isinstance(value, bool):
                raise TrainingError(f"{name} : reutiliser_arrets doit valoir true ou false")
        elif key == "methode_calibration":
            if value not in ("isotonic", "sigmoid"):
                raise TrainingError(f"{name} : methode_calibration : isotonic ou sigmoid")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise TrainingError(f"{name} : {key} doit être un nombre positif ({value!r})")
        elif isinstance(default, int) and not isinstance(value, int):
            raise TrainingError(f"{name} : {key} doit être un entier ({value!r})")
        values[key] = value
    params = TrainParams(**values)
    if not 0 < params.part_validation < 1:
        raise TrainingError(f"{name} : part_validation doit être entre 0 et 1")
    if not params.duree_min <= params.duree_max < params.seuil_chronique_jours:
        raise TrainingError(f"{name} : il faut duree_min ≤ duree_max < seuil_chronique_jours")
    if params.fils < 1:
        raise TrainingError(f"{name} : fils doit valoir au moins 1")
    if params.plis_calibration < 2:
        raise TrainingError(f"{name} : plis_calibration doit valoir au moins 2")
    return params


def snapshot_step(params: TrainParams, lines: int) -> int:
    """Days between snapshot dates for ``lines`` visible payment lines: ``pas_snapshots_jours``
    times the number of started slices of ``lignes_par_pas_snapshots`` lines (at least one).

    Each snapshot date costs a pass of the build models, while the rows it brings grow with
    the volume: on a large history, spacing the dates keeps the training set about as large
    as a 14-day step gives on 5 M lines (≈ 300,000 rows at 10 M lines with 28 days) and the
    training time bounded. Every date is still a full point-in-time snapshot.
    """
    slices = max(1, -(-lines // max(1, params.lignes_par_pas_snapshots)))
    return params.pas_snapshots_jours * slices


def snapshot_dates(first_day: dt.date, as_of: dt.date, params: TrainParams) -> list[dt.date]:
    """Snapshot dates S, every ``pas_snapshots_jours`` back from the latest S whose every
    row has a known label (S = D − (180 − duree_min)), down to ``first_day`` +
    ``historique_min_jours`` (enough history for the per-assuré features). Ascending."""
    latest = as_of - dt.timedelta(days=params.seuil_chronique_jours - params.duree_min)
    earliest = first_day + dt.timedelta(days=params.historique_min_jours)
    dates = []
    day = latest
    while day >= earliest:
        dates.append(day)
        day -= dt.timedelta(days=params.pas_snapshots_jours)
    return sorted(dates)


def labels(arrets_at_d: pl.DataFrame, seuil: int) -> pl.DataFrame:
    """One row per ``arret_id`` of the arrêts at D: ``chronique`` = its span (first day to
    the later of prescribed end and last paid day) reaches ``seuil`` days."""
    span = (
        pl.max_horizontal("fin_prescrite", "dernier_jour_paye") - pl.col("debut_arret")
    ).dt.total_days() + 1
    return arrets_at_d.select(
        "arret_id", (span >= seuil).fill_null(False).alias("chronique")
    ).unique("arret_id", keep="first")


def training_rows(
    snapshots: pl.DataFrame, arrets_at_d: pl.DataFrame, as_of: dt.date, params: TrainParams
) -> pl.DataFrame:
    """One row per (snapshot ``as_of`` S, arrêt): ``MAL`` arrêts en cours at S with
    ``duree_min ≤ duree_jours ≤ duree_max`` whose label is settled by D, with the features
    as computed at S and ``chronique`` read from the arrêts at D. Column ``snapshot`` = S.
    Rows whose arrêt is not found at D are dropped."""
    rows = snapshots.filter(eligible(snapshots, params.duree_min, params.duree_max))
    settled = pl.col("as_of") + pl.duration(
        days=params.seuil_chronique_jours - pl.col("duree_jours")
    )
    rows = rows.filter(settled <= pl.lit(as_of))
    lab = labels(arrets_at_d, params.seuil_chronique_jours)
    return (
        rows.join(lab, on="arret_id", how="inner")
        .select(pl.col("as_of").alias("snapshot"), "arret_id", *FEATURE_NAMES, "chronique")
        .sort("snapshot", "arret_id")
    )


@dataclass(frozen=True)
class Split:
    """A time split: training rows (label settled before validation starts) and the rows of
    the latest snapshots."""

    train: pl.DataFrame
    valid: pl.DataFrame
    dates_train: list[dt.date]
    dates_valid: list[dt.date]


def time_split(rows: pl.DataFrame, params: TrainParams) -> Split:
    """Validation = the latest ``part_validation`` of the snapshot dates (at least one);
    training = earlier snapshots, keeping only rows whose label was settled on or before the
    first validation date (no outcome from the validation period leaks into training)."""
    dates = sorted(rows["snapshot"].unique().to_list())
    if len(dates) < 2:
        raise TrainingError(
            f"il faut au moins 2 dates d'observation pour séparer entraînement et validation "
            f"({len(dates)} disponible(s)) : l'historique est trop court."
        )
    n_valid = min(len(dates) - 1, max(1, round(params.part_validation * len(dates))))
    dates_valid = dates[-n_valid:]
    first_valid = dates_valid[0]
    settled = pl.col("snapshot") + pl.duration(
        days=params.seuil_chronique_jours - pl.col("duree_jours")
    )
    train = rows.filter((pl.col("snapshot") < first_valid) & (settled <= pl.lit(first_valid)))
    valid = rows.filter(pl.col("snapshot") >= first_valid)
    return Split(
        train=train,
        valid=valid,
        dates_train=sorted(train["snapshot"].unique().to_list()),
        dates_valid=dates_valid,
    )


def build_pipeline(params: TrainParams, cv) -> Any:
    """Encoding (categories → ordinal codes, numbers as they are) + gradient boosting,
    calibrated (sigmoid by default) on grouped folds."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encodage = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    dtype=np.float64,
                ),
                list(CATEGORICAL),
            ),
            ("nombres", "passthrough", list(NUMERIC)),
        ],
        verbose_feature_names_out=False,
    )
    boosting = HistGradientBoostingClassifier(
        categorical_features=list(range(len(CATEGORICAL))),
        early_stopping=False,
        random_state=params.graine,
        **params.hyperparametres,
    )
    calibre = CalibratedClassifierCV(
        boosting, method=params.methode_calibration, cv=cv, ensemble=False
    )
    return Pipeline([("encodage", encodage), ("modele", calibre)])


def fit(train: pl.DataFrame, params: TrainParams):
    """Fit the calibrated pipeline on the training rows (folds grouped by arrêt, so one arrêt
    seen at several snapshots never sits on both sides of a calibration fold)."""
    from sklearn.model_selection import GroupKFold

    X = to_model_input(train)
    y = train["chronique"].cast(pl.Int8).to_numpy()
    groups = train["arret_id"].to_numpy()
    n_groups = len(np.unique(groups))
    if (
        n_groups < params.plis_calibration
        or y.sum() < params.plis_calibration
        or (len(y) - y.sum()) < params.plis_calibration
    ):
        raise TrainingError(
            f"données d'entraînement insuffisantes : {len(y)} ligne(s), {int(y.sum())} arrêt(s) "
            "chronique(s) ; il en faut au moins quelques-uns de chaque sorte par pli."
        )
    from threadpoolctl import threadpool_limits

    folds = list(GroupKFold(n_splits=params.plis_calibration).split(X, y, groups))
    pipeline = build_pipeline(params, folds)
    with threadpool_limits(limits=max(1, params.fils)):
        pipeline.fit(X, y)
    # The folds were only needed to fit; keep the artifact small and free of row indices.
    pipeline.named_steps["modele"].cv = params.plis_calibration
    return pipeline


def predict(pipeline, frame: pl.DataFrame, threads: int = 1) -> np.ndarray:
    """Calibrated probability of ``chronique`` for each row of ``frame`` (features only)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, threads)):
        return pipeline.predict_proba(to_model_input(frame))[:, 1]


def references(pipeline, train: pl.DataFrame) -> list[float]:
    """The reference value of each encoded column (training median for numbers, most
    frequent code for categories): the "ordinary arrêt" a row is compared with for reasons."""
    encoded = pipeline.named_steps["encodage"].transform(to_model_input(train))
    refs = []
    for j, name in enumerate(ENCODED_ORDER):
        col = encoded[:, j]
        col = col[~np.isnan(col)]
        if col.size == 0:
            refs.append(float("nan"))
        elif name in CATEGORICAL:
            values, counts = np.unique(col, return_counts=True)
            refs.append(float(values[np.argmax(counts)]))
        else:
            refs.append(float(np.median(col)))
    return refs


def fingerprint(rows: pl.DataFrame) -> str:
    """sha256 of the training rows (sorted, as CSV): the same data gives the same print."""
    data = rows.sort("snapshot", "arret_id").write_csv().encode("utf-8")
    return hashlib.sha256(data).hexdigest()


@dataclass
class TrainResult:
    """A fitted model, its validation metrics against the baseline and the verdict."""

    pipeline: Any
    modele: Metrics
    reference: Metrics
    promouvable: bool
    motif: str
    split: Split
    references: list[float]
    types: dict[str, str]
    empreinte: str
    lignes: int


def train(rows: pl.DataFrame, params: TrainParams) -> TrainResult:
    """Split in time, fit on the training rows, evaluate model and baseline on validation."""
    split = time_split(rows, params)
    if split.train.is_empty() or split.valid.is_empty():
        raise TrainingError("entraînement ou validation vide après la séparation dans le temps")
    pipeline = fit(split.train, params)
    y_valid = split.valid["chronique"].cast(pl.Int8).to_numpy()
    modele = metrics(y_valid, predict(pipeline, split.valid, params.fils))
    reference = baseline_metrics(
        split.train["duree_jours"].to_numpy(),
        split.train["chronique"].cast(pl.Int8).to_numpy(),
        split.valid["duree_jours"].to_numpy(),
        y_valid,
    )
    ok, motif = beats(modele, reference, params.marge_auc, params.marge_ap)
    return TrainResult(
        pipeline=pipeline,
        modele=modele,
        reference=reference,
        promouvable=ok,
        motif=motif,
        split=split,
        references=references(pipeline, split.train),
        types=feature_types(rows),
        empreinte=fingerprint(rows),
        lignes=rows.height,
    )


def library_versions() -> dict[str, str]:
    """Versions of the libraries the artifact depends on (kept in its metadata)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("scikit-learn", "skops", "numpy", "pandas", "polars", "duckdb", "ru-ij"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "inconnue"
    return out


def metadata_of(
    result: TrainResult,
    params: TrainParams,
    as_of: dt.date,
    version: str,
    created: str,
    promu: bool,
    motif: str,
    previous: str | None,
) -> dict:
    """The ``metadata.json`` of a trained version: everything needed to score with it and to
    tell what it is (features and types, window, dates, metrics, versions, fingerprint)."""
    from dataclasses import asdict

    from models.features import FEATURES

    train, valid = result.split.train, result.split.valid
    dates = sorted(result.split.dates_train + result.split.dates_valid)
    return {
        "modele": "chronicite",
        "version": version,
        "cree_le": created,
        "as_of": as_of.isoformat(),
        "cible": f"chronique : l'arrêt atteint {params.seuil_chronique_jours} jours",
        "features": result.types,
        "features_detail": [asdict(f) for f in FEATURES],
        "encodage": list(ENCODED_ORDER),
        "references": result.references,
        "parametres": asdict(params),
        "fenetre": {
            "premiere_observation": dates[0].isoformat() if dates else None,
            "derniere_observation": dates[-1].isoformat() if dates else None,
        },
        "dates_entrainement": [d.isoformat() for d in result.split.dates_train],
        "dates_validation": [d.isoformat() for d in result.split.dates_valid],
        "lignes": {
            "total": result.lignes,
            "entrainement": train.height,
            "validation": valid.height,
            "taux_chronique_entrainement": float(train["chronique"].mean() or 0.0),
            "taux_chronique_validation": float(valid["chronique"].mean() or 0.0),
        },
        "metriques": {
            "modele": result.modele.as_dict(),
            "reference_duree": result.reference.as_dict(),
        },
        "promotion": {
            "promu": promu,
            "motif": motif,
            "regle": (
                f"AUC ≥ référence + {params.marge_auc} et précision moyenne ≥ référence + "
                f"{params.marge_ap}, sur la validation"
            ),
            "modele_promu_conserve": None if promu else previous,
        },
        "versions": library_versions(),
        "empreinte_donnees": result.empreinte,
    }

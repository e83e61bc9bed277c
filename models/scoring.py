"""Scoring with the promoted model: probability of chronicity and reasons in plain French.

Never refits: the pipeline comes from the artifact as it was saved. The features of the
``arrets`` frame must match the model's metadata exactly (same names, same types); a
missing or differently typed feature is an error, never a silent zero.

Reasons: for each feature, the row's score minus its score with that feature set to the
reference value (the "ordinary arrêt" of training); the features that raise the score most
(by at least ``seuil_raison``) become up to three reasons, ordered by contribution. Reasons
drawn from medical features (medical category, ALD, TPT) go to ``raisons_medicales`` so that
the files of the technicien and CSAM queues never show them.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from models.features import (
    CATEGORICAL,
    ENCODED_ORDER,
    FEATURE_NAMES,
    MEDICAL,
    eligible,
    phrase,
    to_model_input,
)
from models.registry import ModelError

if TYPE_CHECKING:
    from models.registry import LoadedModel

MAX_RAISONS = 3
BATCH_ROWS = 250_000
SCORES_SCHEMA = {
    "arret_id": pl.String,
    "score": pl.Float64,
    "raisons": pl.List(pl.String),
    "raisons_medicales": pl.List(pl.String),
}


class FeatureMismatch(ModelError):
    """The arrêts do not carry the model's features as it was trained on them."""


def check_features(metadata: dict, frame: pl.DataFrame, version: str) -> None:
    """Raise :class:`FeatureMismatch` unless ``frame`` has every model feature, same type."""
    expected: dict[str, str] = metadata["features"]
    if tuple(expected) != FEATURE_NAMES:
        raise FeatureMismatch(
            f"modèle {version} : ses caractéristiques ({', '.join(expected)}) ne sont pas "
            f"celles de ce code ({', '.join(FEATURE_NAMES)}) : réentraînez-le (`ru train`)."
        )
    for name, dtype in expected.items():
        if name not in frame.columns:
            raise FeatureMismatch(
                f"modèle {version} : caractéristique « {name} » absente de la table arrets"
            )
        actual = str(frame.schema[name])
        if actual != dtype:
            raise FeatureMismatch(
                f"modèle {version} : caractéristique « {name} » de type {actual} dans la "
                f"table arrets, {dtype} à l'entraînement"
            )


def _proba(model, encoded: np.ndarray) -> np.ndarray:
    return model.predict_proba(encoded)[:, 1]


@lru_cache(maxsize=65_536)
def _phrase(name: str, value) -> str:
    return phrase(name, value)


def contributions(
    pipeline, refs: list[float], frame: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """The score of each row and, per encoded column, how much the row's own value raises it
    above the score with that column at its reference value (n × k, same column order as
    :data:`ENCODED_ORDER`)."""
    encoded = pipeline.named_steps["encodage"].transform(to_model_input(frame))
    model = pipeline.named_steps["modele"]
    score = _proba(model, encoded)
    contrib = np.empty((encoded.shape[0], encoded.shape[1]), dtype=np.float64)
    work = encoded.copy()
    for j, ref in enumerate(refs):
        original = work[:, j].copy()
        work[:, j] = ref
        contrib[:, j] = score - _proba(model, work)
        work[:, j] = original
    return score, contrib


def _reasons(frame: pl.DataFrame, contrib: np.ndarray, seuil: float) -> pl.DataFrame:
    """``raisons`` and ``raisons_medicales`` of each row of ``frame`` (same order): the
    features of the top contributions ≥ ``seuil``, most contributing first, in words."""
    n = contrib.shape[0]
    k = min(MAX_RAISONS, contrib.shape[1])
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(contrib, order, axis=1)
    keep = (top >= seuil).ravel()
    rows = np.repeat(np.arange(n), k)[keep]
    rank = np.tile(np.arange(k), n)[keep]
    feature = order.ravel()[keep]
    texts = np.empty(len(feature), dtype=object)
    for j in np.unique(feature):
        name = ENCODED_ORDER[j]
        mask = feature == j
        values = frame[name].gather(rows[mask]).to_list()
        if name in CATEGORICAL:
            values = [None if v is None else str(v) for v in values]
        texts[mask] = [_phrase(name, v) for v in values]
    medical = np.isin(feature, [ENCODED_ORDER.index(m) for m in MEDICAL])
    long = pl.DataFrame(
        {"row": rows, "rank": rank, "texte": texts.tolist(), "medical": medical},
        schema={"row": pl.Int64, "rank": pl.Int64, "texte": pl.String, "medical": pl.Boolean},
    ).sort("row", "rank")
    lists = long.group_by("row", maintain_order=True).agg(
        pl.col("texte").filter(~pl.col("medical")).alias("raisons"),
        pl.col("texte").filter(pl.col("medical")).alias("raisons_medicales"),
    )
    empty = pl.lit([], pl.List(pl.String))
    return (
        pl.DataFrame({"row": np.arange(n)}, schema={"row": pl.Int64})
        .join(lists, on="row", how="left", maintain_order="left")
        .select(
            pl.col("raisons").fill_null(empty),
            pl.col("raisons_medicales").fill_null(empty),
        )
    )


def score_frame(
    pipeline, metadata: dict, frame: pl.DataFrame, with_reasons: bool = True
) -> pl.DataFrame:
    """``arret_id, score, raisons, raisons_medicales`` for every row of ``frame``."""
    from threadpoolctl import threadpool_limits

    refs = metadata["references"]
    seuil = float(metadata["parametres"]["seuil_raison"])
    with threadpool_limits(limits=max(1, int(metadata["parametres"].get("fils", 1)))):
        parts = _score_batches(pipeline, refs, seuil, frame, with_reasons)
    if not parts:
        return pl.DataFrame(schema=SCORES_SCHEMA)
    return pl.concat(parts)


def _score_batches(pipeline, refs, seuil, frame, with_reasons) -> list[pl.DataFrame]:
    parts = []
    for start in range(0, frame.height, BATCH_ROWS):
        batch = frame.slice(start, BATCH_ROWS)
        if with_reasons:
            score, contrib = contributions(pipeline, refs, batch)
            reasons = _reasons(batch, contrib, seuil)
        else:
            encoded = pipeline.named_steps["encodage"].transform(to_model_input(batch))
            score = _proba(pipeline.named_steps["modele"], encoded)
            empty = pl.lit([], pl.List(pl.String))
            reasons = (
                pl.DataFrame({"row": np.arange(batch.height)})
                .with_columns(empty.alias("raisons"), empty.alias("raisons_medicales"))
                .drop("row")
            )
        scores = pl.DataFrame(
            {"arret_id": batch["arret_id"], "score": np.clip(score, 0.0, 1.0)},
            schema={"arret_id": pl.String, "score": pl.Float64},
        )
        parts.append(pl.concat([scores, reasons], how="horizontal").select(SCORES_SCHEMA.keys()))
    return parts


def _eligible_rows(model: LoadedModel, arrets: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    check_features(model.metadata, arrets, model.version)
    duree_min = int(model.metadata["parametres"]["duree_min"])
    return arrets.filter((pl.col("as_of") == as_of) & eligible(arrets, duree_min))


def score_arrets(model: LoadedModel, arrets: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Scores of the arrêts at ``as_of`` the model applies to: ``MAL`` arrêts en cours with
    ``duree_jours ≥ duree_min`` (21). One row per scored ``arret_id``; the reasons are left
    empty here (see :func:`reasons_for`: they cost one prediction per feature)."""
    return score_frame(model.pipeline, model.metadata, _eligible_rows(model, arrets, as_of), False)


def reasons_for(
    model: LoadedModel, arrets: pl.DataFrame, as_of: dt.date, arret_ids: pl.Series
) -> pl.DataFrame:
    """Scores and reasons of the scored arrêts among ``arret_ids`` (the targeted ones):
    ``arret_id, score, raisons, raisons_medicales``."""
    rows = _eligible_rows(model, arrets, as_of).filter(pl.col("arret_id").is_in(arret_ids))
    return score_frame(model.pipeline, model.metadata, rows, True)

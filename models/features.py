"""The chronicity model's features: which ``arrets`` columns, their kind, their words.

Features are read from the ``arrets`` rows of one date, exactly as ``ru build`` computes them
(same code path for training snapshots and for scoring). Actions are left out on purpose:
they are the service médical's own response to targeting (a feedback loop), not a property
of the arrêt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Feature:
    """One model input: an ``arrets`` column, numeric or categorical, medical or not."""

    name: str
    kind: str  # "num" (numbers and booleans, as floats) or "cat" (codes, as strings)
    medical: bool = False


FEATURES: tuple[Feature, ...] = (
    Feature("mtf_cat", "cat", medical=True),
    Feature("PSP_SPE_COD", "cat"),
    Feature("sexe", "cat"),
    Feature("duree_jours", "num"),
    Feature("nb_prolongations", "num"),
    Feature("age", "num"),
    Feature("jours_ij", "num"),
    Feature("BSE_REM_PRU", "num"),
    Feature("ij_3ans", "num"),
    Feature("nb_arrets_12m", "num"),
    Feature("nb_arrets_courts_6m", "num"),
    Feature("ratio_pairs_prescripteur", "num"),
    Feature("prescripteur_atypique", "num"),
    Feature("prolongation_autre_prescripteur", "num"),
    Feature("ald", "num", medical=True),
    Feature("tpt_en_cours", "num", medical=True),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
CATEGORICAL = tuple(f.name for f in FEATURES if f.kind == "cat")
NUMERIC = tuple(f.name for f in FEATURES if f.kind == "num")
MEDICAL = frozenset(f.name for f in FEATURES if f.medical)
# The model's column order after encoding: categorical columns first, then numeric ones.
ENCODED_ORDER = CATEGORICAL + NUMERIC


def eligible_condition(duree_min: int, duree_max: int | None = None) -> pl.Expr:
    """The condition of :func:`eligible` as an expression (nulls count as false)."""
    cond = (
        (pl.col("risque") == "MAL")
        & pl.col("en_cours").fill_null(False)
        & (pl.col("duree_jours") >= duree_min)
    )
    if duree_max is not None:
        cond = cond & (pl.col("duree_jours") <= duree_max)
    return cond.fill_null(False)


def eligible(arrets: pl.DataFrame, duree_min: int, duree_max: int | None = None) -> pl.Series:
    """Rows the model scores: ``MAL`` arrêts en cours with ``duree_min ≤ duree_jours (≤ max)``."""
    return arrets.select(eligible_condition(duree_min, duree_max).alias("eligible")).to_series()


def feature_types(frame: pl.DataFrame) -> dict[str, str]:
    """The Polars dtype of each feature column, as text (kept in the model's metadata)."""
    return {name: str(frame.schema[name]) for name in FEATURE_NAMES}


def to_model_input(frame: pl.DataFrame):
    """The features as the pandas frame the scikit-learn pipeline reads.

    Numeric and boolean columns become float64 (null → NaN); categorical ones become text
    (``object``; null → NaN, the encoder's missing value).
    """
    import pandas as pd

    data = {}
    for f in FEATURES:
        col = frame[f.name]
        if f.kind == "num":
            data[f.name] = col.cast(pl.Float64).to_numpy(allow_copy=True).astype(np.float64)
        else:
            text = col.cast(pl.String)
            values = text.to_numpy().astype(object, copy=True)
            values[text.is_null().to_numpy()] = np.nan
            data[f.name] = values
    return pd.DataFrame(data, columns=list(FEATURE_NAMES))


_MTF_WORDS = {
    "PSY": "arrêt psy",
    "RHU": "troubles musculo-squelettiques",
    "TRA": "traumatologie",
    "ONC": "cancérologie",
    "CAR": "cardiologie",
    "INF": "infection",
    "GRO": "grossesse pathologique",
    "AUT": "autre motif médical",
}
_SPE_WORDS = {"1": "prescripteur généraliste", "33": "prescripteur psychiatre"}


def _plural(n: float, one: str, many: str) -> str:
    n = round(n)
    return f"{n} {one if n <= 1 else many}"


def phrase(name: str, value) -> str:
    """The feature and its value in words a technicien understands (« 3 prolongations »)."""
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    if name == "mtf_cat":
        return "motif médical non renseigné" if missing else _MTF_WORDS.get(value, f"motif {value}")
    if name == "PSP_SPE_COD":
        if missing:
            return "spécialité du prescripteur inconnue"
        return _SPE_WORDS.get(str(value), f"prescripteur de spécialité {value}")
    if name == "sexe":
        return {"1": "homme", "2": "femme"}.get(str(value), "sexe inconnu")
    if missing:
        return {
            "ratio_pairs_prescripteur": "prescripteur sans pairs comparables",
            "BSE_REM_PRU": "montant journalier inconnu",
        }.get(name, f"{name} non renseigné")
    if name == "duree_jours":
        return f"arrêt de {int(value)} jours"
    if name == "nb_prolongations":
        return _plural(value, "prolongation", "prolongations") if value else "aucune prolongation"
    if name == "age":
        return f"{int(value)} ans"
    if name == "jours_ij":
        return f"{int(value)} jours d'IJ payés"
    if name == "BSE_REM_PRU":
        return f"IJ de {value:.2f} € par jour".replace(".", ",")
    if name == "ij_3ans":
        return f"{int(value)} jours d'IJ sur 3 ans"
    if name == "nb_arrets_12m":
        return _plural(value, "arrêt", "arrêts") + " en 12 mois"
    if name == "nb_arrets_courts_6m":
        return _plural(value, "arrêt court", "arrêts courts") + " en 6 mois"
    if name == "ratio_pairs_prescripteur":
        return f"prescripteur à {value:.1f} fois ses pairs".replace(".", ",")
    if name == "prescripteur_atypique":
        return "prescripteur atypique" if value else "prescripteur habituel"
    if name == "prolongation_autre_prescripteur":
        return (
            "prolongé par un autre prescripteur" if value else "prolongé par le même prescripteur"
        )
    if name == "ald":
        return "ALD" if value else "hors ALD"
    if name == "tpt_en_cours":
        return "temps partiel thérapeutique" if value else "sans temps partiel thérapeutique"
    return f"{name} = {value}"

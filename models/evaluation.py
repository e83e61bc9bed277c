"""Metrics of a ranking of arrêts by chronicity, and the rule that decides promotion."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Validation metrics of one scorer: ranking (AUC, AP, lift) and probabilities (Brier)."""

    roc_auc: float
    average_precision: float
    brier: float
    lift_top10: float
    n: int
    positifs: int

    def as_dict(self) -> dict:
        return asdict(self)


def lift_top(y: np.ndarray, score: np.ndarray, share: float = 0.10) -> float:
    """Positive rate in the top ``share`` by score over the overall positive rate.

    Ties at the cut are shared pro rata (the expected value under a random order of the tied
    rows), so a coarse score such as ``duree_jours`` is neither favoured nor penalised.
    """
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    n = len(y)
    base = y.mean() if n else 0.0
    if n == 0 or base == 0:
        return float("nan")
    k = max(1, int(np.ceil(share * n)))
    order = np.argsort(-score, kind="stable")
    cut = score[order[k - 1]]
    above = score > cut
    tied = score == cut
    n_above = int(above.sum())
    positives = y[above].sum() + (k - n_above) * y[tied].mean()
    return float(positives / k / base)


def metrics(y: np.ndarray, proba: np.ndarray, ranking: np.ndarray | None = None) -> Metrics:
    """Metrics of probabilities ``proba`` (and of ``ranking`` for AUC/AP/lift if given)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    rank = proba if ranking is None else ranking
    two_classes = 0 < y.sum() < len(y)
    return Metrics(
        roc_auc=float(roc_auc_score(y, rank)) if two_classes else float("nan"),
        average_precision=float(average_precision_score(y, rank)) if two_classes else float("nan"),
        brier=float(brier_score_loss(y, proba)),
        lift_top10=lift_top(y, rank, 0.10),
        n=len(y),
        positifs=int(y.sum()),
    )


def baseline_metrics(
    duree_train: np.ndarray, y_train: np.ndarray, duree_valid: np.ndarray, y_valid: np.ndarray
) -> Metrics:
    """The baseline: rank by ``duree_jours`` alone; its probabilities (for the Brier score)
    are the chronic rate per duration learnt on the training rows (isotonic, increasing)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(np.asarray(duree_train, float), np.asarray(y_train, float))
    proba = iso.predict(np.asarray(duree_valid, float))
    return metrics(y_valid, proba, ranking=np.asarray(duree_valid, float))


def beats(model: Metrics, baseline: Metrics, marge_auc: float, marge_ap: float) -> tuple[bool, str]:
    """Promotion rule: the model beats the baseline when, on validation, its ROC AUC exceeds
    the baseline's by at least ``marge_auc`` **and** its average precision by at least
    ``marge_ap``. Returns the verdict and its reason in French."""
    d_auc = model.roc_auc - baseline.roc_auc
    d_ap = model.average_precision - baseline.average_precision
    detail = (
        f"AUC {model.roc_auc:.3f} contre {baseline.roc_auc:.3f} (écart {d_auc:+.3f}, "
        f"minimum {marge_auc:+.3f}) ; précision moyenne {model.average_precision:.3f} contre "
        f"{baseline.average_precision:.3f} (écart {d_ap:+.3f}, minimum {marge_ap:+.3f})"
    ).replace(".", ",")
    if np.isnan(d_auc) or np.isnan(d_ap):
        return False, "validation sans cas chronique ou sans cas non chronique : " + detail
    ok = d_auc >= marge_auc and d_ap >= marge_ap
    return ok, (
        "bat la référence durée seule : " if ok else "ne bat pas la référence durée seule : "
    ) + detail

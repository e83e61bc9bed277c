"""prescripteurs: the initial prescribers of recent arrêts maladie and their peer ratio.

Polars, not SQL: the peer median is a group median joined back to its members, which reads
as two plain expressions here (see README, « Arrêts et indicateurs par assuré », for the
measurements).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

DEPENDS_ON = ("int_arrets",)


def _most_frequent(frame: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """Per prescriber, the most frequent non-null value of ``column`` (tie: smallest)."""
    return (
        frame.filter(pl.col(column).is_not_null())
        .group_by("PFS_PRE_NUM", column)
        .agg(pl.len().alias("_n"))
        .sort(["PFS_PRE_NUM", "_n", column], descending=[False, True, False])
        .group_by("PFS_PRE_NUM", maintain_order=True)
        .agg(pl.col(column).first())
    )


def prescripteurs(
    int_arrets: pl.LazyFrame,
    *,
    as_of: date,
    fenetre_prescripteurs_jours: int,
    patients_min: int,
    ratio_atypique: float,
    **_: object,
) -> pl.LazyFrame:
    """One row per prescriber (``PFS_PRE_NUM``) who initially prescribed a ``MAL`` arrêt
    starting in ``[as_of - fenetre_prescripteurs_jours, as_of]`` (spec §2, last paragraph).

    Columns: ``as_of``; ``PFS_PRE_NUM``; ``PSP_SPE_COD`` and ``drsm`` (the most frequent over
    those arrêts, ties to the smallest); ``patients`` (distinct assurés); ``jours_ij`` (Σ
    ``jours_ij`` of those arrêts, days); ``jours_par_patient`` (days per patient);
    ``mediane_pairs`` (median ``jours_par_patient`` of the prescribers with the same
    specialty and DRSM and at least ``patients_min`` patients, itself included; null without
    specialty, DRSM or peers); ``ratio_pairs`` (``jours_par_patient / mediane_pairs``);
    ``atypique`` (``patients >= patients_min`` and ``ratio_pairs >= ratio_atypique``).
    """
    debut = as_of - timedelta(days=fenetre_prescripteurs_jours)
    recents = int_arrets.filter(
        (pl.col("risque") == "MAL") & pl.col("debut_arret").is_between(debut, as_of)
    ).select(
        pl.col("prescripteur_initial").alias("PFS_PRE_NUM"),
        "assure_id",
        "jours_ij",
        "PSP_SPE_COD",
        "drsm",
    )
    volumes = recents.group_by("PFS_PRE_NUM").agg(
        pl.col("assure_id").n_unique().cast(pl.Int32).alias("patients"),
        pl.col("jours_ij").sum().cast(pl.Int64).alias("jours_ij"),
    )
    par_prescripteur = (
        volumes.join(_most_frequent(recents, "PSP_SPE_COD"), on="PFS_PRE_NUM", how="left")
        .join(_most_frequent(recents, "drsm"), on="PFS_PRE_NUM", how="left")
        .with_columns(
            (pl.col("jours_ij") / pl.col("patients")).alias("jours_par_patient"),
        )
    )
    medianes = (
        par_prescripteur.filter(
            (pl.col("patients") >= patients_min)
            & pl.col("PSP_SPE_COD").is_not_null()
            & pl.col("drsm").is_not_null()
        )
        .group_by("PSP_SPE_COD", "drsm")
        .agg(pl.col("jours_par_patient").median().alias("mediane_pairs"))
    )
    ratio = pl.when(pl.col("mediane_pairs") > 0).then(
        pl.col("jours_par_patient") / pl.col("mediane_pairs")
    )
    return (
        par_prescripteur.join(medianes, on=["PSP_SPE_COD", "drsm"], how="left")
        .with_columns(ratio.alias("ratio_pairs"))
        .with_columns(
            (
                (pl.col("patients") >= patients_min)
                & (pl.col("ratio_pairs") >= ratio_atypique).fill_null(False)
            ).alias("atypique"),
            pl.lit(as_of, dtype=pl.Date).alias("as_of"),
        )
        .select(
            "as_of",
            "PFS_PRE_NUM",
            "PSP_SPE_COD",
            "drsm",
            "patients",
            "jours_ij",
            "jours_par_patient",
            "mediane_pairs",
            "ratio_pairs",
            "atypique",
        )
        .sort("PFS_PRE_NUM")
    )

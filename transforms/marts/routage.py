"""Routing of targeted dossiers to the actors' queues within each ELSM's weekly capacity.

Spec §5. Pure: candidates (``ciblage`` rows at D), capacities and the ledger rows of the same
ISO week in, this night's ``routage`` rows out. The caller reads and writes the tables.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import NamedTuple

import polars as pl

AFFECTE = "affecte"
NON_AFFECTE = "non_affecte"
CAPACITE_ATTEINTE = "capacite_atteinte"
PAS_DE_CAPACITE = "pas_de_capacite"

ROUTAGE_SCHEMA = {
    "dossier_id": pl.String,
    "as_of": pl.Date,
    "semaine_iso": pl.String,
    "elsm": pl.String,
    "arret_id": pl.String,
    "assure_id": pl.String,
    "code_ru": pl.String,
    "autres_codes": pl.List(pl.String),
    "acteur": pl.String,
    "rang_file": pl.Int32,
    "score": pl.Float64,
    "raisons": pl.List(pl.String),
    "statut": pl.String,
    "motif": pl.String,
}

# Order of candidates within an ELSM (spec §5): primary rank, score desc, duree_jours desc,
# arret_id. Nulls (no model, no duration) come last.
_ORDER = ["rang", "score", "duree_jours", "arret_id"]
_DESCENDING = [False, True, True, False]


def semaine_iso(d: date) -> str:
    """The ISO week of ``d`` as ``AAAA-Www`` (ISO year: 2027-01-01 is ``2026-W53``)."""
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def dossier_id(arret_id: str, code_ru: str, semaine: str) -> str:
    """Stable id of a dossier: ``D`` + 16 upper-case hex of sha256(arret_id|code|week).

    The leading letter keeps spreadsheets from reading the id as a number.
    """
    digest = hashlib.sha256(f"{arret_id}|{code_ru}|{semaine}".encode()).hexdigest()
    return "D" + digest[:16].upper()


class Allocation(NamedTuple):
    """Result of :func:`route`.

    ``routage``: one row per candidate dossier of the night (schema ``ROUTAGE_SCHEMA``).
    ``deja_affectes``: candidates left out because their ``dossier_id`` is already
    ``affecte`` by another night of the same week (``dossier_id``, ``arret_id``, ``elsm``).
    ``sans_elsm``: candidates without an ELSM, which no queue can take (``arret_id``,
    ``code_ru``); the caller reports them.
    """

    routage: pl.DataFrame
    deja_affectes: pl.DataFrame
    sans_elsm: pl.DataFrame


def remaining_capacity(
    capacites: pl.DataFrame, ledger: pl.DataFrame, as_of: date
) -> dict[tuple[str, str], int]:
    """Capacity left per (elsm, acteur) for the night D.

    Weekly capacity minus the dossiers ``affecte`` to that ELSM and actor by the other nights
    of D's ISO week (never below zero, e.g. after a capacity cut mid-week).
    """
    week = semaine_iso(as_of)
    used = (
        ledger.filter(
            (pl.col("semaine_iso") == week)
            & (pl.col("as_of") != as_of)
            & (pl.col("statut") == AFFECTE)
        )
        .group_by("elsm", "acteur")
        .agg(pl.len().alias("utilise"))
    )
    left = (
        capacites.join(used, on=["elsm", "acteur"], how="left")
        .with_columns(
            (pl.col("dossiers_par_semaine") - pl.col("utilise").fill_null(0))
            .clip(lower_bound=0)
            .alias("reste")
        )
        .select("elsm", "acteur", "reste")
    )
    return {(r["elsm"], r["acteur"]): r["reste"] for r in left.iter_rows(named=True)}


def occupation(
    capacites: pl.DataFrame, ledger: pl.DataFrame, routage: pl.DataFrame, as_of: date
) -> pl.DataFrame:
    """Weekly load of each queue after the night D: one row per (elsm, acteur) with a
    capacity line.

    Columns: ``elsm``, ``acteur``, ``capacite`` (dossiers per week), ``affectes_nuit``
    (allocated by D), ``affectes_semaine`` (by every night of D's ISO week, D included),
    ``reste`` (capacity left for the week, never below zero). Sorted by ELSM then actor in
    the order TECH, CSAM, ISM, MC.
    """
    week = semaine_iso(as_of)
    autres = ledger.filter(
        (pl.col("semaine_iso") == week) & (pl.col("as_of") != as_of) & (pl.col("statut") == AFFECTE)
    ).select("elsm", "acteur", pl.lit(0).alias("nuit"))
    nuit = routage.filter(pl.col("statut") == AFFECTE).select(
        "elsm", "acteur", pl.lit(1).alias("nuit")
    )
    counts = (
        pl.concat([autres, nuit])
        .group_by("elsm", "acteur")
        .agg(pl.col("nuit").sum().alias("affectes_nuit"), pl.len().alias("affectes_semaine"))
    )
    order = {"TECH": 0, "CSAM": 1, "ISM": 2, "MC": 3}
    return (
        capacites.rename({"dossiers_par_semaine": "capacite"})
        .join(counts, on=["elsm", "acteur"], how="left")
        .with_columns(
            pl.col("affectes_nuit").fill_null(0).cast(pl.Int64),
            pl.col("affectes_semaine").fill_null(0).cast(pl.Int64),
        )
        .with_columns(
            (pl.col("capacite") - pl.col("affectes_semaine")).clip(lower_bound=0).alias("reste")
        )
        .sort("elsm", pl.col("acteur").replace_strict(order, default=9))
        .select("elsm", "acteur", "capacite", "affectes_nuit", "affectes_semaine", "reste")
    )


def route(
    ciblage: pl.DataFrame, capacites: pl.DataFrame, ledger: pl.DataFrame, as_of: date
) -> Allocation:
    """Allocate the night's candidates to queues within the week's remaining capacity.

    ``ciblage``: targeting rows at D (``arret_id, assure_id, elsm, code_ru, rang,
    autres_codes, acteur, acteur_repli, score, raisons, exclu, duree_jours``); excluded rows
    are not candidates. ``capacites``: ``elsm, acteur, dossiers_par_semaine``. ``ledger``:
    routage rows (at least ``dossier_id, as_of, semaine_iso, elsm, acteur, statut``); only the
    other nights of D's ISO week are used.

    Per ELSM, in order (rank, score desc, duree_jours desc, arret_id), each dossier goes to
    its code's actor if capacity remains, else to the fallback actor if capacity remains,
    else to the backlog (``non_affecte``, ``capacite_atteinte``). An ELSM without any
    capacity line sends every dossier to the backlog (``pas_de_capacite``). ``rang_file`` is
    the 1-based position in the (ELSM, actor) queue, or in the ELSM's backlog. Rows come
    by ELSM, then in that order.
    """
    week = semaine_iso(as_of)
    candidats = (
        ciblage.filter(~pl.col("exclu").fill_null(False) & pl.col("code_ru").is_not_null())
        .with_columns(
            pl.struct("arret_id", "code_ru")
            .map_elements(
                lambda r: dossier_id(r["arret_id"], r["code_ru"], week), return_dtype=pl.String
            )
            .alias("dossier_id")
        )
        .sort(["elsm", *_ORDER], descending=[False, *_DESCENDING], nulls_last=True)
    )
    deja_ids = (
        ledger.filter(
            (pl.col("semaine_iso") == week)
            & (pl.col("as_of") != as_of)
            & (pl.col("statut") == AFFECTE)
        )
        .get_column("dossier_id")
        .unique()
    )
    sans_elsm = candidats.filter(pl.col("elsm").is_null()).select("arret_id", "code_ru")
    candidats = candidats.filter(pl.col("elsm").is_not_null())
    is_deja = pl.col("dossier_id").is_in(deja_ids.implode())
    deja_affectes = candidats.filter(is_deja).select("dossier_id", "arret_id", "elsm")
    candidats = candidats.filter(~is_deja)

    reste = remaining_capacity(capacites, ledger, as_of)
    with_capacity = set(capacites.get_column("elsm").to_list())
    acteurs: list[str | None] = []
    motifs: list[str | None] = []
    for elsm, acteur, repli in candidats.select("elsm", "acteur", "acteur_repli").iter_rows():
        if elsm not in with_capacity:
            acteurs.append(None)
            motifs.append(PAS_DE_CAPACITE)
            continue
        chosen = None
        for candidate in (acteur, repli):
            if candidate is not None and reste.get((elsm, candidate), 0) > 0:
                chosen = candidate
                break
        if chosen is None:
            acteurs.append(None)
            motifs.append(CAPACITE_ATTEINTE)
        else:
            reste[(elsm, chosen)] -= 1
            acteurs.append(chosen)
            motifs.append(None)

    routage = (
        candidats.with_columns(
            pl.Series("acteur", acteurs, dtype=pl.String),
            pl.Series("motif", motifs, dtype=pl.String),
            pl.lit(as_of, dtype=pl.Date).alias("as_of"),
            pl.lit(week).alias("semaine_iso"),
        )
        .with_columns(
            pl.when(pl.col("acteur").is_null())
            .then(pl.lit(NON_AFFECTE))
            .otherwise(pl.lit(AFFECTE))
            .alias("statut"),
        )
        .with_columns(
            (pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("elsm", "statut", "acteur")).alias(
                "rang_file"
            )
        )
        .select([pl.col(c).cast(t) for c, t in ROUTAGE_SCHEMA.items()])
    )
    return Allocation(routage=routage, deja_affectes=deja_affectes, sans_elsm=sans_elsm)

"""Ciblage: the RU codes and exclusions met by each arrêt en cours at D.

Pure transform: the arrêts at D, the validated catalogue, the model scores and the routing
ledger in; the ``ciblage`` frame out (contract ``expectations/contracts/ciblage.yml``). The
conditions are evaluated by an in-memory DuckDB (no file) on the relation built by
``ciblage_entree.sql``; a condition on a missing value is not met.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from transforms.catalogue import Catalogue, CodeRU

SQL_DIR = Path(__file__).parent
CIBLAGE_COLUMNS = (
    "as_of",
    "arret_id",
    "assure_id",
    "elsm",
    "code_ru",
    "rang",
    "autres_codes",
    "acteur",
    "acteur_repli",
    "score",
    "raisons",
    "raisons_medicales",
    "exclu",
    "motif_exclusion",
    "duree_jours",
)
SCORES_SCHEMA = {
    "arret_id": pl.String,
    "score": pl.Float64,
    "raisons": pl.List(pl.String),
    "raisons_medicales": pl.List(pl.String),
}
ROUTAGE_SCHEMA = {"arret_id": pl.String, "as_of": pl.Date, "statut": pl.String}


def codes_evalues(
    catalogue: Catalogue, as_of: dt.date, modele_disponible: bool
) -> tuple[tuple[CodeRU, ...], tuple[CodeRU, ...]]:
    """The codes evaluated at ``as_of`` and those in force but skipped for want of a model.

    A code is evaluated when it is valid at ``as_of``; one whose condition reads ``score`` is
    skipped (not evaluated at all) when no promoted model exists.
    """
    valides = catalogue.codes_valides(as_of)
    if modele_disponible:
        return valides, ()
    return (
        tuple(c for c in valides if not c.utilise_score),
        tuple(c for c in valides if c.utilise_score),
    )


def ciblage(
    arrets: pl.DataFrame,
    catalogue: Catalogue,
    as_of: dt.date,
    parametres: dict[str, int],
    scores: pl.DataFrame | None = None,
    routage: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per arrêt en cours at ``as_of`` that meets ≥ 1 valid code or an exclusion.

    ``arrets``: the ``arrets`` rows (those with ``as_of`` = ``as_of`` and ``en_cours`` are used).
    ``parametres``: the exclusion thresholds (``action_recente_jours``, ``en_attente_jours``).
    ``scores``: ``arret_id, score, raisons, raisons_medicales`` of the scored arrêts, or None when no model is
    promoted (then the codes reading ``score`` are not evaluated and ``score`` is null).
    ``routage``: the routing ledger (``arret_id, as_of, statut``), or None.

    New columns: ``code_ru`` (met code of lowest rank; null when the row is only excluded),
    ``rang``, ``autres_codes`` (the other met codes, by rank), ``acteur``/``acteur_repli`` of
    the primary code, ``score``, ``raisons`` and ``raisons_medicales`` (the reasons drawn from medical
    features, for the ISM and MC queues only; empty lists when not scored), ``exclu`` and
    ``motif_exclusion`` (first exclusion met, in catalogue order). Sorted by ``arret_id``.
    """
    import duckdb

    codes, _ = codes_evalues(catalogue, as_of, scores is not None)
    if scores is None:
        scores = pl.DataFrame(schema=SCORES_SCHEMA)
    if routage is None:
        routage = pl.DataFrame(schema=ROUTAGE_SCHEMA)
    reperes = pl.DataFrame(
        {"mtf_cat": list(catalogue.reperes), "repere_jours": list(catalogue.reperes.values())},
        schema={"mtf_cat": pl.String, "repere_jours": pl.Int32},
    )

    con = duckdb.connect()
    try:
        con.register("arrets", arrets)
        con.register("scores", scores.select(list(SCORES_SCHEMA)))
        con.register("routage", routage.select(list(ROUTAGE_SCHEMA)))
        con.register("reperes", reperes)
        entree_sql = (SQL_DIR / "ciblage_entree.sql").read_text(encoding="utf-8")
        con.execute(f"create temp table entree as {entree_sql}", {"as_of": as_of})
        # The conditions are the re-generated SQL of whitelisted trees (transforms.catalogue);
        # the aliases come from a fixed pattern; thresholds are bound parameters.
        selects = ["arret_id"]
        used: set[str] = set()
        for i, code in enumerate(codes):
            selects.append(f"coalesce(({code.condition.sql}), false) as c_{i}")
        for j, exclusion in enumerate(catalogue.exclusions):
            selects.append(f"coalesce(({exclusion.condition.sql}), false) as x_{j}")
            used |= exclusion.condition.parametres
        missing = used - set(parametres)
        if missing:
            raise KeyError(f"paramètre(s) d'exclusion manquant(s) : {', '.join(sorted(missing))}")
        flags = con.sql(
            f"select {', '.join(selects)} from entree", params={p: parametres[p] for p in used}
        ).pl()
        base = con.sql(
            "select as_of, arret_id, assure_id, elsm, score, raisons, raisons_medicales, "
            "duree_jours from entree"
        ).pl()
    finally:
        con.close()

    met = [pl.when(pl.col(f"c_{i}")).then(pl.lit(c.code)) for i, c in enumerate(codes)]
    excl = [
        pl.when(pl.col(f"x_{j}")).then(pl.lit(e.motif)) for j, e in enumerate(catalogue.exclusions)
    ]
    flags = flags.select(
        "arret_id",
        (pl.concat_list(met).list.drop_nulls() if met else pl.lit([], pl.List(pl.String))).alias(
            "codes"
        ),
        (pl.coalesce(excl) if excl else pl.lit(None, pl.String)).alias("motif_exclusion"),
    )
    code_attrs = pl.DataFrame(
        {
            "code_ru": [c.code for c in codes],
            "rang": [c.rang for c in codes],
            "acteur": [c.acteur for c in codes],
            "acteur_repli": [c.acteur_repli for c in codes],
        },
        schema={
            "code_ru": pl.String,
            "rang": pl.Int32,
            "acteur": pl.String,
            "acteur_repli": pl.String,
        },
    )
    out = (
        base.join(flags, on="arret_id", how="inner")
        .filter((pl.col("codes").list.len() > 0) | pl.col("motif_exclusion").is_not_null())
        .with_columns(
            pl.col("codes").list.first().alias("code_ru"),
            pl.col("codes").list.slice(1).alias("autres_codes"),
            pl.col("motif_exclusion").is_not_null().alias("exclu"),
            pl.col("raisons").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("raisons_medicales").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("score").cast(pl.Float64),
            pl.col("duree_jours").cast(pl.Int32),
        )
        .join(code_attrs, on="code_ru", how="left")
        .select(CIBLAGE_COLUMNS)
        .sort("arret_id")
    )
    return out


def with_reasons(ciblage_rows: pl.DataFrame, reasons: pl.DataFrame) -> pl.DataFrame:
    """``ciblage_rows`` with ``raisons``/``raisons_medicales`` taken from ``reasons``
    (``arret_id, raisons, raisons_medicales``) for the arrêts it holds; others keep theirs."""
    joined = ciblage_rows.join(
        reasons.select("arret_id", "raisons", "raisons_medicales"),
        on="arret_id",
        how="left",
        suffix="_calculees",
    )
    return joined.with_columns(
        pl.coalesce("raisons_calculees", "raisons").alias("raisons"),
        pl.coalesce("raisons_medicales_calculees", "raisons_medicales").alias("raisons_medicales"),
    ).select(CIBLAGE_COLUMNS)

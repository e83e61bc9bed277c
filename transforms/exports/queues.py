"""The per-ELSM routing files (spec §6): which rows and columns go in which queue's file.

Pure: the night's ledger rows, the arrêts, the clear NIRs and the code labels in, one frame
per queue out, with French headers and spreadsheet-safe text. Serialising them (CSV, XLSX,
Parquet) is :mod:`transforms.exports.render`; writing them is ``flows/export.py``.

Medical columns (``mtf_cat``, ``ald``, TPT) go only to the ISM and MC queues. The analysts'
Parquet carries neither medical columns nor the clear NIR (``assure_id`` instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

ACTEURS = ("TECH", "CSAM", "ISM", "MC")
ATTENTE = "attente"
QUEUES = (*ACTEURS, ATTENTE)
MEDICAL_QUEUES = frozenset({"ISM", "MC"})

# Characters that make a spreadsheet read a text cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

MOTIFS_ATTENTE = {
    "capacite_atteinte": "capacité de la semaine atteinte",
    "pas_de_capacite": "pas de capacité déclarée pour l'ELSM",
}


@dataclass(frozen=True)
class ExportColumn:
    """One column of an export: its name in :func:`dossiers` and its French header."""

    source: str
    header: str
    medical: bool = False


COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("dossier_id", "N° dossier"),
    ExportColumn("rang_file", "Rang dans la file"),
    ExportColumn("code_ru", "Code RU"),
    ExportColumn("libelle_code", "Libellé du code"),
    ExportColumn("autres_codes", "Autres codes"),
    ExportColumn("score_100", "Score (0-100)"),
    ExportColumn("raisons", "Raisons"),
    ExportColumn("ORG_AFF_COD", "Caisse (ORG_AFF_COD)"),
    ExportColumn("nir", "NIR"),
    ExportColumn("rang_gemellaire", "Rang gémellaire"),
    ExportColumn("ARR_NUM", "N° d'arrêt (ARR_NUM)"),
    ExportColumn("debut_arret", "Début de l'arrêt"),
    ExportColumn("duree_jours", "Durée (jours)"),
    ExportColumn("fin_prescrite", "Fin prescrite"),
    ExportColumn("risque", "Risque"),
    ExportColumn("prescripteur_initial", "Prescripteur (RPPS)"),
    ExportColumn("IJR_EMP_NUM", "Employeur (SIRET)"),
    ExportColumn("derniere_action_dte", "Dernière action"),
    ExportColumn("mtf_cat", "Catégorie médicale", medical=True),
    ExportColumn("ald", "ALD", medical=True),
    ExportColumn("tpt_en_cours", "Temps partiel thérapeutique", medical=True),
    ExportColumn("duree_tpt_jours", "Durée du TPT (jours)", medical=True),
)
BACKLOG_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("acteur_code", "Acteur du code"),
    ExportColumn("acteur_repli", "Acteur de repli"),
    ExportColumn("motif_attente", "Motif de l'attente"),
)
MEDICAL_HEADERS = frozenset(c.header for c in COLUMNS if c.medical)

_ARRETS_COLUMNS = (
    "arret_id",
    "ORG_AFF_COD",
    "ARR_NUM",
    "debut_arret",
    "duree_jours",
    "fin_prescrite",
    "risque",
    "prescripteur_initial",
    "IJR_EMP_NUM",
    "derniere_action_dte",
    "mtf_cat",
    "ald",
    "tpt_en_cours",
    "duree_tpt_jours",
)


def file_name(elsm: str, as_of, queue: str, ext: str) -> str:
    """``routage_<elsm>_<AAAAMMJJ>_<queue>.<ext>`` (queue omitted when empty)."""
    suffix = f"_{queue}" if queue else ""
    return f"routage_{elsm}_{as_of:%Y%m%d}{suffix}.{ext}"


def dossiers(
    routage: pl.DataFrame,
    arrets: pl.DataFrame,
    identite: pl.DataFrame,
    ciblage: pl.DataFrame,
    libelles: Mapping[str, str],
) -> pl.DataFrame:
    """One row per ledger row of the night, with everything an export needs.

    ``routage``: the night's ledger rows. ``arrets``: the arrêts at D (the columns of
    ``_ARRETS_COLUMNS``). ``identite``: ``assure_id, BEN_NIR, BEN_RNG_GEM``. ``ciblage``:
    ``arret_id, acteur, acteur_repli`` at D (the code's actors, shown for the backlog).
    ``libelles``: code → label.

    New columns: ``file`` (the actor, or ``attente``), ``libelle_code``, ``nir`` and
    ``rang_gemellaire`` (null when the identity store has no NIR for the assuré),
    ``acteur_code``, ``motif_attente`` (French), ``score_100`` (score × 100, one decimal).
    Lists stay lists; :func:`queue_frames` turns them into text.
    """
    labels = pl.DataFrame(
        {"code_ru": list(libelles), "libelle_code": list(libelles.values())},
        schema={"code_ru": pl.String, "libelle_code": pl.String},
    )
    nir = identite.select(
        "assure_id",
        pl.col("BEN_NIR").cast(pl.String).alias("nir"),
        pl.col("BEN_RNG_GEM").cast(pl.Int16).alias("rang_gemellaire"),
    ).unique("assure_id", keep="first", maintain_order=True)
    acteurs = ciblage.select(
        "arret_id", pl.col("acteur").alias("acteur_code"), "acteur_repli"
    ).unique("arret_id", keep="first", maintain_order=True)
    return (
        routage.drop("duree_jours", strict=False)
        .join(arrets.select(_ARRETS_COLUMNS), on="arret_id", how="left")
        .join(labels, on="code_ru", how="left")
        .join(nir, on="assure_id", how="left")
        .join(acteurs, on="arret_id", how="left")
        .with_columns(
            pl.coalesce(pl.col("acteur"), pl.lit(ATTENTE)).alias("file"),
            (pl.col("score") * 100).round(1).alias("score_100"),
            pl.col("motif")
            .replace_strict(MOTIFS_ATTENTE, default=pl.col("motif"))
            .alias("motif_attente"),
        )
        .sort("elsm", "file", "rang_file")
    )


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix with ``'`` every text cell a spreadsheet would read as a formula.

    A cell beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage return becomes
    ``'`` + the cell; other cells and non-text columns are unchanged.
    """
    pattern = "^[" + "".join(FORMULA_PREFIXES).replace("-", r"\-") + "]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(pattern))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Lists become ``a, b`` (codes) or ``a | b`` (reasons), empty lists empty cells;
    booleans ``oui``/``non``."""
    out = frame.with_columns(
        pl.col(c).list.join(sep).replace("", None).alias(c)
        for c, sep in (("autres_codes", ", "), ("raisons", " | "))
    )
    return out.with_columns(
        pl.when(pl.col(c)).then(pl.lit("oui")).when(~pl.col(c)).then(pl.lit("non")).alias(c)
        for c, dtype in out.schema.items()
        if dtype == pl.Boolean
    )


def columns_for(queue: str) -> tuple[ExportColumn, ...]:
    """The columns of a queue's file: medical ones only for ISM and MC; backlog extras."""
    if queue == ATTENTE:
        return tuple(c for c in COLUMNS if not c.medical) + BACKLOG_COLUMNS
    if queue in MEDICAL_QUEUES:
        return COLUMNS
    return tuple(c for c in COLUMNS if not c.medical)


def queue_frames(dossiers_elsm: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """One frame per queue (TECH, CSAM, ISM, MC, attente) of one ELSM's dossiers.

    Rows in queue order (``rang_file``); French headers; typed cells (dates, integers,
    decimals) and neutralised text. Every queue is present, empty when it has no dossier.
    """
    text = neutralise(_as_text(dossiers_elsm.sort("file", "rang_file")))
    return {
        queue: text.filter(pl.col("file") == queue).select(
            pl.col(c.source).alias(c.header) for c in columns_for(queue)
        )
        for queue in QUEUES
    }


ANALYST_COLUMNS = (
    "as_of",
    "semaine_iso",
    "elsm",
    "dossier_id",
    "file",
    "rang_file",
    "statut",
    "motif",
    "code_ru",
    "autres_codes",
    "score",
    "raisons",
    "arret_id",
    "assure_id",
    "ORG_AFF_COD",
    "ARR_NUM",
    "debut_arret",
    "duree_jours",
    "fin_prescrite",
    "risque",
    "prescripteur_initial",
    "IJR_EMP_NUM",
    "derniere_action_dte",
)


def analyst_frame(dossiers_elsm: pl.DataFrame) -> pl.DataFrame:
    """The analysts' table of one ELSM: every queue and the backlog, one row per dossier.

    Warehouse names and types (lists stay lists, score stays 0–1); no clear NIR (the
    pseudonymised ``assure_id`` joins the warehouse) and no medical column.
    """
    return dossiers_elsm.sort("file", "rang_file").select(ANALYST_COLUMNS)

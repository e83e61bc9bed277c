"""One chunk of checked records → accepted (pseudonymised) rows and rejected rows, and
rejected rows → quarantine rows.

Pure: frames and typed parameters in, new frames out (see :func:`split_chunk`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from transforms.raw.pseudo import NIR_LIKE_RE, Pseudonymiser, mask_texts
from transforms.raw.rules import flag_doublons, rejection_details, v
from transforms.raw.schema import Kind, References, SourceSpec

_POLARS_TYPES = {
    "VARCHAR": pl.String,
    "DATE": pl.Date,
    "SMALLINT": pl.Int16,
    "INTEGER": pl.Int32,
    "BIGINT": pl.Int64,
    "DOUBLE": pl.Float64,
    "BOOLEAN": pl.Boolean,
    "TIMESTAMP": pl.Datetime("us"),
}


def polars_type(sql_type: str) -> pl.DataType:
    if sql_type.startswith("DECIMAL"):
        precision, scale = sql_type[len("DECIMAL(") : -1].split(",")
        return pl.Decimal(int(precision), int(scale))
    if sql_type == "VARCHAR[]":
        return pl.List(pl.String)
    return _POLARS_TYPES[sql_type]


@dataclass(frozen=True)
class Provenance:
    ingestion_id: str
    fichier: str
    source: str


@dataclass(frozen=True)
class ChunkResult:
    """``accepted``: warehouse rows (contract columns, in order); ``lake``: the same plus the
    file's extra columns; ``rejected``: the rejected records with their rule flags and
    ``texte``, for :func:`quarantine_rows` (which costs mostly per call: the caller may
    gather several chunks' first). The identities met are kept by the
    :class:`~transforms.raw.pseudo.Pseudonymiser`."""

    accepted: pl.DataFrame
    lake: pl.DataFrame
    rejected: pl.DataFrame


def mask_nir_like(expr: pl.Expr) -> pl.Expr:
    """Mask any NIR-shaped token of a free text column (extra columns of the lake)."""
    return expr.str.replace_all(NIR_LIKE_RE, "*****NIR-MASQUE*****")


def _value(spec: SourceSpec, name: str, sql_type: str) -> pl.Expr:
    c = spec.column(name)
    target = polars_type(sql_type)
    if c.kind is Kind.DEC:
        # From the checked cents: at most 12 significant digits, so cents / 100 as a double
        # rounds back to the exact decimal (same value as parsing the text, a third the cost).
        value = (pl.col(v(name)).cast(pl.Float64) / 100).cast(target)
    else:
        value = pl.col(v(name))
        if c.default is not None:
            value = value.fill_null(int(c.default) if c.kind is Kind.INT else pl.lit(c.default))
        value = value.cast(target)
    return value.alias(name)


def never_null_columns(spec: SourceSpec) -> set[str]:
    """Columns of :func:`accepted_rows` never null: the contract's required columns (a
    record without one, or with one unreadable, is rejected), ``assure_id`` (a NIR or a PSA:
    exactly one, ``nir_exclusif``) and the provenance ``ingestion_id``, ``fichier``,
    ``ligne``."""
    return {c.name for c in spec.columns if c.required} | {
        "assure_id",
        "ingestion_id",
        "fichier",
        "ligne",
    }


def accepted_rows(
    frame: pl.DataFrame, spec: SourceSpec, columns: list[tuple[str, str]], prov: Provenance
) -> pl.DataFrame:
    """Warehouse rows of accepted records, in the contract's column order and types.

    ``columns``: (name, SQL type) of the table's contract; ``assure_id`` must be present.
    """
    exprs = []
    input_names = set(spec.names)
    for name, sql_type in columns:
        if name in input_names:
            exprs.append(_value(spec, name, sql_type))
        elif name == "assure_id":
            exprs.append(pl.col("assure_id").cast(pl.String))
        elif name == "ingestion_id":
            exprs.append(pl.lit(prov.ingestion_id, dtype=pl.String).alias(name))
        elif name == "fichier":
            exprs.append(pl.lit(prov.fichier, dtype=pl.String).alias(name))
        elif name == "ligne":
            exprs.append(pl.col("ligne").cast(pl.Int32))
        else:
            raise KeyError(f"colonne {name} du contrat {spec.table} inconnue de l'ingestion")
    return frame.select(exprs)


def quarantine_rows(
    rejected: pl.DataFrame, spec: SourceSpec, refs: References, n_fields: int, prov: Provenance
) -> pl.DataFrame:
    """Quarantine rows: ingestion_id, source, fichier, ligne, regles, details, texte_original."""
    if rejected.height == 0:
        detailed = rejected.with_columns(
            regles=pl.lit(None, dtype=pl.List(pl.String)), details=pl.lit(None, dtype=pl.String)
        )
    else:
        detailed = rejection_details(rejected, spec, refs, n_fields)
    nirs = (
        detailed["BEN_NIR"]
        if "BEN_NIR" in detailed.columns
        else pl.Series([None] * detailed.height)
    )
    masked = mask_texts(detailed["texte"], nirs.cast(pl.String))
    # Details quote values of other columns: a NIR typed in the wrong column is masked too.
    details = mask_texts(detailed["details"], nirs.cast(pl.String))
    return detailed.select(
        pl.lit(prov.ingestion_id, dtype=pl.String).alias("ingestion_id"),
        pl.lit(prov.source, dtype=pl.String).alias("source"),
        pl.lit(prov.fichier, dtype=pl.String).alias("fichier"),
        pl.col("ligne").cast(pl.Int32),
        pl.col("regles"),
        pl.Series("details", details, dtype=pl.String),
        pl.Series("texte_original", masked, dtype=pl.String),
    )


def file_level_rejection(
    records: pl.DataFrame, rule: str, detail: str, prov: Provenance
) -> pl.DataFrame:
    """Quarantine rows for every record of a refused file (``encodage``, ``entete``)."""
    nirs = (
        records["BEN_NIR"] if "BEN_NIR" in records.columns else pl.Series([None] * records.height)
    )
    masked = mask_texts(records["texte"], nirs.cast(pl.String))
    return records.select(
        pl.lit(prov.ingestion_id, dtype=pl.String).alias("ingestion_id"),
        pl.lit(prov.source, dtype=pl.String).alias("source"),
        pl.lit(prov.fichier, dtype=pl.String).alias("fichier"),
        pl.col("ligne").cast(pl.Int32),
        pl.lit([rule], dtype=pl.List(pl.String)).alias("regles"),
        pl.lit(f"{rule} : {detail}", dtype=pl.String).alias("details"),
        pl.Series("texte_original", masked, dtype=pl.String),
    )


def split_chunk(
    checked: pl.DataFrame,
    existing_keys: pl.DataFrame,
    *,
    spec: SourceSpec,
    columns: list[tuple[str, str]],
    extras: list[str],
    pseudo: Pseudonymiser,
    prov: Provenance,
    texts: Callable[[pl.Series], pl.Series] | None = None,
) -> ChunkResult:
    """Accepted rows (pseudonymised by ``pseudo``), lake rows and rejected rows of a chunk.

    ``checked``: output of :func:`transforms.raw.rules.check_records`; ``existing_keys``:
    keys already accepted (for ``doublon``). ``texts``: when ``checked`` has no ``texte``
    column, gives the original text of lines by ``ligne`` (only rejected lines need it).
    """
    frame = flag_doublons(checked, spec, existing_keys)
    # Accepted rows need only their typed values (and extra columns): the
    # rule flags stay behind, which keeps the filter cheap.
    needed = [
        "ligne",
        "_nir_num",
        *(v(c.name) for c in spec.columns),
        *(x for x in extras if x in frame.columns),
    ]
    ok = frame.select(*needed, "rejete").filter(~pl.col("rejete"))
    # Few rows are rejected: gather them by index rather than filter every wide column.
    rejected = frame[frame.get_column("rejete").arg_true()]
    if "texte" not in rejected.columns:
        if texts is None:
            raise ValueError("split_chunk : ni colonne texte ni fonction texts")
        rejected = rejected.with_columns(texte=texts(rejected.get_column("ligne")))
    rang = v("BEN_RNG_GEM")
    ok = ok.with_columns(pl.col(rang).fill_null(1))
    ok = pseudo.pseudonymise(
        ok,
        nir=v("BEN_NIR"),
        number="_nir_num",
        psa=v("BEN_NIR_PSA"),
        rang=rang,
        date=v("FLX_DIS_DTD"),
    )
    accepted = accepted_rows(ok, spec, columns, prov)
    extra_cols = [mask_nir_like(pl.col(x)).alias(x) for x in extras if x not in accepted.columns]
    lake = (
        pl.concat([accepted, ok.select(extra_cols)], how="horizontal") if extra_cols else accepted
    )
    return ChunkResult(accepted, lake, rejected)

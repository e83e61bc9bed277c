"""The warehouse's ``lignes_ij`` and ``actions`` as views over the Parquet lake.

Accepted lines are written once, to the lake (one Parquet file per ingested file, written
atomically). The warehouse objects ``lignes_ij`` and ``actions`` are views listing, explicitly,
the lake files of the ``ok`` rows of ``ingestions``: the ``ingestions`` row commit stays the
point that makes a file visible. Pure: names and paths in, SQL text out.
"""

from __future__ import annotations

import re

# warehouse view -> source (lake folder lake/raw/<source>/)
LAKE_TABLES = {"lignes_ij": "ij_paiements", "actions": "actions"}

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def lake_relpath(source: str, fichier: str, ingestion_id: str) -> str:
    """Lake file of an ingested file, relative to the data folder (POSIX separators):
    ``lake/raw/<source>/<name without extensions>__<sha256[:16]>.parquet``."""
    stem = fichier.split(".")[0]
    return f"lake/raw/{source}/{stem}__{ingestion_id[:16]}.parquet"


def _quote_path(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _select_list(columns: list[tuple[str, str]], source_has: bool) -> str:
    for name, _ in columns:
        if not _IDENT.match(name):
            raise ValueError(f"nom de colonne invalide : {name!r}")
    if source_has:
        return ",\n  ".join(f'cast("{n}" as {t}) as "{n}"' for n, t in columns)
    return ",\n  ".join(f'cast(null as {t}) as "{n}"' for n, t in columns)


def view_sql(table: str, columns: list[tuple[str, str]], files: list[str]) -> str:
    """``create or replace view <table>`` over the Parquet ``files`` (absolute paths).

    ``columns``: (name, SQL type) of the table's contract, the view's columns in order
    (extra columns of the lake files are not shown). No file: an empty view of the same
    columns and types. Files with different extra columns are read by name.
    """
    if not _IDENT.match(table):
        raise ValueError(f"nom de table invalide : {table!r}")
    if not files:
        return (
            f'create or replace view "{table}" as\nselect\n  '
            f"{_select_list(columns, source_has=False)}\nwhere false"
        )
    listing = ",\n    ".join(_quote_path(f) for f in files)
    return (
        f'create or replace view "{table}" as\nselect\n  '
        f"{_select_list(columns, source_has=True)}\n"
        f"from read_parquet([\n    {listing}\n  ], union_by_name = true)"
    )


def copy_to_parquet_sql(query: str, target: str) -> str:
    """``copy`` of ``query``'s rows to the Parquet file ``target`` (zstd, like the lake)."""
    return (
        f"copy ({query}) to {_quote_path(target)} "
        "(format parquet, compression zstd, compression_level 1)"
    )

"""The DuckDB warehouse and the identity store: opening them, and read-only queries."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from flows.settings import DataPaths

if TYPE_CHECKING:
    from collections.abc import Iterator

    import duckdb


class WarehouseError(RuntimeError):
    """The warehouse is missing or a query failed; the message says what to do."""


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    import duckdb

    if read_only and not path.exists():
        raise WarehouseError(
            f"entrepôt introuvable : {path}. Lancez d'abord `ru ingest` (ou `ru demo`) "
            "avec le même --data."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


@contextmanager
def warehouse(paths: DataPaths, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``warehouse.duckdb``, closed on exit."""
    con = _connect(paths.warehouse, read_only)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def identity_store(
    paths: DataPaths, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the identity store (clear NIR by ``assure_id``), closed on exit.

    Only ingestion (writes) and export (reads) open it.
    """
    con = _connect(paths.identite, read_only)
    try:
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    # DuckDB 2.0: an execute() result must be fully fetched before the next statement.
    rows = con.execute(
        "select count(*) from information_schema.tables where table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])


def default_as_of(con: duckdb.DuckDBPyConnection):
    """The default as-of date: the latest ``FLX_DIS_DTD`` ingested (lines or actions)."""
    parts = [
        f'select max("FLX_DIS_DTD") as d from "{t}"'
        for t in ("lignes_ij", "actions")
        if table_exists(con, t)
    ]
    if not parts:
        raise WarehouseError("aucune donnée ingérée : lancez d'abord `ru ingest`.")
    row = con.execute(f"select max(d) from ({' union all '.join(parts)})").fetchall()[0]
    if row[0] is None:
        raise WarehouseError("aucune ligne ingérée : lancez d'abord `ru ingest`.")
    return row[0]

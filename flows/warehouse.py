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


# Steps that ran at a date, even when they produced no row: a night with nothing to route
# is normal, and the next step must tell it from a step that never ran.
_STEPS_DDL = (
    "create table if not exists etapes_executees "
    "(etape VARCHAR NOT NULL, as_of DATE NOT NULL, lignes BIGINT NOT NULL, fini_le TIMESTAMP)"
)


def record_step(con: duckdb.DuckDBPyConnection, etape: str, as_of, lignes: int) -> None:
    """Record that ``etape`` ran at ``as_of`` (call inside the step's own transaction)."""
    con.execute(_STEPS_DDL)
    con.execute(
        "delete from etapes_executees where etape = $etape and as_of = $as_of",
        {"etape": etape, "as_of": as_of},
    )
    con.execute(
        "insert into etapes_executees values ($etape, $as_of, $lignes, current_timestamp)",
        {"etape": etape, "as_of": as_of, "lignes": lignes},
    )


def step_done(con: duckdb.DuckDBPyConnection, etape: str, as_of) -> bool:
    """Whether ``etape`` ran at ``as_of`` (rows or not)."""
    if not table_exists(con, "etapes_executees"):
        return False
    rows = con.execute(
        "select count(*) from etapes_executees where etape = $etape and as_of = $as_of",
        {"etape": etape, "as_of": as_of},
    ).fetchall()
    return bool(rows[0][0])

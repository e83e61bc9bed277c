"""``ru query``: a read-only SQL query on the warehouse, for analysts and tests."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import typer

from flows.cli_common import DataOption, fail
from flows.console import out
from flows.settings import resolve_data_dir
from flows.warehouse import WarehouseError, warehouse


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _jsonable(value):
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def query(
    sql: Annotated[str, typer.Argument(help="Requête SQL (lecture seule), entre guillemets.")],
    format: Annotated[
        Format, typer.Option("--format", "-f", help="Format de sortie : table, csv ou json.")
    ] = Format.table,
    limit: Annotated[
        int, typer.Option(help="Nombre maximal de lignes affichées en mode table (0 : toutes).")
    ] = 50,
    data: DataOption = None,
) -> None:
    """Interroge l'entrepôt en lecture seule (tables lignes_ij, actions, quarantaine, …).

    Exemples :

      ru query "select source, statut, count(*) from ingestions group by all"

      ru query "select * from quarantaine limit 5" --format json
    """
    import duckdb

    paths = resolve_data_dir(data)
    try:
        with warehouse(paths, read_only=True) as con:
            try:
                rel = con.sql(sql)
            except duckdb.Error as exc:
                fail(f"requête refusée : {exc}")
            if rel is None:
                fail("la requête ne renvoie aucune table (instruction sans résultat ?)")
            columns = list(rel.columns)
            rows = rel.fetchall()
    except WarehouseError as exc:
        fail(str(exc))

    if format is Format.json:
        payload = [dict(zip(columns, map(_jsonable, row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    elif format is Format.csv:
        import csv

        writer = csv.writer(sys.stdout, delimiter=";", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_jsonable(v) for v in row] for row in rows])
    else:
        from rich.table import Table

        table = Table(*columns, show_lines=False)
        shown = rows if limit == 0 else rows[:limit]
        for row in shown:
            table.add_row(*("" if v is None else str(_jsonable(v)) for v in row))
        out.print(table)
        if len(shown) < len(rows):
            out.print(f"… {len(rows) - len(shown)} ligne(s) non affichée(s) (--limit 0 pour tout)")

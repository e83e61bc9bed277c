"""Options and helpers shared by every ``ru`` command."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from flows.console import console

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        envvar="RU_DATA",
        help="Dossier des données (entrepôt DuckDB, lac Parquet, quarantaine, exports, "
        "rapports). Par défaut : variable RU_DATA, sinon data/local.",
        show_default=False,
    ),
]

AsOfOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="Date d'arrêté D (AAAA-MM-JJ). Par défaut : la dernière date de mise à "
        "disposition ingérée.",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a French error message and leave with a non-zero status."""
    console.print(f"[bold red]Erreur :[/] {message}")
    raise typer.Exit(code)

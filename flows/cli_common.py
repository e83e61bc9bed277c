"""Options and helpers shared by every ``ru`` command."""

from __future__ import annotations

from collections.abc import Callable
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


def day_parser(option: str) -> Callable[[str | datetime], datetime]:
    """Parser of an ``AAAA-MM-JJ`` option: an invalid value stops the command with a French
    message naming the option (Click's own would be in English)."""

    def parse(value: str | datetime) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.strptime(value.strip(), "%Y-%m-%d")
        except ValueError:
            fail(
                f"{option} : date invalide « {value} » (attendu AAAA-MM-JJ, une date qui "
                "existe, par exemple 2026-10-31)",
                code=2,
            )

    return parse


def as_of_option(help_text: str) -> object:
    """The ``--as-of AAAA-MM-JJ`` option with its help text (see :func:`day_parser`)."""
    return Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            parser=day_parser("--as-of"),
            metavar="AAAA-MM-JJ",
            help=help_text,
            show_default=False,
        ),
    ]


AsOfOption = as_of_option(
    "Date d'arrêté D (AAAA-MM-JJ). Par défaut : la dernière date de mise à disposition ingérée."
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a French error message and leave with a non-zero status."""
    console.print(f"[bold red]Erreur :[/] {message}")
    raise typer.Exit(code)

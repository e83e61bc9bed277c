"""The ``ru`` command line: one verb per pipeline step, French help texts.

Each command lives in the module of its step; this file only assembles them. Command
modules import their heavy libraries (polars, duckdb, prefect, great_expectations) inside
the command, so that ``ru --help`` answers at once.
"""

from __future__ import annotations

import typer

from flows import build as build_step
from flows import checks as checks_step
from flows import demo as demo_step
from flows import export as export_step
from flows import indicators, ingest, nightly_cli, query, report, sample
from flows import route as route_step
from flows import target as target_step
from flows import train as train_step
from flows.console import setup_logging

app = typer.Typer(
    name="ru",
    help=(
        "ru-ij : requête unique IJ du service médical.\n\n"
        "Ingère les extractions de paiements d'IJ et d'actions, reconstitue les arrêts, "
        "cible les dossiers (codes RU), les oriente vers les files (technicien, CSAM, ISM, "
        "médecin conseil) dans la capacité de chaque ELSM, exporte les fichiers par ELSM et "
        "calcule les indicateurs (F1, P4, couverture PDP).\n\n"
        "Pour commencer : `ru demo` exécute tout le pipeline sur l'échantillon data/sample/."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Journal détaillé."),
) -> None:
    setup_logging(verbose)


app.command("demo")(demo_step.demo)
app.command("query")(query.query)
app.command("sample")(sample.sample)
app.command("ingest")(ingest.ingest)
app.command("build")(build_step.build)
app.command("check")(checks_step.check)
app.command("train")(train_step.train)
app.command("target")(target_step.target)
app.command("route")(route_step.route_cmd)
app.command("export")(export_step.export_cmd)
app.command("indicators")(indicators.indicators)
app.command("report")(report.report)
app.command("nightly")(nightly_cli.nightly)
app.command("backfill")(nightly_cli.backfill)
app.command("schedule")(nightly_cli.schedule)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

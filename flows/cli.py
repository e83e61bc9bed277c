"""The ``ru`` command line: one verb per pipeline step, French help texts.

Each command lives in the module of its step; this file only assembles them. Command
modules import their heavy libraries (polars, duckdb, prefect, great_expectations) inside
the command, so that ``ru --help`` answers at once.
"""

from __future__ import annotations

import typer
import typer.rich_utils as rich_texts
from typer.core import TyperCommand, TyperGroup

from flows import build as build_step
from flows import checks as checks_step
from flows import demo as demo_step
from flows import export as export_step
from flows import indicators, ingest, nightly_cli, query, report, sample
from flows import route as route_step
from flows import target as target_step
from flows import train as train_step
from flows.console import setup_logging

# The help screens speak French like the rest of the tool.
rich_texts.COMMANDS_PANEL_TITLE = "Commandes"
rich_texts.ERRORS_PANEL_TITLE = "Erreur"
rich_texts.DEFAULT_STRING = "[défaut : {}]"
rich_texts.ENVVAR_STRING = "[variable : {}]"
rich_texts.REQUIRED_LONG_STRING = "[obligatoire]"
rich_texts.ABORTED_TEXT = "Interrompu."
HELP_TEXT = "Affiche cette aide et quitte."


class _FrenchHelpOption:
    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_TEXT
        return option


class FrenchGroup(_FrenchHelpOption, TyperGroup):
    pass


class FrenchCommand(_FrenchHelpOption, TyperCommand):
    pass


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
    cls=FrenchGroup,
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


# In the order of the pipeline.
app.command("demo", cls=FrenchCommand)(demo_step.demo)
app.command("sample", cls=FrenchCommand)(sample.sample)
app.command("ingest", cls=FrenchCommand)(ingest.ingest)
app.command("check", cls=FrenchCommand)(checks_step.check)
app.command("build", cls=FrenchCommand)(build_step.build)
app.command("train", cls=FrenchCommand)(train_step.train)
app.command("target", cls=FrenchCommand)(target_step.target)
app.command("route", cls=FrenchCommand)(route_step.route_cmd)
app.command("export", cls=FrenchCommand)(export_step.export_cmd)
app.command("indicators", cls=FrenchCommand)(indicators.indicators)
app.command("report", cls=FrenchCommand)(report.report)
app.command("nightly", cls=FrenchCommand)(nightly_cli.nightly)
app.command("backfill", cls=FrenchCommand)(nightly_cli.backfill)
app.command("schedule", cls=FrenchCommand)(nightly_cli.schedule)
app.command("query", cls=FrenchCommand)(query.query)


def main() -> None:
    from flows.allocators import tune

    tune()  # before Polars and pyarrow load (see flows/allocators.py)
    app()


if __name__ == "__main__":
    main()

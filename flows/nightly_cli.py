"""``ru nightly``, ``ru backfill``, ``ru schedule``: the nightly flow from the command line.

Prefect is imported inside the commands (after its environment is set: no analytics, its
home under the data folder), so ``ru --help`` stays instant. The flow itself is in
``flows/nightly.py``.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import DataOption, fail
from flows.settings import DataPaths

STATUTS = {"succes": "réussie", "echec": "en échec", "en_cours": "en cours"}

LandingOption = Annotated[
    Path | None,
    typer.Option(
        "--landing",
        help="Dossier d'arrivée des extractions (défaut : <données>/arrivee). Les fichiers "
        "déjà ingérés (même empreinte sha256) sont ignorés.",
        show_default=False,
    ),
]


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"date invalide pour {option} : « {value} » (attendu AAAA-MM-JJ)")


def _paths(data: Path | None) -> DataPaths:
    from flows.settings import ConfigError, resolve_data_dir

    try:
        return resolve_data_dir(data).ensure()
    except ConfigError as exc:
        fail(str(exc))


def _prefect_environment(paths: DataPaths) -> None:
    """Set Prefect's environment before it is imported (values already set are kept)."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    for key, value in {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(paths.root / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }.items():
        os.environ.setdefault(key, value)


def _print_manifest(manifest: dict) -> None:
    from rich.table import Table

    from flows.console import out
    from flows.report import fr_nombre

    night = date.fromisoformat(manifest["as_of"])
    table = Table(title=f"Nuit du {night:%d/%m/%Y} (exécution {manifest['run_id']})")
    for col, justify in (("étape", "left"), ("statut", "left"), ("durée (s)", "right")):
        table.add_column(col, justify=justify)
    for step in manifest["etapes"]:
        statut = STATUTS.get(step["statut"], step["statut"])
        table.add_row(step["libelle"], statut, fr_nombre(step.get("duree_s") or 0, 1))
    out.print(table)


def _failure_message(exc, night: date | None) -> str:
    when = f"du {night:%d/%m/%Y} " if night else ""
    return (
        f"la nuit {when}a échoué, {exc}. Les sorties de la dernière exécution réussie "
        f"restent en place. Manifeste : {exc.manifest}"
    )


def nightly(
    data: DataOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Date d'arrêté D (AAAA-MM-JJ). Défaut : la dernière date de mise à "
            "disposition ingérée.",
            show_default=False,
        ),
    ] = None,
    landing: LandingOption = None,
) -> None:
    """Exécute la nuit : ingestion du dossier d'arrivée, contrôles, arrêts, ciblage,
    orientation, exports, indicateurs et rapport (flux Prefect, sans serveur à démarrer)."""
    from flows.console import out

    night = _date(as_of, "--as-of")
    paths = _paths(data)
    _prefect_environment(paths)
    from flows.nightly import StepFailed, run_night

    try:
        manifest = run_night(paths, night, landing)
    except StepFailed as exc:
        fail(_failure_message(exc, night))
    except Exception as exc:  # Prefect itself (temporary server, database): say it in French
        fail(f"le flux de nuit n'a pas pu s'exécuter ({exc.__class__.__name__} : {exc})")
    _print_manifest(manifest)
    out.print(f"Manifeste : {paths.runs / manifest['run_id'] / 'manifest.json'}")


def backfill(
    debut: Annotated[
        str, typer.Option("--from", help="Première nuit (AAAA-MM-JJ).", show_default=False)
    ],
    fin: Annotated[
        str, typer.Option("--to", help="Dernière nuit (AAAA-MM-JJ).", show_default=False)
    ],
    data: DataOption = None,
    landing: LandingOption = None,
) -> None:
    """Rejoue les nuits de --from à --to, une par une, en sautant celles déjà réussies
    (d'après les manifestes d'exécution) ; s'arrête à la première nuit en échec."""
    from flows.console import out
    from flows.report import fr_nombre

    start, end = _date(debut, "--from"), _date(fin, "--to")
    if end < start:
        fail(f"--to ({end:%d/%m/%Y}) est avant --from ({start:%d/%m/%Y})")
    paths = _paths(data)
    _prefect_environment(paths)
    from flows.nightly import StepFailed, nights_to_run, run_backfill

    todo = nights_to_run(paths, start, end)
    skipped = (end - start).days + 1 - len(todo)
    out.print(f"{len(todo)} nuit(s) à exécuter, {skipped} déjà réussie(s) d'après les manifestes.")

    def done(manifest: dict) -> None:
        night = date.fromisoformat(manifest["as_of"])
        out.print(f"Nuit du {night:%d/%m/%Y} : réussie ({fr_nombre(manifest['duree_s'], 1)} s)")

    try:
        run_backfill(paths, start, end, landing, on_night=done)
    except StepFailed as exc:
        fail(_failure_message(exc, None))
    except Exception as exc:  # Prefect itself (temporary server, database): say it in French
        fail(f"le flux de nuit n'a pas pu s'exécuter ({exc.__class__.__name__} : {exc})")


def schedule(
    data: DataOption = None,
    landing: LandingOption = None,
    cron: Annotated[
        str, typer.Option("--cron", help="Heure de la nuit (cron, heure de Paris).")
    ] = "30 2 * * *",
    fuseau: Annotated[str, typer.Option("--fuseau", help="Fuseau horaire du cron.")] = (
        "Europe/Paris"
    ),
) -> None:
    """Sert le flux de nuit comme déploiement Prefect planifié (cron, heure de Paris).
    Il faut un serveur Prefect : `prefect server start --host 127.0.0.1` dans un autre
    terminal et `PREFECT_API_URL=http://127.0.0.1:4200/api`."""

    if not os.environ.get("PREFECT_API_URL"):
        fail(
            "PREFECT_API_URL n'est pas définie : une planification a besoin d'un serveur "
            "Prefect. Lancez `uv run prefect server start --host 127.0.0.1` dans un autre "
            "terminal, puis `export PREFECT_API_URL=http://127.0.0.1:4200/api` et relancez "
            "`ru schedule`."
        )
    paths = _paths(data)
    _prefect_environment(paths)
    from flows.nightly import serve

    serve(paths, landing, cron, fuseau)

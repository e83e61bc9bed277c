"""The nightly Prefect flow: every step of the pipeline at D, and the run manifest.

``nightly(as_of)`` sequences the steps as Prefect tasks (spec §0): configuration →
ingestion of the landing folder → data checks of the new rows → arrêts at D → targeting →
routing → exports → indicators → report. Each task is a thin wrapper around the step's
plain function (``ingest_paths``, ``build_at``…); retries only on the I/O steps (ingestion,
exports, report). Every step is idempotent and replaces its own outputs atomically, so a
failed step leaves the outputs of the last good run in place.

Each run writes ``<data>/executions/<run_id>/manifest.json``: steps, status, counts,
durations, versions of the pipeline, libraries and promoted model, and — when it fails — the
step and the reason. The manifest is rewritten after every step, so a run killed mid-way
still says how far it went (``statut: en_cours``).

This module imports Prefect; the ``ru nightly|backfill|schedule`` commands live in
``flows/nightly_cli.py`` so that ``ru --help`` stays instant.
"""

# No `from __future__ import annotations` here: Prefect builds the flow's parameter model
# from these annotations, and a deployment run cannot resolve them when they are strings.
import json
import logging
import os
import platform
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.settings import DataPaths, Settings

log = logging.getLogger("ru.nuit")

FLOW_NAME = "ru-nuit"
MANIFEST = "manifest.json"
IO_RETRIES = {"retries": 2, "retry_delay_seconds": 5}
STEPS = {
    "configuration": "lecture et validation de la configuration",
    "ingestion": "ingestion des fichiers du dossier d'arrivée",
    "controles": "contrôles des lignes ingérées",
    "date": "date d'arrêté",
    "construction": "construction des arrêts",
    "ciblage": "ciblage (codes RU, score)",
    "orientation": "orientation vers les files",
    "export": "exports par ELSM",
    "indicateurs": "indicateurs F1, P4, PDP, volumes",
    "rapport": "rapport HTML",
}


class StepFailed(RuntimeError):
    """A step of the night failed; the French message names the step and the reason."""

    def __init__(self, step: str, reason: str, manifest: Path):
        super().__init__(f"étape « {step} » ({STEPS.get(step, step)}) en échec : {reason}")
        self.step = step
        self.reason = reason
        self.manifest = manifest


# ----------------------------------------------------------------- the run manifest


def versions() -> dict[str, str]:
    """Versions of the pipeline and the libraries its outputs depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (
        "ru-ij",
        "duckdb",
        "polars",
        "pyarrow",
        "scikit-learn",
        "skops",
        "great-expectations",
        "prefect",
        "matplotlib",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text if len(text) < 4000 else text[:4000] + "…"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "as_dict"):
        return _jsonable(value.as_dict())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass
class RunManifest:
    """The record of one night, rewritten to ``executions/<run_id>/manifest.json``."""

    paths: DataPaths
    run_id: str
    as_of: date | None
    arrivee: str | None
    debut: datetime = field(default_factory=lambda: datetime.now().astimezone())
    etapes: list[dict] = field(default_factory=list)
    statut: str = "en_cours"
    etape_en_echec: str | None = None
    erreur: str | None = None
    modele: str | None = None
    prefect_flow_run: str | None = None
    fin: datetime | None = None

    @classmethod
    def start(cls, paths: DataPaths, as_of: date | None, arrivee: Path | None) -> "RunManifest":
        now = datetime.now().astimezone()
        run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        manifest = cls(paths, run_id, as_of, str(arrivee) if arrivee else None, debut=now)
        manifest.write()
        return manifest

    @property
    def path(self) -> Path:
        return self.paths.runs / self.run_id / MANIFEST

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "flux": FLOW_NAME,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "statut": self.statut,
            "etape_en_echec": self.etape_en_echec,
            "erreur": self.erreur,
            "debut": self.debut.isoformat(timespec="seconds"),
            "fin": self.fin.isoformat(timespec="seconds") if self.fin else None,
            "duree_s": round((self.fin - self.debut).total_seconds(), 3) if self.fin else None,
            "arrivee": self.arrivee,
            "etapes": self.etapes,
            "versions": {**versions(), "modele": self.modele},
            "prefect_flow_run": self.prefect_flow_run,
        }

    def write(self) -> None:
        """Rewrite the manifest atomically (temporary file, then rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps(self.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        tmp.replace(self.path)

    def step(self, name: str, fn, *args, **kwargs):
        """Run one step (a Prefect task), record its status, counts and duration.

        A failure is recorded (step, reason) and re-raised as :class:`StepFailed`; the steps
        after it do not run.
        """
        record = {
            "nom": name,
            "libelle": STEPS.get(name, name),
            "statut": "en_cours",
            "debut": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        self.etapes.append(record)
        self.write()
        log.info("Nuit %s : %s…", self.as_of or "", record["libelle"])
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            record.update(statut="echec", duree_s=round(time.perf_counter() - start, 3))
            record["erreur"] = _reason(exc)
            self.finish(failed_step=name, reason=_reason(exc))
            log.error("Nuit %s : étape « %s » en échec : %s", self.as_of or "", name, _reason(exc))
            raise StepFailed(name, _reason(exc), self.path) from exc
        record.update(statut="succes", duree_s=round(time.perf_counter() - start, 3))
        record["resume"] = _jsonable(result)
        self.write()
        log.info(
            "Nuit %s : étape « %s » terminée (%.1f s)", self.as_of or "", name, record["duree_s"]
        )
        return result

    def finish(self, failed_step: str | None = None, reason: str | None = None) -> dict:
        self.fin = datetime.now().astimezone()
        self.statut = "echec" if failed_step else "succes"
        self.etape_en_echec, self.erreur = failed_step, reason
        self.write()
        return self.as_dict()


def read_manifests(paths: DataPaths) -> list[dict]:
    """Every run manifest of the data folder (unreadable ones skipped), oldest first."""
    out = []
    for path in sorted(paths.runs.glob(f"*/{MANIFEST}")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out


def nights_done(paths: DataPaths) -> set[date]:
    """The dates D with a successful night in the run manifests."""
    return {
        date.fromisoformat(m["as_of"])
        for m in read_manifests(paths)
        if m.get("statut") == "succes" and m.get("as_of")
    }


def nights_to_run(paths: DataPaths, start: date, end: date) -> list[date]:
    """The nights of ``[start, end]``, oldest first, without those already done."""
    done = nights_done(paths)
    days = (end - start).days
    return [d for d in (start + timedelta(n) for n in range(days + 1)) if d not in done]


def landing_files(landing: Path, as_of: date | None) -> list[Path]:
    """The files of the landing folder a night at D may ingest: those whose extraction date
    (``_AAAAMMJJ`` in the name) is ≤ D, or all of them when D is not given yet. Files without
    a date in their name are passed on: ingestion sets them aside and says why."""
    from flows.ingest import processing_order

    if not landing.is_dir():
        return []
    files = sorted(p for p in landing.rglob("*") if p.is_file() and not p.name.startswith("."))
    if as_of is None:
        return files
    limit = f"{as_of:%Y%m%d}"
    return [
        p for p in files if processing_order(p)[0] == "99999999" or processing_order(p)[0] <= limit
    ]


# ----------------------------------------------------------------- tasks (thin wrappers)


@dataclass(frozen=True)
class Configuration:
    settings: Settings
    modele: str | None


@task(name="configuration", cache_policy=NO_CACHE)
def load_configuration(paths: DataPaths, demo: bool) -> Configuration:
    """Settings, RU catalogue and capacities validated before anything runs."""
    from flows.capacites import load_capacites
    from flows.settings import CONFIG_DIR, REFERENCE_DIR, load_settings, pseudo_key
    from flows.target import load_catalogue
    from models.registry import promoted_version

    pseudo_key(allow_demo=demo)  # refuses to run without the pseudonymisation key
    settings = load_settings()
    load_catalogue()
    load_capacites(CONFIG_DIR / "capacites.csv", REFERENCE_DIR / "elsm.csv")
    return Configuration(settings, promoted_version(paths.modeles))


@task(name="ingestion", cache_policy=NO_CACHE, **IO_RETRIES)
def ingest_landing(paths: DataPaths, landing: Path, as_of: date | None, demo: bool):
    from flows.ingest import ingest_paths
    from flows.settings import pseudo_key

    key, _demo = pseudo_key(allow_demo=demo)
    return ingest_paths(paths, landing_files(landing, as_of), key)


@task(name="controles", cache_policy=NO_CACHE)
def check_new_rows(paths: DataPaths, ingestion) -> dict:
    from flows.ingest import check_ingested

    reports = check_ingested(paths, ingestion)
    return {
        "tables": [r.table for r in reports],
        "avertissements": sum(len(r.warnings) for r in reports),
    }


@task(name="date", cache_policy=NO_CACHE)
def night_date(paths: DataPaths) -> date:
    from flows.warehouse import default_as_of, warehouse

    with warehouse(paths, read_only=True) as con:
        return default_as_of(con)


@task(name="construction", cache_policy=NO_CACHE)
def build_arrets(paths: DataPaths, as_of: date, settings: Settings):
    from flows.build import build_at

    return build_at(paths, as_of, settings)


@task(name="ciblage", cache_policy=NO_CACHE)
def target_arrets(paths: DataPaths, as_of: date, settings: Settings):
    from flows.target import target_at

    return target_at(paths, as_of, settings)


@task(name="orientation", cache_policy=NO_CACHE)
def route_dossiers(paths: DataPaths, as_of: date, settings: Settings):
    from flows.route import route_at

    return route_at(paths, as_of, settings)


@task(name="export", cache_policy=NO_CACHE, **IO_RETRIES)
def export_files(paths: DataPaths, as_of: date):
    from flows.export import export_at

    return export_at(paths, as_of)


@task(name="indicateurs", cache_policy=NO_CACHE)
def compute_indicators(paths: DataPaths, as_of: date):
    from flows.indicators import indicators_at

    return indicators_at(paths, as_of)


@task(name="rapport", cache_policy=NO_CACHE, **IO_RETRIES)
def write_report(paths: DataPaths, as_of: date):
    from flows.report import report_at

    return report_at(paths, as_of)


# ----------------------------------------------------------------- the flow


@flow(name=FLOW_NAME, log_prints=False)
def nightly(
    as_of: date | None = None,
    data: str | None = None,
    landing: str | None = None,
    demo: bool = False,
) -> dict:
    """La nuit RU à la date D : de l'ingestion au rapport. Renvoie le manifeste.

    ``demo`` lets the run use the public demonstration key when ``RU_CLE_PSEUDO`` is not
    set (synthetic data only, ``ru demo``).
    """
    paths, arrivee = _data_folder(data, landing)
    run = RunManifest.start(paths, as_of, arrivee)
    run.prefect_flow_run = _flow_run_id()
    config = run.step("configuration", load_configuration, paths, demo)
    run.modele = config.modele
    ingestion = run.step("ingestion", ingest_landing, paths, arrivee, as_of, demo)
    run.step("controles", check_new_rows, paths, ingestion)
    run.as_of = as_of or run.step("date", night_date, paths)
    run.step("construction", build_arrets, paths, run.as_of, config.settings)
    run.step("ciblage", target_arrets, paths, run.as_of, config.settings)
    run.step("orientation", route_dossiers, paths, run.as_of, config.settings)
    run.step("export", export_files, paths, run.as_of)
    run.step("indicateurs", compute_indicators, paths, run.as_of)
    run.step("rapport", write_report, paths, run.as_of)
    return run.finish()


def _data_folder(data: str | None, landing: str | None) -> tuple[DataPaths, Path]:
    from flows.settings import resolve_data_dir

    paths = resolve_data_dir(Path(data) if data else None).ensure()
    return paths, Path(landing) if landing else paths.landing


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


# ----------------------------------------------------------------- running it locally


def local_prefect_settings(paths: DataPaths) -> dict[str, str]:
    """Environment for a local Prefect without a server to start: no analytics, no
    network, Prefect's home (its SQLite database) under the data folder."""
    return {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": os.environ.get("PREFECT_HOME") or str(paths.root / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": os.environ.get(
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"
        ),
    }


def run_night(
    paths: DataPaths, as_of: date | None, landing: Path | None, demo: bool = False
) -> dict:
    """Run the flow once (heartbeats off: a local run needs none); returns the manifest.

    Raises :class:`StepFailed` when a step fails (the manifest is written).
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return nightly(
            as_of=as_of,
            data=str(paths.root),
            landing=str(landing) if landing else None,
            demo=demo,
        )


def run_backfill(
    paths: DataPaths,
    start: date,
    end: date,
    landing: Path | None,
    on_night=None,
    demo: bool = False,
) -> list[dict]:
    """Run the nights of ``[start, end]`` in order, skipping those already done; stops at
    the first failed night (later nights depend on its routing ledger)."""
    manifests = []
    for night in nights_to_run(paths, start, end):
        manifest = run_night(paths, night, landing, demo)
        manifests.append(manifest)
        if on_night is not None:
            on_night(manifest)
    return manifests


def serve(paths: DataPaths, landing: Path | None, cron: str, timezone: str) -> None:
    """Serve the flow as a deployment run every night on ``cron`` (needs a Prefect server:
    ``PREFECT_API_URL``)."""
    from prefect.schedules import Cron

    nightly.serve(
        name="nuit",
        schedule=Cron(cron, timezone=timezone),
        parameters={"data": str(paths.root), "landing": str(landing) if landing else None},
        description="La nuit RU : ingestion, contrôles, arrêts, ciblage, orientation, "
        "exports, indicateurs, rapport.",
    )

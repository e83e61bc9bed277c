"""``ru demo``: the whole nightly pipeline on the committed sample, from a clean clone.

The sample (``data/sample/``) holds monthly history files then one file per night for its
last weeks. The demo replays what a DRSM would have lived through:

1. ingest the history (every file dated before the first demo night);
2. train the chronicity model on that history, four weeks before the last night (promoted
   only if it beats the duration-only baseline);
3. run the nightly Prefect flow for each of the last ``--nuits`` nights, the sample folder
   acting as the landing folder (each night ingests the files dated up to that night).

Every step is idempotent: a second run ingests nothing (same files), retrains the same
version on the same data, skips the nights already done, and so changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import DataOption, fail

DEFAULT_NIGHTS = 14
# The model is trained four weeks before the last night, whatever --nuits: the demo's
# model (and whether it beats the baseline) does not depend on how many nights are replayed.
TRAIN_LEAD_DAYS = 26


@dataclass
class DemoPlan:
    """Which sample files are history and which nights the demo runs."""

    history: list[Path]
    nights_files: list[Path]
    nights: list[dt.date]

    @property
    def first_night(self) -> dt.date:
        return self.nights[0]


@dataclass
class DemoSummary:
    plan: DemoPlan
    cle_demo: bool
    ingestion: dict = field(default_factory=dict)
    modele: dict = field(default_factory=dict)
    nuits: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "historique_fichiers": len(self.plan.history),
            "nuits": [n.isoformat() for n in self.plan.nights],
            "cle_demo": self.cle_demo,
            "ingestion": self.ingestion,
            "modele": self.modele,
            "nuits_executees": self.nuits,
        }


def plan_demo(sample_dir: Path, nights: int) -> DemoPlan:
    """Split the sample into history files and the last ``nights`` calendar nights.

    The last night is the latest extraction date in the file names.
    """
    from flows.ingest import processing_order, source_of

    files = sorted(
        (p for p in sample_dir.iterdir() if p.is_file() and source_of(p.name) is not None),
        key=processing_order,
    )
    dated = [(p, processing_order(p)[0]) for p in files if processing_order(p)[0] != "99999999"]
    if not dated:
        raise ValueError(f"aucune extraction datée dans {sample_dir}")
    last = dt.datetime.strptime(max(d for _, d in dated), "%Y%m%d").date()
    first = last - dt.timedelta(days=nights - 1)
    limit = f"{first:%Y%m%d}"
    history = [p for p, d in dated if d < limit]
    nights_files = [p for p, d in dated if d >= limit]
    return DemoPlan(history, nights_files, [first + dt.timedelta(days=i) for i in range(nights)])


def demo_at(
    paths,
    sample_dir: Path,
    nights: int = DEFAULT_NIGHTS,
    on_night=None,
) -> DemoSummary:
    """Run the demo into ``paths`` (see the module docstring); returns what it did."""
    from flows.console import progress
    from flows.ingest import check_ingested, ingest_paths
    from flows.nightly import run_backfill
    from flows.settings import load_settings, pseudo_key
    from flows.train import train_at

    settings = load_settings()
    key, is_demo = pseudo_key(allow_demo=True)
    plan = plan_demo(sample_dir, nights)
    summary = DemoSummary(plan, is_demo)

    with progress("Ingestion de l'historique de l'échantillon", total=len(plan.history)):
        ingestion = ingest_paths(paths, plan.history, key)
    with progress("Contrôles des lignes ingérées"):
        reports = check_ingested(paths, ingestion)
    summary.ingestion = {
        "fichiers": len(ingestion.fichiers),
        "lignes_lues": ingestion.lignes_lues,
        "lignes_acceptees": ingestion.lignes_acceptees,
        "lignes_quarantaine": ingestion.lignes_quarantaine,
        "regles": ingestion.regles(),
        "controles": [r.table for r in reports],
    }

    train_day = min(
        plan.first_night - dt.timedelta(days=1),
        plan.nights[-1] - dt.timedelta(days=TRAIN_LEAD_DAYS),
    )
    already = trained_on(paths, train_day)
    if already is not None:
        summary.modele = already
    else:
        with progress(f"Entraînement du modèle de chronicité au {train_day:%d/%m/%Y}"):
            trained = train_at(paths, train_day, settings)
        summary.modele = {
            "version": trained.version,
            "promu": trained.promu,
            "motif": trained.motif,
            "version_promue": trained.version_promue,
        }

    landing = stage_landing(paths, plan.nights_files)
    summary.nuits = run_backfill(
        paths, plan.first_night, plan.nights[-1], landing, on_night=on_night, demo=True
    )
    return summary


def trained_on(paths, day: dt.date) -> dict | None:
    """The model version already trained at ``day`` by an earlier demo, if any.

    Versions are named ``AAAAMMJJ-<fingerprint>``: the same date on the same data gives the
    same version, so a second demo keeps it instead of retraining.
    """
    import json

    from models.registry import model_root, promoted_version

    root = model_root(paths.modeles)
    for folder in sorted(root.glob(f"{day:%Y%m%d}-*")) if root.is_dir() else []:
        meta_path = folder / "metadata.json"
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        promoted = promoted_version(paths.modeles)
        return {
            "version": folder.name,
            "promu": promoted == folder.name,
            "motif": "déjà entraîné à cette date sur ces données : conservé",
            "version_promue": promoted,
            "metriques": meta.get("metriques"),
        }
    return None


def stage_landing(paths, files: list[Path]) -> Path:
    """Put the nights' extracts in the data folder's landing folder, as the caisses would.

    Each night then ingests the files dated up to that night (``flows.nightly.landing_files``).
    Files already there with the same size are left alone.
    """
    import shutil

    landing = paths.landing
    landing.mkdir(parents=True, exist_ok=True)
    for src in files:
        dst = landing / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)
    return landing


def demo(
    data: DataOption = None,
    nuits: Annotated[
        int,
        typer.Option(
            "--nuits",
            min=1,
            max=28,
            help="Nombre de nuits rejouées à la fin de l'échantillon (les précédentes forment "
            "l'historique).",
        ),
    ] = DEFAULT_NIGHTS,
    echantillon: Annotated[
        Path | None,
        typer.Option(
            "--echantillon",
            help="Dossier des extractions d'exemple (défaut : data/sample/ du dépôt).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Exécute tout le pipeline de nuit sur l'échantillon data/sample/.

    Ingère l'historique, entraîne le modèle, puis rejoue les dernières nuits (flux Prefect
    local, sans serveur à démarrer) : contrôles, arrêts, ciblage, orientation, exports par
    ELSM, indicateurs et rapport. Utilise la clé de pseudonymisation de démonstration si
    RU_CLE_PSEUDO n'est pas définie. Relancer la démo ne change rien.

    Exemple : `uv run ru demo` puis ouvrir le rapport indiqué à la fin.
    """
    from flows.console import console, out
    from flows.nightly_cli import _prefect_environment
    from flows.settings import SAMPLE_DIR, resolve_data_dir

    sample_dir = echantillon or SAMPLE_DIR
    if not sample_dir.is_dir():
        fail(f"dossier d'échantillon introuvable : {sample_dir}")
    paths = resolve_data_dir(data).ensure()
    _prefect_environment(paths)

    from flows.nightly import StepFailed
    from flows.settings import PSEUDO_KEY_ENV, pseudo_key

    if pseudo_key(allow_demo=True)[1]:
        console.print(
            f"[yellow]Clé de pseudonymisation de démonstration[/] ({PSEUDO_KEY_ENV} non "
            "définie) : réservée aux données synthétiques."
        )
    out.print(f"Données : {paths.root}")

    def night_done(manifest: dict) -> None:
        out.print(f"Nuit du {manifest['as_of']} : réussie ({manifest['duree_s']:.1f} s)")

    try:
        summary = demo_at(paths, sample_dir, nuits, on_night=night_done)
    except StepFailed as exc:
        fail(f"la démo s'est arrêtée : {exc}. Manifeste : {exc.manifest}")
    except (ValueError, RuntimeError) as exc:
        fail(f"la démo s'est arrêtée : {exc}")

    last = summary.plan.nights[-1]
    ing = summary.ingestion
    out.print(
        f"Historique : {ing['fichiers']} fichier(s), {ing['lignes_acceptees']} ligne(s) "
        f"acceptée(s), {ing['lignes_quarantaine']} en quarantaine."
    )
    model = summary.modele
    state = "promu" if model["promu"] else "non promu"
    out.print(f"Modèle {model['version']} : {state} ({model['motif']}).")
    out.print(
        f"Nuits rejouées : {len(summary.nuits)} (déjà faites : "
        f"{len(summary.plan.nights) - len(summary.nuits)})."
    )
    report = paths.rapports / f"rapport_{last:%Y%m%d}.html"
    out.print(f"[bold]Rapport :[/] {report}")
    exports = paths.exports / f"{last:%Y-%m-%d}"
    for folder in sorted(p for p in exports.iterdir() if p.is_dir()) if exports.is_dir() else []:
        out.print(f"[bold]Exports ELSM {folder.name} :[/] {folder}")

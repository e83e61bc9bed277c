"""``ru train``: train, evaluate and (if it beats the baseline) promote the chronicity model.

Builds the point-in-time snapshots of the arrêts at past dates S with the same code path as
``ru build`` (``transforms.snapshots.arrets_en_cours_snapshots``: the build's models, each
snapshot seeing only the lines and actions visible at S, run on the assurés that changed
since the previous date) and the arrêts at D for the labels, then fits and evaluates the model
(``models/training.py``), saves the version (skops + metadata + model card) and moves the
``promu.json`` pointer only when the model beats the duration-only baseline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli_common import DataOption, as_of_option, fail
from flows.settings import CONFIG_DIR, DataPaths, Settings

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from models.training import TrainParams

log = logging.getLogger("ru.train")
MODEL_CONFIG = CONFIG_DIR / "modele_chronicite.yml"


class TrainError(RuntimeError):
    """Training cannot run (no data, history too short); the message says what to do."""


def load_train_params(path: Path = MODEL_CONFIG) -> TrainParams:
    """Read and validate ``config/modele_chronicite.yml``."""
    import yaml

    from models.training import TrainingError, parse_train_params

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TrainingError(f"paramètres du modèle introuvables : {path}") from exc
    except yaml.YAMLError as exc:
        raise TrainingError(f"{Path(path).name} : YAML invalide ({exc})") from exc
    return parse_train_params(raw or {}, Path(path).name)


@dataclass
class TrainSummary:
    """What ``ru train`` did: the version, its metrics against the baseline, the verdict."""

    as_of: dt.date
    version: str = ""
    promu: bool = False
    motif: str = ""
    version_promue: str | None = None
    dates_observation: int = 0
    lignes: int = 0
    lignes_entrainement: int = 0
    lignes_validation: int = 0
    metriques: dict[str, float] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    dossier: str = ""
    durees_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def training_frames(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    settings: Settings,
    params: TrainParams,
    ref_elsm: pl.DataFrame,
    reuse_stored: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame, list[dt.date]]:
    """The arrêts at every snapshot date S (stacked) and at D, computed point in time from
    the warehouse's ``lignes_ij`` and ``actions`` (read only; nothing is written).

    Computed snapshots hold the training population only (``MAL`` arrêts en cours of
    ``duree_min`` to ``duree_max`` days at S) and the arrêts at D those of their assurés, as
    ``ru build`` computes them at each date (``transforms.snapshots``: the same models, run
    at each date on the assurés whose lines changed since the previous one). With
    ``reuse_stored``, the dates whose arrêts ``ru build`` already stored in the table
    ``arrets`` (a nightly run at S) are read from it instead (every row of the date).
    """
    import polars as pl

    from flows.build import build_params
    from flows.warehouse import table_exists
    from models.features import eligible_condition
    from models.training import snapshot_dates
    from transforms.snapshots import arrets_en_cours_snapshots

    row = con.execute(
        "select min(FLX_DIS_DTD) from lignes_ij where FLX_DIS_DTD <= $d", {"d": as_of}
    ).fetchone()
    if row is None or row[0] is None:
        raise TrainError(f"aucune ligne d'IJ visible au {as_of:%d/%m/%Y} : lancez `ru ingest`.")
    dates = snapshot_dates(row[0], as_of, params)
    if len(dates) < 2:
        raise TrainError(
            f"historique trop court pour entraîner au {as_of:%d/%m/%Y} : données depuis le "
            f"{row[0]:%d/%m/%Y}, il faut au moins {params.historique_min_jours} jours "
            f"d'historique plus {params.seuil_chronique_jours - params.duree_min} jours de recul "
            "et deux dates d'observation."
        )
    parts, at_d = [], None
    wanted = list(dates)
    if reuse_stored and table_exists(con, "arrets"):
        stored = con.sql(
            "select * from arrets where list_contains($dates, as_of)",
            params={"dates": [*dates, as_of]},
        ).pl()
        if not stored.is_empty():
            found = set(stored["as_of"].unique().to_list())
            log.info("%d photographie(s) lue(s) dans la table arrets", len(found))
            wanted = [d for d in dates if d not in found]
            parts.append(stored.filter(pl.col("as_of") != as_of))
            if as_of in found:
                at_d = stored.filter(pl.col("as_of") == as_of)
    schema = parts[0].schema if parts else None
    keep = eligible_condition(params.duree_min, params.duree_max)
    # Only the training rows and, at D, the arrêts of their assurés (for the labels) are
    # computed: the models run on the assurés that changed since the previous date.
    seen = parts[0].filter(keep)["assure_id"].unique().to_list() if parts and at_d is None else []
    if wanted or at_d is None:
        computed = arrets_en_cours_snapshots(
            con,
            build_params(as_of, settings),
            wanted,
            ref_elsm,
            final=None if at_d is not None else as_of,
            final_assures=seen,
            keep=keep,
        )
        log.info("photographies calculées : %s s", computed.durations)
        if wanted:
            rows = computed.en_cours
            if schema is not None:  # same types as the stored table, which scoring reads
                rows = rows.select(pl.col(c).cast(t) for c, t in schema.items())
            parts.append(rows)
        if at_d is None:
            at_d = computed.final
    snapshots = pl.concat(parts, how="vertical")
    return snapshots, at_d, dates


def train_at(
    paths: DataPaths,
    as_of: dt.date,
    settings: Settings,
    params: TrainParams | None = None,
) -> TrainSummary:
    """Train at ``as_of``, save the version, promote it if it beats the baseline."""
    from flows.build import configure, load_ref_elsm
    from flows.warehouse import WarehouseError, table_exists, warehouse
    from models.card import model_card
    from models.registry import promote, promoted_version, save_version
    from models.training import metadata_of, snapshot_step, training_rows
    from models.training import train as fit_and_evaluate

    start = time.perf_counter()
    params = params or load_train_params()
    summary = TrainSummary(as_of=as_of)
    if not paths.warehouse.exists():
        raise WarehouseError(
            f"entrepôt introuvable : {paths.warehouse}. Lancez d'abord `ru ingest`."
        )
    with warehouse(paths) as con:
        for table in ("lignes_ij", "actions"):
            if not table_exists(con, table):
                raise TrainError(f"table {table} absente : lancez d'abord `ru ingest`.")
        configure(con, paths, "6GB")
        lines = con.execute(
            "select count(*) from lignes_ij where FLX_DIS_DTD <= $d", {"d": as_of}
        ).fetchall()[0][0]
        step = snapshot_step(params, lines)
        if step != params.pas_snapshots_jours:
            log.info(
                "%d lignes visibles : une photographie tous les %d jours (au lieu de %d)",
                lines,
                step,
                params.pas_snapshots_jours,
            )
            # The effective step is the one recorded with the model (metadata, card).
            params = replace(params, pas_snapshots_jours=step)
        snapshots, at_d, dates = training_frames(
            con, as_of, settings, params, load_ref_elsm(), reuse_stored=params.reutiliser_arrets
        )
    summary.dates_observation = len(dates)
    summary.durees_s["photographies"] = round(time.perf_counter() - start, 3)

    t0 = time.perf_counter()
    rows = training_rows(snapshots, at_d, as_of, params)
    result = fit_and_evaluate(rows, params)
    summary.durees_s["entrainement"] = round(time.perf_counter() - t0, 3)

    # Same date, same data, same parameters → same version (a re-run replaces it).
    recipe = json.dumps(asdict(params), sort_keys=True, default=str) + result.empreinte
    version = f"{as_of:%Y%m%d}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"
    previous = promoted_version(paths.modeles)
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    motif = result.motif
    if not result.promouvable:
        motif += (
            f" ; le modèle promu reste {previous}"
            if previous and previous != version
            else " ; aucun modèle promu : ciblage sur les seules règles"
        )
    metadata = metadata_of(
        result, params, as_of, version, created, result.promouvable, motif, previous
    )
    folder = save_version(paths.modeles, version, result.pipeline, metadata, model_card(metadata))
    if result.promouvable:
        promote(paths.modeles, version, result.motif, created)
    summary.version = version
    summary.promu = result.promouvable
    summary.motif = motif
    summary.version_promue = version if result.promouvable else previous
    summary.lignes = result.lignes
    summary.lignes_entrainement = result.split.train.height
    summary.lignes_validation = result.split.valid.height
    summary.metriques = result.modele.as_dict()
    summary.reference = result.reference.as_dict()
    summary.dossier = str(folder)
    summary.durees_s["total"] = round(time.perf_counter() - start, 3)
    return summary


TrainAsOfOption = as_of_option(
    "Date d'arrêté d'entraînement D (AAAA-MM-JJ) : rien de postérieur n'est lu. "
    "Par défaut : la dernière date de mise à disposition ingérée."
)


def train(
    as_of: TrainAsOfOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Affiche le résumé en JSON.")] = False,
    data: DataOption = None,
) -> None:
    """Entraîne le modèle de chronicité et le promeut s'il bat la référence « durée seule ».

    Photographies des arrêts tous les 14 jours (même calcul que `ru build`), étiquette
    « atteint 180 jours » connue à D, validation sur les dates les plus récentes. Le modèle est
    enregistré sous modeles/chronicite/<version>/ (model.skops, metadata.json,
    carte_modele.md) ; il n'est promu que s'il bat la référence, sinon le modèle promu reste.
    """

    from flows.console import out
    from flows.settings import ConfigError, load_settings, resolve_data_dir
    from flows.warehouse import WarehouseError, default_as_of, warehouse
    from models.registry import ModelError
    from models.training import TrainingError

    try:
        settings = load_settings()
        paths = resolve_data_dir(data, settings)
        if as_of is None:
            with warehouse(paths, read_only=True) as con:
                day = default_as_of(con)
        else:
            day = as_of.date()
        summary = train_at(paths, day, settings)
    except (ConfigError, WarehouseError, TrainError, TrainingError, ModelError) as exc:
        fail(str(exc))
    if json_output:
        out.print_json(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    m, b = summary.metriques, summary.reference
    out.print(
        f"Modèle de chronicité {summary.version} : {summary.dates_observation} dates "
        f"d'observation, {summary.lignes_entrainement} lignes d'entraînement, "
        f"{summary.lignes_validation} de validation."
    )
    out.print(
        f"Validation — modèle : AUC {m['roc_auc']:.3f}, précision moyenne "
        f"{m['average_precision']:.3f}, Brier {m['brier']:.4f}, lift 10 % {m['lift_top10']:.2f}"
    )
    out.print(
        f"Validation — durée seule : AUC {b['roc_auc']:.3f}, précision moyenne "
        f"{b['average_precision']:.3f}, Brier {b['brier']:.4f}, lift 10 % {b['lift_top10']:.2f}"
    )
    verdict = "[green]promu[/]" if summary.promu else "[yellow]non promu[/]"
    out.print(f"{verdict} : {summary.motif}")
    out.print(f"Carte du modèle : {summary.dossier}/carte_modele.md")

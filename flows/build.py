"""``ru build``: the arrêts and their features at D, stored in the warehouse.

Reads ``lignes_ij`` and ``actions`` (what ``ru ingest`` wrote) and the ELSM reference
(``config/reference/elsm.csv``), runs the models of ``transforms/`` at D (see
``transforms/runner.py``), then replaces D's rows of ``arrets`` and ``prescripteurs`` in one
transaction, after their data checks passed (a failed check leaves the previous rows).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli_common import AsOfOption, DataOption, fail
from flows.settings import REFERENCE_DIR, DataPaths, Settings

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from transforms.runner import BuildParams

log = logging.getLogger("ru.build")

TABLES = ("arrets", "prescripteurs")
# DuckDB on the nightly machine: leave room for Python, Polars and the OS.
MEMORY_LIMIT = "6GB"


class BuildError(RuntimeError):
    """The build cannot run (no data, bad reference); the message says what to do."""


@dataclass
class BuildSummary:
    """What ``ru build`` did for one date (counts of rows, durations in seconds)."""

    as_of: dt.date
    lignes_visibles: int = 0
    lignes_perimetre: int = 0
    hors_perimetre: dict[str, int] = field(default_factory=dict)
    actions_visibles: int = 0
    arrets: int = 0
    arrets_en_cours: int = 0
    prescripteurs: int = 0
    prescripteurs_atypiques: int = 0
    controles: str = "non exécutés"
    durees_s: dict[str, float] = field(default_factory=dict)
    duree_s: float = 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def load_ref_elsm(path: Path = REFERENCE_DIR / "elsm.csv") -> pl.DataFrame:
    """The ELSM reference: one row per ``code_organisme`` with its ``elsm`` and ``drsm``."""
    import polars as pl

    try:
        frame = pl.read_csv(path, separator=";", infer_schema=False, encoding="utf8")
    except FileNotFoundError as exc:
        raise BuildError(f"référentiel des ELSM introuvable : {path}") from exc
    frame = frame.rename({c: c.strip() for c in frame.columns})
    missing = {"code_organisme", "elsm", "drsm"} - set(frame.columns)
    if missing:
        raise BuildError(f"{path.name} : colonne(s) manquante(s) {sorted(missing)}")
    frame = frame.select(
        pl.col(c).str.strip_chars() for c in ("code_organisme", "elsm", "drsm")
    ).unique("code_organisme", keep="first", maintain_order=True)
    return frame


def build_params(as_of: dt.date, settings: Settings) -> BuildParams:
    """The bound parameters of the arrêts models at ``as_of`` from the settings."""
    from transforms.runner import BuildParams

    a, p = settings.arrets, settings.prescripteurs
    return BuildParams(
        as_of=as_of,
        rgo_asu_nat=settings.perimetre.rgo_asu_nat,
        prs_nat_ref=settings.perimetre.prs_nat_ref,
        ecart_max_jours=a.ecart_max_jours,
        fenetre_historique_jours=a.fenetre_historique_jours,
        fenetre_ij_3ans_jours=a.fenetre_ij_3ans_jours,
        fenetre_arrets_12m_jours=a.fenetre_arrets_12m_jours,
        fenetre_arrets_courts_jours=a.fenetre_arrets_courts_jours,
        duree_arret_court_max_jours=a.duree_arret_court_max_jours,
        fenetre_prescripteurs_jours=p.fenetre_jours,
        patients_min=p.patients_min,
        ratio_atypique=p.ratio_atypique,
    )


def configure(con: duckdb.DuckDBPyConnection, paths: DataPaths, memory_limit: str) -> None:
    """DuckDB resources for a build: a memory cap, spilling under the data folder, every core,
    no insertion-order guarantee (none of the models needs it)."""
    spill = paths.root / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute(f"set temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")
    con.execute("set preserve_insertion_order = false")


def _count(rel, where: str | None = None) -> int:
    query = rel.filter(where) if where else rel
    return int(query.aggregate("count(*)").fetchall()[0][0])


def build_at(
    paths: DataPaths,
    as_of: dt.date,
    settings: Settings,
    *,
    checks: bool = True,
    memory_limit: str = MEMORY_LIMIT,
) -> BuildSummary:
    """Build ``arrets`` and ``prescripteurs`` at ``as_of`` and replace that date's rows.

    The rows are inserted, checked (``fail``-level rules) and committed in one transaction:
    a failed check raises ``flows.checks.ChecksFailed`` and leaves the previous rows of D.
    """
    from expectations.contract import load_contract
    from flows.warehouse import WarehouseError, table_exists, warehouse
    from transforms.runner import SCRATCH, arrets_at

    start = time.perf_counter()
    summary = BuildSummary(as_of=as_of)
    params = build_params(as_of, settings)
    ref_elsm = load_ref_elsm()
    if not paths.warehouse.exists():
        raise WarehouseError(
            f"entrepôt introuvable : {paths.warehouse}. Lancez d'abord `ru ingest` avec le "
            "même --data."
        )
    with warehouse(paths) as con:
        for table in ("lignes_ij", "actions"):
            if not table_exists(con, table):
                con.execute(load_contract(table).ddl())
        for table in TABLES:
            con.execute(load_contract(table).ddl())
        configure(con, paths, memory_limit)
        with arrets_at(con, params, ref_elsm) as result:
            summary.durees_s.update({k: round(v, 3) for k, v in result.run.durations.items()})
            stg = result.run["stg_lignes_ij"]
            summary.lignes_visibles = _count(stg)
            summary.lignes_perimetre = _count(stg, "en_perimetre")
            summary.actions_visibles = _count(result.run["stg_actions"])
            summary.hors_perimetre = {
                f"{rgo}/{prs}": int(n) for rgo, prs, n in result.hors_perimetre.fetchall()
            }
            t0 = time.perf_counter()
            con.execute("begin transaction")
            try:
                for table in TABLES:
                    rel = f"{SCRATCH}.main.{table}"
                    con.execute(f"delete from {table} where as_of = $as_of", {"as_of": as_of})
                    con.execute(f"insert into {table} by name select * from {rel}")
                summary.durees_s["stockage"] = round(time.perf_counter() - t0, 3)
                if checks:
                    t0 = time.perf_counter()
                    from flows.checks import check_date

                    summary.controles = check_date(con, paths, TABLES, as_of)
                    summary.durees_s["controles"] = round(time.perf_counter() - t0, 3)
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        counts = con.execute(
            "select count(*), count(*) filter (where en_cours) from arrets where as_of = $d",
            {"d": as_of},
        ).fetchall()[0]
        summary.arrets, summary.arrets_en_cours = int(counts[0]), int(counts[1])
        counts = con.execute(
            "select count(*), count(*) filter (where atypique) from prescripteurs where as_of = $d",
            {"d": as_of},
        ).fetchall()[0]
        summary.prescripteurs, summary.prescripteurs_atypiques = int(counts[0]), int(counts[1])
    summary.duree_s = round(time.perf_counter() - start, 3)
    if summary.lignes_visibles == 0:
        log.warning("aucune ligne visible au %s : tables vides pour cette date", as_of)
    return summary


def build(
    as_of: AsOfOption = None,
    sans_controles: Annotated[
        bool, typer.Option("--sans-controles", help="Ne lance pas les contrôles de données.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Affiche le résumé en JSON.")] = False,
    data: DataOption = None,
) -> None:
    """Reconstitue les arrêts et leurs indicateurs à la date D (tables arrets, prescripteurs).

    Ne lit que les lignes et actions mises à disposition au plus tard à D (dernière version
    de chaque ligne). Reconstruire une date remplace ses lignes ; les autres dates restent.
    """
    import json

    from flows.checks import ChecksFailed
    from flows.console import out
    from flows.settings import ConfigError, load_settings, resolve_data_dir
    from flows.warehouse import WarehouseError, default_as_of, warehouse

    try:
        settings = load_settings()
        paths = resolve_data_dir(data, settings)
        if as_of is None:
            with warehouse(paths, read_only=True) as con:
                day = default_as_of(con)
        else:
            day = as_of.date()
        summary = build_at(paths, day, settings, checks=not sans_controles)
    except (ConfigError, WarehouseError, BuildError) as exc:
        fail(str(exc))
    except ChecksFailed as exc:
        fail(f"{exc} — les tables de la date {day:%d/%m/%Y} n'ont pas été modifiées.")
    if json_output:
        out.print_json(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    out.print(
        f"Arrêts au {summary.as_of:%d/%m/%Y} : {summary.arrets} arrêt(s) dont "
        f"{summary.arrets_en_cours} en cours ; {summary.prescripteurs} prescripteur(s) dont "
        f"{summary.prescripteurs_atypiques} atypique(s)."
    )
    out.print(
        f"Lignes visibles : {summary.lignes_visibles} dont {summary.lignes_perimetre} dans le "
        f"périmètre ; actions visibles : {summary.actions_visibles}."
    )
    if summary.hors_perimetre:
        out.print(
            "Hors périmètre (RGO_ASU_NAT/PRS_NAT_REF) : "
            + ", ".join(f"{k} : {v}" for k, v in summary.hors_perimetre.items())
        )
    out.print(f"Contrôles : {summary.controles} ; durée {summary.duree_s:.1f} s")

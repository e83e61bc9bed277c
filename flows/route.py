"""``ru route``: orient the night's targeted dossiers to the actors' queues (spec §5).

Reads ``ciblage`` at D, the capacities (``config/capacites.csv``) and the ledger rows of D's
ISO week, runs :func:`transforms.marts.routage.route`, and replaces D's rows of the ledger
``routage`` in one transaction. Re-running a night replaces its allocations, never adds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from flows.cli_common import AsOfOption, DataOption, fail
from flows.console import out
from flows.settings import ConfigError, DataPaths, Settings, load_settings, resolve_data_dir
from flows.warehouse import WarehouseError, default_as_of, record_step, step_done, warehouse

if TYPE_CHECKING:
    import duckdb
    import polars as pl

log = logging.getLogger("ru.route")

_LEDGER_COLUMNS = "dossier_id, as_of, semaine_iso, elsm, acteur, statut"


@dataclass
class RouteSummary:
    """Counts of one routing night."""

    as_of: date
    semaine_iso: str
    candidats: int
    affectes: int
    non_affectes: int
    deja_affectes: int
    sans_elsm: int = 0
    par_acteur: dict[str, int] = field(default_factory=dict)
    attente_par_motif: dict[str, int] = field(default_factory=dict)
    elsm_sans_capacite: list[str] = field(default_factory=list)
    # One dict per (elsm, acteur) with a capacity: capacite, affectes_nuit,
    # affectes_semaine, reste (see transforms.marts.routage.occupation).
    files: list[dict] = field(default_factory=list)
    controles: str = ""
    duree_s: float = 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the table exists (fetches the whole result: DuckDB 2 refuses new work on a
    connection with a half-read ``execute`` result, as ``table_exists``' ``fetchone`` leaves).
    """
    rows = con.sql(
        "select count(*) from information_schema.tables where table_name = $name",
        params={"name": name},
    ).fetchall()
    return bool(rows[0][0])


def _capacity_frame(capacites) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        capacites.rows(),
        schema={"elsm": pl.String, "acteur": pl.String, "dossiers_par_semaine": pl.Int64},
    )


def _read_ledger(con: duckdb.DuckDBPyConnection, week: str, as_of: date) -> pl.DataFrame:
    """The ledger rows of ``week`` from nights other than ``as_of`` (empty before any run)."""
    import polars as pl

    from transforms.marts.routage import ROUTAGE_SCHEMA

    if not has_table(con, "routage"):
        cols = [c.strip() for c in _LEDGER_COLUMNS.split(",")]
        return pl.DataFrame(schema={c: ROUTAGE_SCHEMA[c] for c in cols})
    return con.sql(
        f"select {_LEDGER_COLUMNS} from routage where semaine_iso = $semaine and as_of <> $as_of",
        params={"semaine": week, "as_of": as_of},
    ).pl()


def _write_night(con: duckdb.DuckDBPyConnection, routage: pl.DataFrame, as_of: date) -> None:
    """Replace the night's rows of the ledger in one transaction."""
    from expectations.contract import load_contract

    con.execute(load_contract("routage").ddl())
    con.register("routage_nuit", routage)
    try:
        con.execute("begin transaction")
        con.execute("delete from routage where as_of = $as_of", {"as_of": as_of})
        con.execute("insert into routage by name select * from routage_nuit")
        record_step(con, "orientation", as_of, routage.height)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("routage_nuit")


def _run_checks(con: duckdb.DuckDBPyConnection, paths: DataPaths, as_of: date) -> str:
    """Data checks of the night's rows (contract ``routage.yml``); a ``fail``-level breach
    raises ``flows.checks.ChecksFailed`` (the rows stay written, the run stops)."""
    from flows.checks import check_table

    report = check_table(
        con,
        "routage",
        paths,
        where="as_of = $as_of",
        params={"as_of": as_of},
        label=f"routage au {as_of:%d/%m/%Y}",
    )
    return "ok" if not report.warnings else f"{len(report.warnings)} alerte(s)"


def route_at(
    paths: DataPaths,
    as_of: date,
    settings: Settings | None = None,
    *,
    capacites_file: Path | None = None,
) -> RouteSummary:
    """Route the dossiers targeted at ``as_of`` and store them in the ledger ``routage``.

    Capacities come from ``capacites.csv`` next to the settings file (``config/``), or
    ``capacites_file``; ELSM codes are validated against ``reference/elsm.csv`` there.
    """
    import polars as pl

    from flows.capacites import load_capacites
    from transforms.marts.routage import (
        NON_AFFECTE,
        PAS_DE_CAPACITE,
        occupation,
        route,
        semaine_iso,
    )

    started = time.perf_counter()
    settings = settings or load_settings()
    config_dir = Path(settings.source).parent
    capacites = load_capacites(
        capacites_file or config_dir / "capacites.csv", config_dir / "reference" / "elsm.csv"
    )
    week = semaine_iso(as_of)
    with warehouse(paths) as con:
        if not has_table(con, "ciblage"):
            raise WarehouseError("table ciblage absente : lancez d'abord `ru target`.")
        ciblage = con.sql(
            "select * from ciblage where as_of = $as_of", params={"as_of": as_of}
        ).pl()
        if ciblage.is_empty() and not step_done(con, "ciblage", as_of):
            raise WarehouseError(
                f"aucun ciblage au {as_of:%d/%m/%Y} : lancez d'abord `ru target --as-of {as_of}`."
            )
        ledger = _read_ledger(con, week, as_of)
        capacity = _capacity_frame(capacites)
        result = route(ciblage, capacity, ledger, as_of)
        _write_night(con, result.routage, as_of)
        controles = _run_checks(con, paths, as_of)

    routage = result.routage
    sans_capacite = sorted(
        routage.filter(pl.col("motif") == PAS_DE_CAPACITE).get_column("elsm").unique().to_list()
    )
    for elsm in sans_capacite:
        n = routage.filter(pl.col("elsm") == elsm).height
        log.warning(
            "ELSM %s : aucune capacité dans %s, ses %d dossier(s) restent en attente "
            "(motif pas_de_capacite)",
            elsm,
            capacites.source.name,
            n,
        )
    if result.deja_affectes.height:
        log.info(
            "%d dossier(s) déjà affecté(s) une autre nuit de la semaine %s : non réorientés",
            result.deja_affectes.height,
            week,
        )
    if result.sans_elsm.height:
        log.warning(
            "%d dossier(s) ciblé(s) sans ELSM (organisme absent du référentiel) : non orientés "
            "(arrêts %s)",
            result.sans_elsm.height,
            ", ".join(result.sans_elsm.get_column("arret_id").head(5).to_list()),
        )
    affectes = routage.filter(pl.col("statut") != NON_AFFECTE)
    attente = routage.filter(pl.col("statut") == NON_AFFECTE)
    return RouteSummary(
        as_of=as_of,
        semaine_iso=week,
        candidats=routage.height + result.deja_affectes.height + result.sans_elsm.height,
        affectes=affectes.height,
        non_affectes=attente.height,
        deja_affectes=result.deja_affectes.height,
        sans_elsm=result.sans_elsm.height,
        par_acteur=dict(sorted(affectes.get_column("acteur").value_counts().iter_rows())),
        attente_par_motif=dict(sorted(attente.get_column("motif").value_counts().iter_rows())),
        elsm_sans_capacite=sans_capacite,
        files=occupation(capacity, ledger, routage, as_of).to_dicts(),
        controles=controles,
        duree_s=round(time.perf_counter() - started, 3),
    )


def route_cmd(
    as_of: AsOfOption = None,
    data: DataOption = None,
) -> None:
    """Oriente les dossiers ciblés à la date D vers les files (TECH, CSAM, ISM, MC).

    Chaque dossier va à l'acteur de son code RU si sa file a encore de la capacité cette
    semaine, sinon à l'acteur de repli, sinon en attente (motif capacite_atteinte). Les
    capacités hebdomadaires sont dans config/capacites.csv. Relancer une nuit remplace ses
    orientations.
    """
    from flows.checks import ChecksFailed

    paths = resolve_data_dir(data)
    try:
        if as_of is None:
            with warehouse(paths, read_only=True) as con:
                day = default_as_of(con)
        else:
            day = as_of.date()
        summary = route_at(paths, day)
    except (ChecksFailed, ConfigError, WarehouseError) as exc:
        fail(str(exc))
    out.print(
        f"Orientation du {summary.as_of:%d/%m/%Y} (semaine {summary.semaine_iso}) : "
        f"{summary.candidats} dossier(s) candidat(s), {summary.affectes} affecté(s), "
        f"{summary.non_affectes} en attente, {summary.deja_affectes} déjà affecté(s) "
        "cette semaine."
    )
    if summary.files:
        from rich.table import Table

        table = Table(title=f"Files de la semaine {summary.semaine_iso}")
        for title in ("ELSM", "acteur", "affectés cette nuit", "affectés la semaine", "capacité"):
            table.add_column(title, justify="left" if title in ("ELSM", "acteur") else "right")
        for row in summary.files:
            full = row["reste"] == 0
            table.add_row(
                row["elsm"],
                row["acteur"],
                str(row["affectes_nuit"]),
                f"[yellow]{row['affectes_semaine']}[/]" if full else str(row["affectes_semaine"]),
                str(row["capacite"]),
            )
        out.print(table)
    for motif, n in summary.attente_par_motif.items():
        out.print(f"En attente ({motif}) : {n}")
    if summary.elsm_sans_capacite:
        out.print(
            "[yellow]Attention :[/] ELSM sans capacité déclarée : "
            + ", ".join(summary.elsm_sans_capacite)
        )

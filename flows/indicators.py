"""``ru indicators``: the steering indicators F1, P4, PDP coverage and the volumes, at D.

Runs the models ``transforms/marts/indicateurs_f1.sql``, ``indicateurs_p4.sql``,
``indicateurs_pdp.sql`` and ``volumes.sql`` on the warehouse (tables ``routage``, ``actions``,
``arrets`` at D, plus the weekly capacities of ``config/capacites.csv``) and stores their
rows with ``as_of = D`` in the tables of the same names, replacing that date's rows in one
transaction. Numerators and denominators are stored, not only the ratios.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from flows.cli_common import AsOfOption, DataOption, fail
from flows.settings import CONFIG_DIR, REFERENCE_DIR, REPO_ROOT, DataPaths

if TYPE_CHECKING:
    import duckdb

MARTS_DIR = REPO_ROOT / "transforms" / "marts"
TABLES = ("indicateurs_f1", "indicateurs_p4", "indicateurs_pdp", "volumes")
INPUTS = {
    "routage": "ru route",
    "actions": "ru ingest",
    "arrets": "ru build",
}


class IndicatorsError(RuntimeError):
    """An input is missing; the French message says which command to run."""


@dataclass(frozen=True)
class IndicateursParams:
    """Windows and thresholds of spec §7 (and the history kept per night).

    ``fenetre_action_jours``: F1 counts an action effective up to D + this many days;
    ``delai_provisoire_jours``: an F1 month is provisional until its last day + this;
    ``fenetre_reprise_jours``: P4 counts an arrêt ended by the first action + this;
    ``decalage_p4_mois``: P4 is published for months up to month(D) − this;
    ``seuil_pdp_jours_ij``: PDP coverage looks at arrêts with at least this many IJ days;
    ``historique_mois`` / ``historique_semaines``: months (F1, P4) and ISO weeks (volumes)
    recomputed and stored each night.
    """

    fenetre_action_jours: int = 30
    delai_provisoire_jours: int = 30
    fenetre_reprise_jours: int = 90
    decalage_p4_mois: int = 3
    seuil_pdp_jours_ij: int = 426
    historique_mois: int = 13
    historique_semaines: int = 26

    def for_model(self, table: str, as_of: date) -> dict:
        """The bound parameters of one model (DuckDB refuses unused ones)."""
        values = {
            "indicateurs_f1": {
                "fenetre_action_jours": self.fenetre_action_jours,
                "delai_provisoire_jours": self.delai_provisoire_jours,
                "historique_mois": self.historique_mois,
            },
            "indicateurs_p4": {
                "fenetre_reprise_jours": self.fenetre_reprise_jours,
                "decalage_mois": self.decalage_p4_mois,
                "historique_mois": self.historique_mois,
            },
            "indicateurs_pdp": {"seuil_jours_ij": self.seuil_pdp_jours_ij},
            "volumes": {"historique_semaines": self.historique_semaines},
        }[table]
        return {"as_of": as_of, **values}


@dataclass
class IndicatorsSummary:
    """What one indicators run wrote: rows per table and the national figures at D."""

    as_of: date
    lignes: dict[str, int] = field(default_factory=dict)
    f1_dernier_mois_definitif: str | None = None
    f1_national: float | None = None
    p4_dernier_mois: str | None = None
    p4_national: float | None = None
    pdp_national: float | None = None
    controles: str = "non exécutés"
    duree_s: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        return out


_INCLUDE = re.compile(r"^-- include: (\w+)$", re.MULTILINE)


def model_sql(table: str) -> str:
    """The text of ``transforms/marts/<table>.sql``, each line ``-- include: <name>`` replaced
    by ``transforms/marts/include/<name>.sql`` (CTEs shared by several indicators)."""
    text = (MARTS_DIR / f"{table}.sql").read_text(encoding="utf-8")
    return _INCLUDE.sub(
        lambda m: (MARTS_DIR / "include" / f"{m.group(1)}.sql").read_text(encoding="utf-8"),
        text,
    )


def compute_indicators(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    capacites: list[dict],
    params: IndicateursParams | None = None,
) -> dict[str, duckdb.DuckDBPyRelation]:
    """The four indicator relations at D, computed from the tables of ``con``.

    ``capacites`` are the rows of the capacity file (``elsm``, ``acteur``,
    ``dossiers_par_semaine``); they are registered as the relation ``capacites`` the volumes
    model reads. Nothing is written: each value is the model's result, one row per its
    contract's grain, with ``as_of = D``.
    """
    params = params or IndicateursParams()
    con.execute(
        "create or replace temp table capacites "
        "(elsm VARCHAR, acteur VARCHAR, dossiers_par_semaine BIGINT)"
    ).fetchall()
    if capacites:
        con.executemany(
            "insert into capacites values (?, ?, ?)",
            [[r["elsm"], r["acteur"], int(r["dossiers_par_semaine"])] for r in capacites],
        ).fetchall()
    results = {}
    for name in TABLES:
        results[name] = con.sql(
            model_sql(name), params=params.for_model(name, as_of)
        ).to_arrow_table()
    return results


def _check_inputs(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    present = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }
    for name, command in INPUTS.items():
        if name not in present:
            raise IndicatorsError(
                f"table « {name} » absente de l'entrepôt : lancez d'abord `{command}`."
            )
    [(count,)] = con.execute("select count(*) from arrets where as_of = ?", [as_of]).fetchall()
    if not count:
        raise IndicatorsError(
            f"aucun arrêt construit au {as_of:%d/%m/%Y} dans la table « arrets » : lancez "
            f"d'abord `ru build --as-of {as_of.isoformat()}`."
        )


def store_indicators(con: duckdb.DuckDBPyConnection, as_of: date, results: dict) -> dict[str, int]:
    """Replace the rows of D in each indicator table by ``results`` (caller's transaction)."""
    from expectations.contract import load_contract

    counts = {}
    for name, frame in results.items():
        contract = load_contract(name)
        con.execute(contract.ddl()).fetchall()
        con.execute(f'delete from "{name}" where as_of = ?', [as_of]).fetchall()
        con.register("_indicateur", frame)
        columns = ", ".join(f'"{c}"' for c in contract.column_names)
        con.execute(
            f'insert into "{name}" ({columns}) select {columns} from _indicateur'
        ).fetchall()
        con.unregister("_indicateur")
        counts[name] = frame.num_rows
    return counts


def _national(con: duckdb.DuckDBPyConnection, summary: IndicatorsSummary) -> None:
    """Fill the summary's national figures from the rows just stored at D."""
    d = summary.as_of
    row = con.execute(
        "select mois, sum(dossiers_avec_action) / sum(dossiers_routes) from indicateurs_f1 "
        "where as_of = ? and not provisoire group by mois order by mois desc limit 1",
        [d],
    ).fetchall()
    if row:
        mois, taux = row[0]
        summary.f1_dernier_mois_definitif, summary.f1_national = mois.strftime("%Y-%m"), taux
    row = con.execute(
        "select mois, sum(arrets_termines) / sum(arrets_avec_action) from indicateurs_p4 "
        "where as_of = ? group by mois order by mois desc limit 1",
        [d],
    ).fetchall()
    if row:
        mois, taux = row[0]
        summary.p4_dernier_mois, summary.p4_national = mois.strftime("%Y-%m"), taux
    [(pdp,)] = con.execute(
        "select sum(arrets_avec_pdp) / sum(arrets_longs) from indicateurs_pdp where as_of = ?",
        [d],
    ).fetchall()
    summary.pdp_national = pdp


def indicators_at(
    paths: DataPaths,
    as_of: date | None = None,
    params: IndicateursParams | None = None,
    capacites_path: Path | None = None,
    *,
    checks: bool = True,
) -> IndicatorsSummary:
    """Compute and store the indicators at D (default: the latest date ingested).

    The rows of D are replaced, checked against their contracts (``fail``-level rules) and
    committed in one transaction: a failed check raises ``flows.checks.ChecksFailed`` and
    leaves the previous rows of D in place.
    """
    from flows.capacites import load_capacites
    from flows.console import progress
    from flows.warehouse import default_as_of, warehouse

    start = time.perf_counter()
    capacites = load_capacites(
        capacites_path or CONFIG_DIR / "capacites.csv", REFERENCE_DIR / "elsm.csv"
    )
    with warehouse(paths) as con:
        as_of = as_of or default_as_of(con)
        _check_inputs(con, as_of)
        with progress(f"Indicateurs au {as_of:%d/%m/%Y}", total=len(TABLES)) as step:
            results = compute_indicators(con, as_of, capacites.rows(), params)
            step.advance(len(TABLES) - 1)
            summary = IndicatorsSummary(as_of=as_of)
            con.execute("begin transaction").fetchall()
            try:
                summary.lignes = store_indicators(con, as_of, results)
                if checks:
                    from flows.checks import check_date

                    summary.controles = check_date(con, paths, TABLES, as_of)
                con.execute("commit").fetchall()
            except BaseException:
                con.execute("rollback").fetchall()
                raise
            step.advance()
        _national(con, summary)
    summary.duree_s = round(time.perf_counter() - start, 3)
    return summary


def _pct(value: float | None) -> str:
    from flows.report import fr_pourcent

    return fr_pourcent(value) if value is not None else "—"


def indicators(
    data: DataOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Calcule les indicateurs F1, P4, couverture PDP et volumes à la date D."""
    from flows.checks import ChecksFailed
    from flows.console import out
    from flows.settings import ConfigError, resolve_data_dir
    from flows.warehouse import WarehouseError

    d = as_of.date() if as_of else None
    try:
        summary = indicators_at(resolve_data_dir(data), d)
    except (IndicatorsError, WarehouseError, ConfigError, ChecksFailed) as exc:
        fail(str(exc))
    out.print(
        f"Indicateurs au {summary.as_of:%d/%m/%Y} : "
        + ", ".join(f"{t} {n} ligne(s)" for t, n in summary.lignes.items())
    )
    out.print(
        f"F1 national ({summary.f1_dernier_mois_definitif or 'aucun mois définitif'}) : "
        f"{_pct(summary.f1_national)} ; P4 ({summary.p4_dernier_mois or 'aucun mois publié'}) :"
        f" {_pct(summary.p4_national)} ; couverture PDP : {_pct(summary.pdp_national)}"
    )

"""Run the transforms' models in dependency order, with bound parameters.

A *model* is one SQL file ``transforms/<layer>/<name>.sql`` (a single ``select``) or one
Polars function registered in :data:`PYTHON_MODELS`. A model refers to other models and to
input relations by their bare names; the runner finds the dependencies of the requested
targets (SQL parsed with sqlglot; Polars models declare ``DEPENDS_ON``), runs them in
topological order and materialises each one as a table of a *scratch* catalog attached to
the caller's connection (in memory by default). Nothing is written to the caller's
database: the results are relations on the scratch catalog, valid until it is detached.

Tables rather than views: DuckDB views cannot hold bound parameters (``$as_of``), and each
model is read several times downstream.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import polars as pl

log = logging.getLogger("ru.transforms")

TRANSFORMS_DIR = Path(__file__).resolve().parent
LAYERS = ("staging", "intermediate", "marts")
SCRATCH = "ru_build"
# Polars models: name -> module exposing DEPENDS_ON and a function of the same name.
PYTHON_MODELS = {"prescripteurs": "transforms.marts.prescripteurs"}


class ModelError(RuntimeError):
    """A model is missing, cyclic, or refers to a relation that does not exist."""


@dataclass(frozen=True)
class Model:
    """One model: its name, layer, the models and inputs it reads, its parameters."""

    name: str
    layer: str
    depends_on: tuple[str, ...]
    parameters: tuple[str, ...] = ()
    sql: str | None = None
    function: Callable[..., pl.LazyFrame] | None = None


def _sql_path(name: str, root: Path) -> Path | None:
    for layer in LAYERS:
        path = root / layer / f"{name}.sql"
        if path.exists():
            return path
    return None


@cache
def load_model(name: str, root: Path = TRANSFORMS_DIR) -> Model:
    """The model ``name``: its SQL file under a layer folder, or its Polars function."""
    if name in PYTHON_MODELS:
        module = importlib.import_module(PYTHON_MODELS[name])
        return Model(
            name=name,
            layer="marts",
            depends_on=tuple(module.DEPENDS_ON),
            function=getattr(module, name),
        )
    path = _sql_path(name, root)
    if path is None:
        raise ModelError(f"modèle inconnu : {name} (aucun fichier {name}.sql sous {root})")
    import sqlglot
    from sqlglot import exp

    sql = path.read_text(encoding="utf-8")
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ModelError(f"{path.relative_to(root)} : SQL illisible ({exc})") from exc
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    tables = sorted({t.name for t in tree.find_all(exp.Table)} - ctes)
    params = sorted({p.this for p in tree.find_all(exp.Placeholder) if p.this})
    return Model(
        name=name,
        layer=path.parent.name,
        depends_on=tuple(tables),
        parameters=tuple(params),
        sql=sql,
    )


def _is_model(name: str, root: Path) -> bool:
    return name in PYTHON_MODELS or _sql_path(name, root) is not None


def plan(
    targets: Sequence[str], root: Path = TRANSFORMS_DIR, given: Collection[str] = ()
) -> list[Model]:
    """The models needed for ``targets``, dependencies first (depth-first, stable).

    ``given`` models are taken as already run (their tables exist): neither they nor their
    own dependencies are planned.
    """
    order: list[Model] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done" or name in given:
            return
        if state.get(name) == "visiting":
            raise ModelError(f"dépendance circulaire : {' -> '.join((*chain, name))}")
        state[name] = "visiting"
        model = load_model(name, root)
        for dep in model.depends_on:
            if _is_model(dep, root):
                visit(dep, (*chain, name))
        state[name] = "done"
        order.append(model)

    for target in targets:
        visit(target, ())
    return order


@contextmanager
def scratch(con: duckdb.DuckDBPyConnection, path: str = ":memory:") -> Iterator[str]:
    """Attach the scratch catalog (``ru_build``) to ``con``; detach it on exit.

    Its tables (one per model run) vanish on exit; ``con``'s own database is never written.
    """
    # read-write even when ``con`` is read-only (training reads a read-only warehouse);
    # compressed in memory: the staged lines are the largest object of a build
    options = "read_only false, compress" if path == ":memory:" else "read_only false"
    con.execute(f"attach '{_quote(path)}' as {SCRATCH} ({options})")
    try:
        yield SCRATCH
    finally:
        con.execute(f"detach {SCRATCH}")


@contextmanager
def _models_first(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Resolve bare names in the scratch catalog first, then in ``con``'s database (where
    the inputs ``lignes_ij``, ``actions`` are), while a model runs; restore afterwards."""
    previous = con.execute("select current_setting('search_path')").fetchall()[0][0]
    database = con.execute("select current_database()").fetchall()[0][0]
    con.execute(f"set search_path = '{SCRATCH}.main,{_quote(database)}.main'")
    try:
        yield
    finally:
        if previous:
            con.execute(f"set search_path = '{_quote(previous)}'")
        else:
            con.execute("reset search_path")


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _table(name: str) -> str:
    return f'{SCRATCH}.main."{name}"'


def _to_polars(value: Any) -> pl.DataFrame:
    import polars as pl

    if isinstance(value, pl.LazyFrame):
        return value.collect()
    if isinstance(value, pl.DataFrame):
        return value
    if hasattr(value, "pl"):  # a DuckDB relation
        return value.pl()
    return pl.DataFrame(value)


def _store_frame(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    view = f"_ru_frame_{name}"
    con.register(view, frame)
    try:
        con.execute(f"create or replace table {_table(name)} as select * from {view}")
    finally:
        con.unregister(view)


@dataclass
class RunResult:
    """The relations of every model run (by name) and their durations in seconds."""

    relations: dict[str, duckdb.DuckDBPyRelation] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> duckdb.DuckDBPyRelation:
        return self.relations[name]


def run_models(
    con: duckdb.DuckDBPyConnection,
    targets: Sequence[str],
    params: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    root: Path = TRANSFORMS_DIR,
    given: Collection[str] = (),
) -> RunResult:
    """Run ``targets`` and their dependencies inside an active :func:`scratch` catalog.

    Bare names in a model resolve to models first, then to ``con``'s database. The
    returned relations are fully qualified (``ru_build.main.<model>``), so they stay
    unambiguous next to warehouse tables of the same name (``arrets``).
    ``params`` are the bound values (``$as_of`` …): each SQL model gets the ones it uses, a
    Polars model gets them all as keyword arguments. ``inputs`` are extra relations or
    frames (e.g. ``ref_elsm``) copied into the scratch catalog under their names. ``given``
    names models whose tables an earlier call already left in the scratch catalog: they are
    read, not run again. Returns the relations of every model run; the caller's database is
    only read.
    """
    result = RunResult()
    for name, value in (inputs or {}).items():
        _store_frame(con, name, _to_polars(value))
    for model in plan(targets, root, given):
        start = time.perf_counter()
        if model.sql is not None:
            missing = [p for p in model.parameters if p not in params]
            if missing:
                raise ModelError(f"{model.name} : paramètre(s) manquant(s) {missing}")
            values = {p: params[p] for p in model.parameters}
            with _models_first(con):
                con.execute(f"create or replace table {_table(model.name)} as\n{model.sql}", values)
        else:
            # lazy: Polars pushes its projections and filters down to DuckDB
            frames = {dep: con.table(_table(dep)).pl(lazy=True) for dep in model.depends_on}
            out = model.function(**frames, **params).collect()
            _store_frame(con, model.name, out)
        result.durations[model.name] = time.perf_counter() - start
        result.relations[model.name] = con.table(_table(model.name))
        log.debug("modèle %s : %.2f s", model.name, result.durations[model.name])
    return result


# --- the arrêts build (issue 3) ------------------------------------------------------------

ARRETS_TARGETS = ("stg_hors_perimetre", "arrets", "prescripteurs")


@dataclass(frozen=True)
class BuildParams:
    """The bound parameters of the arrêts models (spec §1–2; values from settings)."""

    as_of: date
    rgo_asu_nat: tuple[int, ...]
    prs_nat_ref: tuple[int, ...]
    ecart_max_jours: int
    fenetre_historique_jours: int
    fenetre_ij_3ans_jours: int
    fenetre_arrets_12m_jours: int
    fenetre_arrets_courts_jours: int
    duree_arret_court_max_jours: int
    fenetre_prescripteurs_jours: int
    patients_min: int
    ratio_atypique: float

    def values(self) -> dict[str, Any]:
        """Parameter name -> value, tuples as lists (DuckDB ``list_contains``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def at(self, as_of: date) -> BuildParams:
        """The same thresholds at another date."""
        return BuildParams(**{**asdict(self), "as_of": as_of})


@dataclass
class ArretsResult:
    """The relations of one build at ``as_of`` (all on the scratch catalog)."""

    as_of: date
    arrets: duckdb.DuckDBPyRelation
    prescripteurs: duckdb.DuckDBPyRelation
    hors_perimetre: duckdb.DuckDBPyRelation
    run: RunResult


def compute_arrets(
    con: duckdb.DuckDBPyConnection, params: BuildParams, ref_elsm: Any
) -> ArretsResult:
    """Run the arrêts models at ``params.as_of`` inside an active :func:`scratch` catalog.

    ``con`` holds ``lignes_ij`` and ``actions`` (contract DDL); ``ref_elsm`` is the ELSM
    reference (``code_organisme, elsm, drsm``) as a frame or relation. ``arrets``: one row
    per arrêt of the window (contract ``arrets.yml``); ``prescripteurs``: one row per
    prescriber (``prescripteurs.yml``); ``hors_perimetre``: lines out of scope per
    ``(RGO_ASU_NAT, PRS_NAT_REF)``.
    """
    run = run_models(con, ARRETS_TARGETS, params.values(), inputs={"ref_elsm": ref_elsm})
    return ArretsResult(
        as_of=params.as_of,
        arrets=run["arrets"],
        prescripteurs=run["prescripteurs"],
        hors_perimetre=run["stg_hors_perimetre"],
        run=run,
    )


@contextmanager
def arrets_at(
    con: duckdb.DuckDBPyConnection,
    params: BuildParams,
    ref_elsm: Any,
    scratch_path: str = ":memory:",
) -> Iterator[ArretsResult]:
    """The arrêts and prescribers at ``params.as_of``, without writing to ``con``'s database.

    Usage: ``with arrets_at(con, params, ref) as r: df = r.arrets.pl()``. The relations are
    valid inside the ``with`` block only (the scratch catalog is detached on exit).
    """
    with scratch(con, scratch_path):
        yield compute_arrets(con, params, ref_elsm)


def arrets_snapshots(
    con: duckdb.DuckDBPyConnection,
    params: BuildParams,
    dates: Sequence[date],
    ref_elsm: Any,
    scratch_path: str = ":memory:",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``arrets`` and ``prescripteurs`` at each date of ``dates`` (point in time each),
    stacked: one row per ``(as_of, arret_id)`` and per ``(as_of, PFS_PRE_NUM)``.

    One scratch catalog for all dates (attached once); each date re-runs the models on the
    lines visible at that date only, so a snapshot never sees a later line.
    """
    import polars as pl

    arrets, prescripteurs = [], []
    with scratch(con, scratch_path):
        for as_of in sorted(set(dates)):
            result = compute_arrets(con, params.at(as_of), ref_elsm)
            arrets.append(result.arrets.pl())
            prescripteurs.append(result.prescripteurs.pl())
    if not arrets:
        return pl.DataFrame(), pl.DataFrame()
    return pl.concat(arrets, how="vertical"), pl.concat(prescripteurs, how="vertical")

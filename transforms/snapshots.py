"""Training snapshots at many dates: the ``ru build`` models, run on the assurés that changed.

:func:`transforms.runner.arrets_snapshots` runs a whole build per date (about a minute per
date at 10 M lines; training reads some fifty dates). :func:`arrets_en_cours_snapshots`
returns the same rows for what training reads — at each snapshot date S, the ``arrets`` rows
of the arrêts en cours; at the label date D, the ``arrets`` rows of the assurés seen en
cours — by running the same models (no second copy of any definition) on restricted inputs.
It rests on three properties of the models, checked row by row against full builds by
``tests/test_snapshots.py``:

1. *Per assuré.* ``stg_lignes_ij``, ``int_lignes_arret``, ``int_arrets``, ``int_assures``,
   ``stg_actions``, ``int_actions_arret`` and ``arrets`` compute an assuré's rows from that
   assuré's lines and actions only (every partition, grouping and join is by ``assure_id``
   or finer). Run on the lines of a set of assurés (every version of every line one of them
   carries), they give exactly those assurés' rows of a full build.
2. *``int_arrets`` has no date parameter*: at S it depends on the lines visible at S only. An
   assuré none of whose lines got a new version between two dates has the same ``int_arrets``
   rows at both.
3. *``prescripteurs`` is the only model that reads every assuré* (peer medians), and it reads
   ``int_arrets`` only.

Walking the dates in order, a cache holds ``int_arrets`` for every assuré at the current
date. At each date S the models run on the lines of: the assurés touched since the previous
date (a line version delivered in between), and the assurés who may have an arrêt en cours
at S (a visible line version with ``PRE_FIN_DTE >= S``: the arrêt's ``fin_prescrite`` is one
of its lines' ``PRE_FIN_DTE``), plus every other owner of a line one of them owns at some
version (rare: a correction that moves a line). Their ``int_arrets`` rows replace theirs in
the cache; ``prescripteurs`` runs on the cache (every assuré, as in a build); the other
models run for the same assurés with these prescribers. The first date runs on every
assuré. Each date still sees only the lines with ``FLX_DIS_DTD <= S``.

At the final date (the labels' date D) only the assurés kept at the snapshot dates are
computed, without the cache: their rows are those of a full build except the two columns
drawn from every assuré's prescriptions (``FINAL_DROPPED``), which are left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl

from transforms.runner import SCRATCH, BuildParams, load_model, run_models, scratch

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("ru.transforms")

# Models run on the restricted lines before the cache update; the prescribers' model.
ARRETS_MODELS = ("stg_lignes_ij", "int_lignes_arret", "int_arrets")
PRESCRIBERS = "prescripteurs"
# The ``arrets`` columns read from ``prescripteurs``: absent from the final date's rows.
FINAL_DROPPED = ("prescripteur_atypique", "ratio_pairs_prescripteur")
# Input tables, their line key, and the staging model that reads them.
INPUTS = (
    ("lignes_ij", ("ORG_AFF_COD", "LIG_NUM"), "stg_lignes_ij"),
    ("actions", ("ELSM", "ACT_NUM"), "stg_actions"),
)


@dataclass
class Snapshots:
    """The rows of :func:`arrets_en_cours_snapshots`, each as a full ``ru build`` has them.

    ``en_cours``: ``arrets`` rows with ``en_cours`` at each snapshot date (``as_of`` = S),
    those meeting ``keep`` if given. ``final``: ``arrets`` rows at the final date of the
    assurés of ``en_cours`` and of ``final_assures``, every arrêt of theirs in the window,
    without the columns of :data:`FINAL_DROPPED`. ``prescripteurs``: the ``prescripteurs``
    table at each snapshot date. ``durations``: seconds per stage. ``assures``: how many
    assurés were computed at each date.
    """

    en_cours: pl.DataFrame
    final: pl.DataFrame
    prescripteurs: pl.DataFrame
    durations: dict[str, float] = field(default_factory=dict)
    assures: dict[date, int] = field(default_factory=dict)


def _t(name: str) -> str:
    return f'{SCRATCH}.main."{name}"'


def _exec(con: duckdb.DuckDBPyConnection, sql: str, values: dict | None = None) -> None:
    con.execute(sql, values or {}).fetchall()


def _read_columns(model: str, available: Sequence[str]) -> list[str]:
    """The columns of ``available`` that the SQL of ``model`` names (its source is read with
    ``select *``; keeping the others would only copy them around)."""
    from sqlglot import exp, parse_one

    named = {c.name for c in parse_one(load_model(model).sql, read="duckdb").find_all(exp.Column)}
    return [c for c in available if c in named]


def _copy_inputs(con: duckdb.DuckDBPyConnection, last: date) -> None:
    """Copy once into the scratch catalog, for each input table: its versions delivered up
    to ``last`` (the columns the staging model reads, in delivery order so that a date's
    range of deliveries is read from a few blocks) as ``_ru_<table>``, and ``_ru_<table>_multi``
    (key, assure_id) for the lines or actions carried by several assurés over their
    versions."""
    database = con.execute("select current_database()").fetchall()[0][0].replace('"', '""')
    for table, key, staging in INPUTS:
        source = f'"{database}".main.{table}'
        available = [r[0] for r in con.execute(f"describe {source}").fetchall()]
        columns = ", ".join(f'"{c}"' for c in _read_columns(staging, available))
        _exec(
            con,
            f"create or replace table {_t('_ru_' + table)} as select {columns} from {source} "
            "where FLX_DIS_DTD <= $last order by FLX_DIS_DTD",
            {"last": last},
        )
        keys = ", ".join(key)
        _exec(
            con,
            f"""create or replace table {_t("_ru_" + table + "_multi")} as
            select distinct l.{", l.".join(key)}, l.assure_id
            from {_t("_ru_" + table)} as l
            semi join (
                select {keys} from {_t("_ru_" + table)}
                group by {keys} having count(distinct assure_id) > 1
            ) using ({keys})""",
        )


def _select_assures(con: duckdb.DuckDBPyConnection, seeds: str, values: dict) -> int:
    """``_ru_assures``: the assurés of the query ``seeds`` and every other owner of a line
    or action one of them owns at some version. Returns their number."""
    _exec(con, f"create or replace table {_t('_ru_graines')} as {seeds}", values)
    others = [
        f"""select m.assure_id from {_t("_ru_" + table + "_multi")} as m
        semi join (
            select {", ".join(key)} from {_t("_ru_" + table + "_multi")}
            where assure_id in (select assure_id from {_t("_ru_graines")})
        ) using ({", ".join(key)})"""
        for table, key, _ in INPUTS
    ]
    _exec(
        con,
        f"create or replace table {_t('_ru_assures')} as "
        f"select assure_id from {_t('_ru_graines')} union " + " union ".join(others),
    )
    return con.execute(f"select count(*) from {_t('_ru_assures')}").fetchall()[0][0]


def _restrict_inputs(con: duckdb.DuckDBPyConnection, day: date, everyone: bool) -> None:
    """``lignes_ij`` and ``actions`` of the scratch catalog (read by the models before the
    warehouse's): the versions visible at ``day`` carried by the selected assurés (every
    version of their lines, by construction of ``_ru_assures``), or by everyone. Views, so
    that the staging models read the copies once, filtering as they scan."""
    for table, _, _ in INPUTS:
        chosen = "" if everyone else f"and assure_id in (select assure_id from {_t('_ru_assures')})"
        _exec(
            con,
            f"create or replace view {_t(table)} as select * from {_t('_ru_' + table)} "
            f"where FLX_DIS_DTD <= date '{day.isoformat()}' {chosen}",
        )


def _columns_read(function: Any, con: duckdb.DuckDBPyConnection, values: dict) -> str:
    """The ``int_arrets`` columns the prescribers' model reads (the cache keeps those only,
    plus ``assure_id``): a column is read when the model's plan fails without it."""
    schema = con.sql(f"select * from {_t('int_arrets')} limit 0").pl().schema

    def plans(columns: list[str]) -> bool:
        frame = pl.LazyFrame(schema={c: schema[c] for c in columns})
        try:
            function(int_arrets=frame, **values).collect_schema()
        except pl.exceptions.ColumnNotFoundError:
            return False
        return True

    read = [c for c in schema if c == "assure_id" or not plans([k for k in schema if k != c])]
    return ", ".join(f'"{c}"' for c in read)


@contextmanager
def _no_checkpoint(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """No automatic checkpoint while the dates replace tables of the in-memory scratch
    catalog (each one stalled the run for seconds, recompressing the inputs' copies)."""
    threshold = con.execute("select current_setting('checkpoint_threshold')").fetchall()[0][0]
    con.execute("set checkpoint_threshold = '1TB'")
    try:
        yield
    finally:
        con.execute(f"set checkpoint_threshold = '{threshold}'")


def _store(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    view = f"_ru_frame_{name}"
    con.register(view, frame)
    try:
        _exec(con, f"create or replace table {_t(name)} as select * from {view}")
    finally:
        con.unregister(view)


def arrets_en_cours_snapshots(
    con: duckdb.DuckDBPyConnection,
    params: BuildParams,
    dates: Sequence[date],
    ref_elsm: Any,
    final: date | None = None,
    final_assures: Sequence[str] = (),
    keep: pl.Expr | None = None,
    scratch_path: str = ":memory:",
) -> Snapshots:
    """The arrêts en cours at each date of ``dates`` (those meeting ``keep``) and, if
    ``final`` is given, the arrêts at ``final`` of the assurés kept (and of
    ``final_assures``): the rows a full build (:func:`transforms.runner.compute_arrets`)
    gives at each date, each date seeing only the lines delivered by then (see the module's
    docstring for the columns left out at ``final``). ``final`` must follow every date.
    Reads ``con``'s ``lignes_ij`` and ``actions``; writes nothing to its database.
    """
    steps = sorted(set(dates))
    if final is not None and steps and final <= steps[-1]:
        raise ValueError(f"date finale {final} : elle doit suivre la dernière photographie")
    durations: dict[str, float] = {}
    counts: dict[date, int] = {}

    def timed(stage: str, start: float) -> None:
        durations[stage] = durations.get(stage, 0.0) + time.perf_counter() - start

    last = final or (steps[-1] if steps else None)
    if last is None:
        return Snapshots(pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), durations)
    prescriber_model = load_model(PRESCRIBERS)
    en_cours, prescripteurs = [], []
    final_rows = pl.DataFrame()
    cache: pl.DataFrame | None = None
    with scratch(con, scratch_path), _no_checkpoint(con):
        start = time.perf_counter()
        _copy_inputs(con, last)
        run_models(con, (), params.values(), inputs={"ref_elsm": ref_elsm})
        _exec(
            con,
            f"create table {_t('_ru_vus')} as select unnest($ids::varchar[]) as assure_id",
            {"ids": list(final_assures)},
        )
        timed("copie", start)
        previous: date | None = None
        for day in steps:
            at = params.at(day).values()
            start = time.perf_counter()
            lignes = _t("_ru_lignes_ij")
            seeds = f"select assure_id from {lignes} where FLX_DIS_DTD <= $s and PRE_FIN_DTE >= $s"
            values: dict[str, Any] = {"s": day}
            if previous is not None:
                seeds += (
                    f" union select assure_id from {lignes} "
                    "where FLX_DIS_DTD > $previous and FLX_DIS_DTD <= $s"
                )
                values["previous"] = previous
            counts[day] = _select_assures(con, seeds, values)
            _restrict_inputs(con, day, everyone=previous is None)
            timed("selection", start)

            start = time.perf_counter()
            run_models(con, ARRETS_MODELS, at)
            if cache is None:
                read = _columns_read(prescriber_model.function, con, at)
                cache = con.sql(f"select {read} from {_t('int_arrets')}").pl()
            else:
                changed = con.sql(
                    f"select {read} from {_t('int_arrets')} where assure_id in "
                    f"(select assure_id from {_t('_ru_assures')})"
                ).pl()
                cache = pl.concat(
                    [
                        cache.join(
                            changed.select("assure_id").unique(), on="assure_id", how="anti"
                        ),
                        changed,
                    ],
                    how="vertical",
                )
            timed("int_arrets", start)

            start = time.perf_counter()
            # the model's function on every assuré's int_arrets, stored as run_models does
            _store(
                con, PRESCRIBERS, prescriber_model.function(int_arrets=cache.lazy(), **at).collect()
            )
            prescripteurs.append(con.sql(f"select * from {_t(PRESCRIBERS)}").pl())
            timed("prescripteurs", start)

            start = time.perf_counter()
            run_models(con, ("arrets",), at, given=(*ARRETS_MODELS, PRESCRIBERS))
            rows = con.sql(f"select * from {_t('arrets')} where en_cours").pl()
            if keep is not None:
                rows = rows.filter(keep)
            en_cours.append(rows)
            _store(con, "_ru_vus_date", rows.select("assure_id").unique())
            _exec(con, f"insert into {_t('_ru_vus')} select assure_id from {_t('_ru_vus_date')}")
            timed("arrets", start)
            log.debug("photographie au %s : %d assuré(s) recalculé(s)", day, counts[day])
            previous = day

        if final is not None:
            start = time.perf_counter()
            counts[final] = _select_assures(
                con, f"select distinct assure_id from {_t('_ru_vus')}", {}
            )
            _restrict_inputs(con, final, everyone=False)
            run_models(con, ("arrets",), params.at(final).values())
            final_rows = (
                con.sql(
                    f"select * from {_t('arrets')} where assure_id in "
                    f"(select assure_id from {_t('_ru_graines')})"
                )
                .pl()
                .drop(FINAL_DROPPED)
            )
            timed("date_finale", start)
    return Snapshots(
        en_cours=pl.concat(en_cours, how="vertical") if en_cours else pl.DataFrame(),
        final=final_rows,
        prescripteurs=pl.concat(prescripteurs, how="vertical") if prescripteurs else pl.DataFrame(),
        durations={k: round(v, 3) for k, v in durations.items()},
        assures=counts,
    )

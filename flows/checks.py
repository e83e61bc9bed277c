"""Data checks: run a table's generated GX suite on a warehouse slice, record, stop on ``fail``.

For one table and one slice (``where`` predicate, bound ``params``), :func:`check_table`
pulls the slice with DuckDB — row invariants evaluated as boolean columns in the same
query — as a pandas frame, validates it with the Great Expectations suite generated from the
table's contract (``expectations.suites``), writes a JSON result under
``<data>/controles/resultats/`` and the GX Data Docs under ``<data>/controles/data_docs/``,
logs the ``warn``-level breaches and raises :class:`ChecksFailed` on a ``fail``-level one.

Several tables checked in one process share one GX context (:class:`ChecksSession`); a
slice larger than ``max_rows`` is validated in chunks of ``chunk_rows`` rows, with key
uniqueness computed over the whole slice by DuckDB. Examples never show the values of
identifying (``assure_id``…) or medical columns: GX reports failing rows by their key
(and source file and line) only.

Great Expectations is imported inside :class:`ChecksSession` (≈ 3–4 s); this module is
cheap to import.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli_common import DataOption, as_of_option, fail
from flows.settings import DataPaths

if TYPE_CHECKING:
    from collections.abc import Iterator

    import duckdb
    import pandas as pd
    import pyarrow as pa

    from expectations.contract import Contract

log = logging.getLogger("ru.controles")

# Above MAX_ROWS rows the slice is validated in chunks of CHUNK_ROWS. Measured on lignes_ij
# (47 rules, benchmarks/bench_checks.py): the same CPU either way, but a block needs about
# 1.2 GB per million rows (4.7 GB for 5 M) while 1 M-row chunks stay near 2.6 GB whatever
# the size (DuckDB's search for duplicate keys included).
MAX_ROWS = 2_000_000
CHUNK_ROWS = 1_000_000
DOCS_RESULTS_LIMIT = 100  # validation results listed on the Data Docs index
GX_KEEP_DAYS = 90  # GX's copies of the results (behind the Data Docs); our JSON stays
LOCATOR_COLUMNS = ("fichier", "ligne")  # where a raw line came from, when the table has it


class ChecksFailed(RuntimeError):
    """A ``fail``-level rule is breached; the French message names the rule(s) and numbers.

    ``reports`` holds the :class:`CheckReport` of every table checked (results are already
    written when this is raised).
    """

    def __init__(self, message: str, reports: list[CheckReport] | None = None):
        super().__init__(message)
        self.reports = reports or []


@dataclass
class RuleResult:
    """The outcome of one rule on the slice: ``unexpected`` rows (None when the rule could
    not be evaluated: missing column, error), up to 5 ``examples`` locating failing rows by
    their non-identifying key (and source file/line), ``observed`` for structural rules."""

    rule: str
    kind: str
    severity: str
    detail: str
    success: bool
    unexpected: int | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    observed: str | None = None
    error: str | None = None


@dataclass
class CheckReport:
    """Checks of one table slice: one :class:`RuleResult` per generated rule.

    ``rows`` is the number of rows checked, ``chunks`` the number of frames validated,
    ``warnings`` the French lines of the ``warn``-level breaches, ``result_path`` the JSON
    written, ``docs_index`` the Data Docs index.
    """

    table: str
    label: str
    rows: int
    results: list[RuleResult]
    warnings: list[str]
    duration_s: float
    chunks: int = 1
    checked_at: str = ""
    result_path: Path | None = None
    docs_index: Path | None = None

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.results if not r.success and r.severity == "fail"]

    @property
    def success(self) -> bool:
        return not self.failures

    def failure_message(self) -> str:
        """« Contrôle lignes_ij échoué : règle denombrement_borne (…) — 3 ligne(s) sur 120 000 »."""
        parts = [_describe_breach(r, self.rows) for r in self.failures]
        return f"Contrôle {self.table} ({self.label}) échoué : " + " ; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["result_path"] = str(self.result_path) if self.result_path else None
        d["docs_index"] = str(self.docs_index) if self.docs_index else None
        d["success"] = self.success
        d["rules_failed"] = [r.rule for r in self.failures]
        return d


def _n(value: int) -> str:
    """120000 -> '120 000' (French thousands)."""
    return f"{value:,}".replace(",", " ")


def _describe_breach(r: RuleResult, rows: int) -> str:
    head = f"règle {r.rule} ({r.detail})"
    if r.error:
        return f"{head} — {r.error}"
    if r.unexpected is None:
        return f"{head} — observé : {r.observed}"
    return f"{head} — {_n(r.unexpected)} ligne(s) sur {_n(rows)}"


# ---------------------------------------------------------------------------------------
# GX session


class ChecksSession:
    """One ephemeral GX context for a data folder's checks, reused across tables.

    Suites, validation definitions and the pandas datasource live in memory; validation
    results are stored as files under ``controles/gx/`` (kept 90 days) so that the Data Docs
    index (``controles/data_docs/index.html``) lists past runs too (the latest 100). No
    network, no usage statistics, no progress bars.
    """

    def __init__(self, paths: DataPaths):
        os.environ["GX_ANALYTICS_ENABLED"] = "false"
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.paths = paths
        self.docs_dir = paths.checks / "data_docs"
        self.results_dir = paths.checks / "resultats"
        store_dir = paths.checks / "gx" / "validations"
        for d in (self.docs_dir, self.results_dir, store_dir):
            d.mkdir(parents=True, exist_ok=True)
        _prune(store_dir, GX_KEEP_DAYS)
        defaults = InMemoryStoreBackendDefaults()
        defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(store_dir),
        }
        config = DataContextConfig(
            store_backend_defaults=defaults,
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            data_docs_sites={
                "controles": {
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(self.docs_dir),
                    },
                    "site_index_builder": {
                        "class_name": "DefaultSiteIndexBuilder",
                        "validation_results_limit": DOCS_RESULTS_LIMIT,
                    },
                }
            },
        )
        # GX fingerprints every pandas batch under 1 GB (an md5 of the whole frame, ≈ 1.2 s
        # per million rows) for a batch marker nothing here reads: switch it off.
        from great_expectations.execution_engine import pandas_execution_engine

        pandas_execution_engine.HASH_THRESHOLD = 0
        self._gx = gx
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self._source = self.context.data_sources.add_pandas("entrepot")
        # Prefect may run tasks in threads: one check or docs build at a time per context.
        self.lock = threading.RLock()
        self._validations: dict[tuple[Contract, bool, tuple[str, ...]], Any] = {}
        self._names: set[str] = set()
        self._pending_docs: list = []

    def _validation(self, contract: Contract, key_flag: bool, locate_by: list[str]):
        """The GX validation definition of ``contract`` (built once per session)."""
        from expectations.suites import build_suite

        cache_key = (contract, key_flag, tuple(locate_by))
        if cache_key not in self._validations:
            gx = self._gx
            name = contract.table + ("__tranches" if key_flag else "")
            if name in self._names:  # same table, another contract version or locator set
                name = f"{name}__{len(self._names)}"
            self._names.add(name)
            asset = self._source.add_dataframe_asset(name)
            batch = asset.add_batch_definition_whole_dataframe("tranche")
            suite = self.context.suites.add(
                build_suite(contract, suite_name=name, key_flag=key_flag)
            )
            self._validations[cache_key] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=suite)
            )
        return self._validations[cache_key]

    def validate(
        self, contract: Contract, frame: pd.DataFrame, *, key_flag: bool, run_name: str
    ) -> Any:
        """Validate one frame with the contract's suite; the GX result (stored on disk)."""
        from great_expectations.core.run_identifier import RunIdentifier

        from expectations.suites import EXAMPLES

        locate_by = _locate_by(contract, list(frame.columns))
        vd = self._validation(contract, key_flag, locate_by)
        result_format = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": EXAMPLES,
            "exclude_unexpected_values": True,
        }
        if locate_by:
            result_format["unexpected_index_column_names"] = locate_by
        # GX's file store refuses "/" and "\\" in keys (the run name is one, and a folder
        # name): those and the characters other file systems refuse become "-".
        safe_name = re.sub(r'[/\\:*?"<>|]', "-", run_name)
        run_id = RunIdentifier(run_name=safe_name, run_time=dt.datetime.now(dt.UTC))
        result = vd.run(
            batch_parameters={"dataframe": frame}, result_format=result_format, run_id=run_id
        )
        self._pending_docs.append(result)
        return result

    def build_docs(self) -> Path:
        """Render the validations of this session and the index; the index path."""
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        ids = []
        for result in self._pending_docs:
            suite_id = ExpectationSuiteIdentifier(name=result.suite_name)
            batch = result.meta["active_batch_definition"]
            ids.append(
                ValidationResultIdentifier(
                    expectation_suite_identifier=suite_id,
                    run_id=result.meta["run_id"],
                    # the batch id GX gives a whole-dataframe batch: "<datasource>-<asset>"
                    batch_identifier=f"{batch['datasource_name']}-{batch['data_asset_name']}",
                )
            )
            ids.append(suite_id)
        self.context.build_data_docs(site_names=["controles"], resource_identifiers=ids or None)
        self._pending_docs.clear()
        return self.docs_dir / "index.html"

    def check(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        *,
        where: str | None = None,
        params: dict | None = None,
        label: str,
        max_rows: int = MAX_ROWS,
        chunk_rows: int = CHUNK_ROWS,
        contract: Contract | None = None,
    ) -> CheckReport:
        """Check one slice; write its JSON result. Does not raise on a breach (see
        :func:`check_table`) and does not build the Data Docs (see :meth:`build_docs`).

        ``contract`` defaults to the table's contract file; a slice above ``max_rows`` rows
        is validated in chunks of ``chunk_rows``.
        """
        from expectations.contract import load_contract
        from expectations.suites import rules, slice_query

        started = time.perf_counter()
        contract = contract or load_contract(table)
        present = _table_columns(con, table)
        count_sql = f'select count(*) from "{table}"' + (f" where ({where})" if where else "")
        total = con.execute(count_sql, params or {}).fetchall()[0][0]
        chunked = total > max_rows
        sql = slice_query(contract, table, present, where, key_flag=chunked)
        gx_results = []
        if not chunked:
            frame = slice_frame(con, sql, params)
            gx_results.append(self.validate(contract, frame, key_flag=False, run_name=label))
        else:
            n = math.ceil(total / chunk_rows)
            for i, frame in enumerate(slice_chunks(con, sql, params, chunk_rows), start=1):
                name = f"{label} — tranche {i} sur {n}"
                gx_results.append(self.validate(contract, frame, key_flag=True, run_name=name))
            log.info("%s : %s lignes contrôlées en %d tranches", table, _n(total), n)
        results = _merge(rules(contract), gx_results, total)
        report = CheckReport(
            table=table,
            label=label,
            rows=total,
            results=results,
            warnings=[
                f"Contrôle {table} ({label}) : " + _describe_breach(r, total)
                for r in results
                if not r.success and r.severity == "warn"
            ],
            duration_s=round(time.perf_counter() - started, 3),
            chunks=max(1, len(gx_results)),
            checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            docs_index=self.docs_dir / "index.html",
        )
        for w in report.warnings:
            log.warning(w)
        report.result_path = _write_result(self.results_dir, report)
        return report


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow slice as the pandas frame DuckDB's ``.df()`` would give, about 3× faster.

    Text -> pandas ``str`` (Arrow-backed, no Python objects), integers and booleans ->
    nullable pandas dtypes, DECIMAL -> float64, DATE/TIMESTAMP -> datetime64. ``.df()``
    builds one Python string per text cell, which is most of its cost.
    """
    import pandas as pd
    import pyarrow as pa

    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): text,
        pa.large_string(): text,
        pa.string_view(): text,
    }
    fields = [
        pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f for f in table.schema
    ]
    table = table.cast(pa.schema(fields)).combine_chunks()
    return table.to_pandas(types_mapper=mapping.get, date_as_object=False)


def slice_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None
) -> pd.DataFrame:
    """The whole slice as one pandas frame (DuckDB -> Arrow -> pandas)."""
    return _to_pandas(con.sql(sql, params=params or None).to_arrow_table())


def slice_chunks(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """The slice as successive pandas frames of ``chunk_rows`` rows (the last one shorter)."""
    import pyarrow as pa

    reader = con.sql(sql, params=params or None).to_arrow_reader(min(chunk_rows, 1_000_000))
    pending: pa.Table | None = None
    try:
        for batch in reader:
            table = pa.Table.from_batches([batch])
            pending = table if pending is None else pa.concat_tables([pending, table])
            while pending.num_rows >= chunk_rows:
                yield _to_pandas(pending.slice(0, chunk_rows))
                pending = pending.slice(chunk_rows)
        if pending is not None and pending.num_rows:
            yield _to_pandas(pending)
    finally:
        # An open result blocks the caller's connection (DuckDB 2): release it even when
        # the validation of a chunk fails.
        reader.close()


def _prune(store_dir: Path, days: int) -> int:
    """Delete GX validation results older than ``days`` (their Data Docs pages go at the
    next build); the number deleted. The JSON results under ``resultats/`` are kept."""
    limit = time.time() - days * 86400
    removed = 0
    for path in store_dir.rglob("*.json"):
        if path.stat().st_mtime < limit:
            path.unlink()
            removed += 1
    for folder in sorted(store_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_name = ? "
        "and table_catalog = current_database() and table_schema = current_schema() "
        "order by ordinal_position",
        [table],
    ).fetchall()
    if not rows:
        raise ValueError(f"table {table!r} absente de l'entrepôt : rien à contrôler")
    return [r[0] for r in rows]


def _locate_by(contract: Contract, frame_columns: list[str]) -> list[str]:
    from expectations.suites import example_columns

    cols = example_columns(contract, frame_columns)
    masked = set(contract.masked_columns)
    for c in LOCATOR_COLUMNS:
        if c in frame_columns and c not in cols and c not in masked:
            cols.append(c)
    return cols


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:10] if text.endswith("T00:00:00") else text
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def _examples(result: dict) -> list[dict[str, Any]]:
    """GX's partial index list ({col: [v1, v2]} or [{col: v}]) as a list of row dicts."""
    raw = result.get("partial_unexpected_index_list") or []
    parts = [raw] if isinstance(raw, dict) else list(raw)
    rows: list[dict] = []
    for part in parts:
        if not isinstance(part, dict):
            rows.append({"index": part})
        elif all(isinstance(v, list) for v in part.values()):
            cols = list(part)
            rows.extend(
                dict(zip(cols, vals, strict=True)) for vals in zip(*part.values(), strict=True)
            )
        else:
            rows.append(part)
    return [{k: _jsonable(v) for k, v in row.items()} for row in rows]


_STRUCTURAL = ("colonnes", "types")
_EXC_LINE = re.compile(r"[^\n]*(?:Error|Exception)[^\n]*")


def _merge(rule_list, gx_results, total: int) -> list[RuleResult]:
    """One :class:`RuleResult` per rule, summing the chunks' unexpected counts."""
    from expectations.suites import EXAMPLES

    by_rule: dict[str, RuleResult] = {}
    for rule in rule_list:
        by_rule[rule.name] = RuleResult(
            rule=rule.name,
            kind=rule.kind,
            severity=rule.severity,
            detail=rule.detail,
            success=True,
            unexpected=None if rule.kind in _STRUCTURAL else 0,
        )
    for gx_result in gx_results:
        for er in gx_result.results:
            name = er.expectation_config.meta["regle"]
            out = by_rule[name]
            message = _exception_message(er.exception_info)
            res = dict(er.result or {})
            if message is not None or (
                not er.success and out.kind not in _STRUCTURAL and "unexpected_count" not in res
            ):
                out.success = False
                out.unexpected = None
                out.error = _french_error(message or "")
                continue
            if not er.success:
                out.success = False
            if out.kind in _STRUCTURAL:
                out.observed = str(res.get("observed_value"))
                continue
            if out.unexpected is not None:
                out.unexpected += int(res.get("unexpected_count") or 0)
            room = EXAMPLES - len(out.examples)
            if room > 0 and not er.success:
                out.examples.extend(_examples(res)[:room])
    for out in by_rule.values():
        if out.unexpected == 0 and total == 0:
            out.unexpected = 0
    return list(by_rule.values())


def _exception_message(info: dict | None) -> str | None:
    """GX's exception info, flat ({raised_exception, exception_message}) or per metric."""
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "")
    return None


def _french_error(message: str) -> str:
    """A short French reason for a rule GX could not evaluate."""
    low = message.lower()
    missing = ("not found", "missing", "does not exist")
    if not message or ("column" in low and any(m in low for m in missing)):
        return "non évaluable : colonne absente"
    first = _EXC_LINE.search(message)
    return (first.group(0) if first else message).strip()[:300]


def _write_result(folder: Path, report: CheckReport) -> Path:
    """``resultats/<AAAAMMJJTHHMMSS>_<table>.json``; never overwrites an earlier result."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}_{report.table}.json"
    body = report.as_dict()
    body["result_path"] = str(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------
# Entry points used by the flows

_SESSIONS: dict[Path, ChecksSession] = {}
_SESSIONS_LOCK = threading.Lock()


def session(paths: DataPaths) -> ChecksSession:
    """The process-wide :class:`ChecksSession` of a data folder (the GX context is built once)."""
    key = paths.checks.resolve()
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = ChecksSession(paths)
        return _SESSIONS[key]


def check_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    paths: DataPaths,
    *,
    where: str | None = None,
    params: dict | None = None,
    label: str,
) -> CheckReport:
    """Check the rows of ``table`` matching ``where`` against its contract.

    Writes the JSON result and updates the Data Docs, logs ``warn``-level breaches (also in
    ``report.warnings``) and raises :class:`ChecksFailed` on a ``fail``-level one.
    """
    s = session(paths)
    with s.lock:
        report = s.check(con, table, where=where, params=params, label=label)
        s.build_docs()
    if not report.success:
        raise ChecksFailed(report.failure_message(), [report])
    return report


@dataclass(frozen=True)
class TableSlice:
    """A table and the slice of it to check (``where`` over the table, values in ``params``)."""

    table: str
    label: str
    where: str | None = None
    params: dict | None = None


def check_tables(
    con: duckdb.DuckDBPyConnection, slices: list[TableSlice], paths: DataPaths
) -> list[CheckReport]:
    """Check several slices in one GX context, build the Data Docs once, then raise
    :class:`ChecksFailed` naming every ``fail``-level breach of every table (all tables are
    checked and recorded first)."""
    s = session(paths)
    with s.lock:
        reports = [
            s.check(con, sl.table, where=sl.where, params=sl.params, label=sl.label)
            for sl in slices
        ]
        s.build_docs()
    failed = [r for r in reports if not r.success]
    if failed:
        raise ChecksFailed("\n".join(r.failure_message() for r in failed), reports)
    return reports


# ---------------------------------------------------------------------------------------
# ``ru check``: re-run the checks of whole tables or of one date


@dataclass
class ChecksSummary:
    """What ``ru check`` checked: one report per table, the Data Docs index."""

    as_of: dt.date | None
    reports: list[CheckReport]
    docs_index: Path | None
    duration_s: float

    @property
    def success(self) -> bool:
        return all(r.success for r in self.reports)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "success": self.success,
            "docs_index": str(self.docs_index) if self.docs_index else None,
            "duration_s": self.duration_s,
            "reports": [r.as_dict() for r in self.reports],
        }


def checks_at(
    paths: DataPaths, tables: list[str] | None = None, as_of: dt.date | None = None
) -> ChecksSummary:
    """Check ``tables`` (default: every contract whose table is in the warehouse).

    With ``as_of``, tables that have an ``as_of`` column are restricted to that date; the
    others (``lignes_ij``, ``actions``) are checked whole. Never raises on a breach: the
    summary says which rules failed.
    """
    from expectations.contract import all_contracts, load_contract
    from flows.warehouse import table_exists, warehouse

    started = time.perf_counter()
    with warehouse(paths, read_only=True) as con:
        if tables:
            contracts = [load_contract(t) for t in tables]
            missing = [c.table for c in contracts if not table_exists(con, c.table)]
            if missing:
                raise ValueError(f"table(s) absente(s) de l'entrepôt : {', '.join(missing)}")
        else:
            contracts = [c for c in all_contracts() if table_exists(con, c.table)]
        s = session(paths)
        reports = []
        with s.lock:
            for contract in contracts:
                dated = as_of is not None and "as_of" in contract.column_names
                label = f"{contract.table} au {as_of:%d/%m/%Y}" if dated else contract.table
                reports.append(
                    s.check(
                        con,
                        contract.table,
                        where="as_of = $as_of" if dated else None,
                        params={"as_of": as_of} if dated else None,
                        label=f"ru check, {label}",
                    )
                )
            index = s.build_docs() if reports else None
    return ChecksSummary(as_of, reports, index, round(time.perf_counter() - started, 3))


CheckAsOfOption = as_of_option(
    "Ne contrôle que les lignes de la date d'arrêté D (AAAA-MM-JJ) des tables "
    "construites à une date ; lignes_ij et actions sont contrôlées en entier."
)


def check(
    tables: Annotated[
        list[str] | None,
        typer.Argument(help="Tables à contrôler (par défaut : toutes celles de l'entrepôt)."),
    ] = None,
    as_of: CheckAsOfOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Affiche le résumé en JSON.")] = False,
    data: DataOption = None,
) -> None:
    """Relance les contrôles de données (contrats expectations/contracts/*.yml).

    Écrit un résultat JSON par table dans controles/resultats/ et met à jour les Data Docs
    (controles/data_docs/index.html). Sort en erreur si une règle bloquante est enfreinte.
    """
    from expectations.contract import ContractError
    from flows.console import out
    from flows.settings import resolve_data_dir
    from flows.warehouse import WarehouseError

    paths = resolve_data_dir(data)
    try:
        summary = checks_at(paths, tables, as_of.date() if as_of else None)
    except (ContractError, WarehouseError, ValueError) as exc:
        fail(str(exc))
    if json_output:
        out.print_json(data=summary.as_dict())
    else:
        for r in summary.reports:
            state = "[green]ok[/]" if r.success else "[bold red]échec[/]"
            extra = f", {len(r.warnings)} avertissement(s)" if r.warnings else ""
            out.print(f"{r.table} : {state} — {_n(r.rows)} ligne(s), {r.duration_s:.1f} s{extra}")
            for line in [r.failure_message()] if not r.success else []:
                out.print(f"  {line}")
            for w in r.warnings:
                out.print(f"  [yellow]{w}[/]")
        out.print(f"Data Docs : {summary.docs_index}")
    if not summary.success:
        raise typer.Exit(1)


def check_date(con, paths: DataPaths, tables, as_of) -> str:
    """The data checks of the rows at ``as_of`` of each table built at a date (build, target,
    indicators): one slice per table; raises :class:`ChecksFailed` on a fail-level breach.
    Returns the summary line of the step: ``ok`` or ``ok, N avertissement(s)``."""
    reports = check_tables(
        con,
        [
            TableSlice(
                table,
                label=f"{table} au {as_of:%d/%m/%Y}",
                where="as_of = $as_of",
                params={"as_of": as_of},
            )
            for table in tables
        ],
        paths,
    )
    warnings = sum(len(r.warnings) for r in reports)
    return "ok" if not warnings else f"ok, {warnings} avertissement(s)"

"""``ru ingest``: load IJ payment and action extracts, losing nothing.

Every line read ends either in the Parquet lake (one file per ingested file, written
atomically; the warehouse's ``lignes_ij`` / ``actions`` are views over the lake files of the
``ok`` ingestions) or in ``quarantaine`` with its rules; ``ingestions`` records one row per
file, in the same DuckDB transaction as its quarantined lines and the views' new file list,
so a crash never leaves a half-loaded file counted as done (a lake file without its
``ingestions`` row is never listed). Large files are streamed in chunks cut at record boundaries. The clear NIR goes only to
the identity store. Parsing and rules are pure functions of ``transforms/raw``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli_common import DataOption, fail
from flows.settings import REFERENCE_DIR, ConfigError, DataPaths, pseudo_key, resolve_data_dir

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    import pyarrow as pa

    from transforms.raw.dialect import EncodingState
    from transforms.raw.lines import Provenance
    from transforms.raw.schema import References, SourceSpec

log = logging.getLogger("ru.ingest")

SQL_DIR = Path(__file__).resolve().parents[1] / "transforms" / "raw" / "sql"
# About 120,000 lines of an IJ extract per chunk. Under glibc's 32 MB ceiling for mmap'd
# allocations: the chunk's byte buffers are then reused from the heap instead of being
# mapped afresh (page faults on every copy); measured 10 to 15 % less CPU than 48 MB chunks.
CHUNK_BYTES = 24 * 1024 * 1024
_KEY_HASH_SEED = 20261031
# Rejected records are turned into quarantine rows by batches of about this many rows: the
# cost of the messages is mostly per call (one filter per broken rule), not per row.
QUARANTINE_BATCH_ROWS = 20_000
# Only quarantined rows are inserted now (accepted ones go to the lake): a small cache is
# enough, and it bounds what one file's transaction keeps in memory.
DUCKDB_MEMORY_LIMIT = "256MB"
PARQUET_BATCH_ROWS = 500_000
# Chunks of a CSV file loaded before its sha256 is known, their lake rows and quarantine
# rows kept in memory (about 30 MB each) until it says the file is new: the hash of a large
# file (0.9 s per GB) overlaps the loading instead of stalling it.
HELD_CHUNKS = 4
# ``ingestion_id`` of the rows built before the sha256 is known (replaced before writing).
_PENDING_ID = "sha256-en-cours"
EXTENSIONS = (".csv", ".csv.gz", ".parquet")
_DATE_IN_NAME = re.compile(r"^[a-z_]+?_(\d{8})(?:_|\.)")

# Statuses of a file in the summary. Only OK and REJETE are rows of `ingestions`.
OK, REJETE, DEJA_INGERE, IGNORE, INTROUVABLE, ERREUR = (
    "ok",
    "rejete",
    "deja_ingere",
    "ignore",
    "introuvable",
    "erreur",
)


class _HeaderRejected(Exception):
    pass


class _Unreadable(Exception):
    """The file's container cannot be read (truncated gzip, corrupt Parquet)."""


@dataclass
class FileResult:
    """What happened to one input file. ``regles``: quarantined lines per rule."""

    fichier: str
    chemin: str
    source: str | None
    statut: str
    ingestion_id: str | None = None
    encodage: str | None = None
    taille_octets: int | None = None
    lignes_lues: int = 0
    lignes_acceptees: int = 0
    lignes_quarantaine: int = 0
    regles: dict[str, int] = field(default_factory=dict)
    motif: str | None = None
    duree_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class IngestSummary:
    """The run: one :class:`FileResult` per input file, in processing order."""

    fichiers: list[FileResult]
    duree_s: float = 0.0

    @property
    def new_ingestions(self) -> dict[str, list[str]]:
        """Ingestion ids recorded by this run, per source (rejected files included)."""
        out: dict[str, list[str]] = {}
        for f in self.fichiers:
            if f.statut in (OK, REJETE) and f.ingestion_id and f.source:
                out.setdefault(f.source, []).append(f.ingestion_id)
        return out

    @property
    def lignes_lues(self) -> int:
        return sum(f.lignes_lues for f in self.fichiers)

    @property
    def lignes_acceptees(self) -> int:
        return sum(f.lignes_acceptees for f in self.fichiers)

    @property
    def lignes_quarantaine(self) -> int:
        return sum(f.lignes_quarantaine for f in self.fichiers)

    def regles(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for f in self.fichiers:
            total.update(f.regles)
        return dict(sorted(total.items()))

    def as_dict(self) -> dict:
        statuts = Counter(f.statut for f in self.fichiers)
        return {
            "fichiers": [f.as_dict() for f in self.fichiers],
            "totaux": {
                "fichiers": len(self.fichiers),
                "statuts": dict(sorted(statuts.items())),
                "lignes_lues": self.lignes_lues,
                "lignes_acceptees": self.lignes_acceptees,
                "lignes_quarantaine": self.lignes_quarantaine,
                "regles": self.regles(),
            },
            "duree_s": round(self.duree_s, 3),
        }


# --- discovery -------------------------------------------------------------------------


def source_of(name: str) -> SourceSpec | None:
    """The extract a file name belongs to (by prefix and extension), or None."""
    from transforms.raw.schema import SOURCES

    lower = name.lower()
    if not lower.endswith(EXTENSIONS):
        return None
    for spec in SOURCES:
        if lower.startswith(spec.prefix):
            return spec
    return None


def processing_order(path: Path) -> tuple[str, str]:
    """Files go by extraction date in their name (AAAAMMJJ), then by name."""
    m = _DATE_IN_NAME.match(path.name.lower())
    return (m.group(1) if m else "99999999", path.name)


def discover(inputs: list[Path]) -> tuple[list[tuple[Path, SourceSpec]], list[FileResult]]:
    """Files to ingest (sorted) and the inputs set aside (unknown names, missing paths)."""
    candidates: list[Path] = []
    skipped: list[FileResult] = []
    for item in inputs:
        if item.is_dir():
            candidates.extend(
                p for p in sorted(item.rglob("*")) if p.is_file() and not p.name.startswith(".")
            )
        elif item.is_file():
            candidates.append(item)
        else:
            skipped.append(
                FileResult(item.name, str(item), None, INTROUVABLE, motif="fichier introuvable")
            )
    seen: set[Path] = set()
    todo: list[tuple[Path, SourceSpec]] = []
    for path in candidates:
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        spec = source_of(path.name)
        if spec is None:
            skipped.append(
                FileResult(
                    path.name,
                    str(path),
                    None,
                    IGNORE,
                    motif="nom non reconnu (ij_paiements_AAAAMMJJ_*.csv|.csv.gz|.parquet "
                    "ou actions_AAAAMMJJ_*)",
                )
            )
            continue
        todo.append((path, spec))
    todo.sort(key=lambda t: processing_order(t[0]))
    return todo, skipped


def load_references(reference_dir: Path = REFERENCE_DIR) -> References:
    """Code lists of ``config/reference``: organismes and ELSM, IR_ASU_V, IR_NAT_V."""
    import polars as pl

    from transforms.raw.schema import References

    elsm = pl.read_csv(reference_dir / "elsm.csv", separator=";", infer_schema=False)
    asu = pl.read_csv(reference_dir / "snds" / "IR_ASU_V.csv", separator=";", infer_schema=False)
    nat = pl.read_csv(reference_dir / "snds" / "IR_NAT_V.csv", separator=";", infer_schema=False)
    return References(
        organismes=frozenset(elsm["code_organisme"].drop_nulls().to_list()),
        elsm=frozenset(elsm["elsm"].drop_nulls().to_list()),
        asu_nat=frozenset(int(x) for x in asu["ASU_NAT"].drop_nulls().to_list()),
        nat_ref=frozenset(int(x) for x in nat["PRS_NAT"].drop_nulls().to_list()),
    )


# --- warehouse ---------------------------------------------------------------------------


def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


WAREHOUSE_TABLES = ("quarantaine", "ingestions")
LAKE_VIEWS = ("lignes_ij", "actions")  # views over the lake (transforms.raw.lake)


def ensure_tables(con: duckdb.DuckDBPyConnection, paths: DataPaths) -> None:
    """Create the ingestion's tables from their contracts (no-op when they exist), then
    (re)create the views ``lignes_ij`` and ``actions`` over the lake files of the ``ok``
    ingestions, with paths resolved under ``paths`` (a moved data folder keeps working).

    A warehouse of an earlier version, where these two were tables, is migrated: the table is
    dropped when the lake files of its ingestions hold exactly its rows; otherwise nothing is
    dropped and :class:`flows.warehouse.WarehouseError` says so.
    """
    from expectations.contract import load_contract

    for table in WAREHOUSE_TABLES:
        con.execute(load_contract(table).ddl())
    for table in LAKE_VIEWS:
        _migrate_table_to_view(con, paths, table)
    refresh_views(con, paths)


def _lake_files(con: duckdb.DuckDBPyConnection, paths: DataPaths, source: str) -> list[Path]:
    """Lake files of the ``ok`` ingestions of ``source`` holding accepted lines."""
    from flows.warehouse import WarehouseError
    from transforms.raw.lake import lake_relpath

    rows = con.execute(_sql("fichiers_du_lac"), {"source": source}).fetchall()
    files = []
    for fichier, ingestion_id in rows:
        path = paths.root / lake_relpath(source, fichier, ingestion_id)
        if not path.is_file():
            raise WarehouseError(
                f"fichier du lac manquant : {path} (ingestion de {fichier}, "
                f"{ingestion_id[:16]}) ; restaurez le dossier lake/ de {paths.root}"
            )
        files.append(path.resolve())
    return files


def refresh_views(con: duckdb.DuckDBPyConnection, paths: DataPaths) -> None:
    """(Re)create ``lignes_ij`` and ``actions``: the contract's columns over the lake files
    of the ``ok`` rows of ``ingestions`` (explicit list; none: an empty, typed view). Run in
    the transaction that records an ingestion, so the view and the row commit together."""
    from expectations.contract import load_contract
    from transforms.raw.lake import LAKE_TABLES, view_sql

    for table in LAKE_VIEWS:
        columns = [(c.name, c.type) for c in load_contract(table).columns]
        files = [str(f) for f in _lake_files(con, paths, LAKE_TABLES[table])]
        con.execute(view_sql(table, columns, files))


def _migrate_table_to_view(con: duckdb.DuckDBPyConnection, paths: DataPaths, table: str) -> None:
    from flows.warehouse import WarehouseError
    from transforms.raw.lake import LAKE_TABLES

    kind = con.execute(
        "select table_type from information_schema.tables "
        "where table_name = ? and table_schema = 'main'",
        [table],
    ).fetchall()
    if not kind or kind[0][0] == "VIEW":
        return
    rows = con.execute(f'select count(*) from "{table}"').fetchall()[0][0]
    source = LAKE_TABLES[table]
    in_lake = con.execute(
        "select coalesce(sum(lignes_acceptees), 0) from ingestions "
        "where source = $source and statut = 'ok'",
        {"source": source},
    ).fetchall()[0][0]
    files = _lake_files(con, paths, source)
    if rows != in_lake:
        raise WarehouseError(
            f"la table {table} ({rows} lignes) ne correspond pas au lac ({in_lake} lignes "
            f"acceptées dans {len(files)} fichier(s)) : elle n'est pas remplacée par une vue ; "
            "réingérez les extractions dans un dossier de données neuf"
        )
    log.info("%s : table remplacée par une vue sur le lac (%d lignes)", table, rows)
    con.execute(f'drop table "{table}"')


def add_lake_file(
    con: duckdb.DuckDBPyConnection,
    paths: DataPaths,
    table: str,
    query: str,
    *,
    fichier: str,
    params: dict | None = None,
) -> str:
    """Add already-valid rows to ``lignes_ij`` or ``actions`` (benchmarks, tests): the rows of
    ``query`` become one lake file with its ``ok`` row of ``ingestions``, in one transaction.

    The query's columns are taken by name (like ``insert … by name``): a contract column it
    lacks is null, except ``ligne`` (row number + 1); ``ingestion_id`` and ``fichier`` are
    set here. No rule is checked: real extracts go through :func:`ingest_paths`. Returns the
    ingestion id (a sha256 of the name and time, not of file bytes).
    """
    from expectations.contract import load_contract
    from transforms.raw.lake import LAKE_TABLES, copy_to_parquet_sql, lake_relpath

    source = LAKE_TABLES[table]
    start = datetime.now()
    ingestion_id = hashlib.sha256(f"{table}|{fichier}|{start.isoformat()}".encode()).hexdigest()
    described = con.execute(f"select * from ({query}) limit 0", params or {})
    have = {d[0] for d in described.description}
    described.fetchall()
    shaped = []
    for c in load_contract(table).columns:
        if c.name in ("ingestion_id", "fichier"):
            value = "$ingestion_id" if c.name == "ingestion_id" else "$fichier"
        elif c.name in have:
            value = f'q."{c.name}"'
        elif c.name == "ligne":
            value = "row_number() over () + 1"
        else:
            value = "null"
        shaped.append(f'cast({value} as {c.type}) as "{c.name}"')
    select = f"select {', '.join(shaped)} from ({query}) as q"
    final = paths.root / lake_relpath(source, fichier, ingestion_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    con.begin()
    try:
        values = {**(params or {}), "ingestion_id": ingestion_id, "fichier": fichier}
        con.execute(copy_to_parquet_sql(select, str(tmp)), values).fetchall()
        n = con.execute(f"select count(*) from read_parquet('{tmp}')").fetchall()[0][0]
        tmp.replace(final)
        con.execute(
            _sql("ingestion_enregistree"),
            {
                "ingestion_id": ingestion_id,
                "fichier": fichier,
                "chemin": str(final.resolve()),
                "source": source,
                "taille_octets": final.stat().st_size,
                "encodage": "Parquet",
                "lignes_lues": n,
                "lignes_acceptees": n,
                "lignes_quarantaine": 0,
                "statut": OK,
                "motif": "ajout direct au lac (add_lake_file)",
                "debut": start,
                "fin": datetime.now(),
            },
        )
        refresh_views(con, paths)
        con.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            con.rollback()
        tmp.unlink(missing_ok=True)
        raise
    return ingestion_id


_CONSTANT_COLUMNS = ("ingestion_id", "fichier")


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, **params) -> None:
    """Append ``frame`` to ``table`` (by column name). Columns constant over a file
    (``ingestion_id``, ``fichier``) travel as bound parameters, not as 5 M copies."""
    import polars as pl

    if frame.height == 0:
        return
    if table not in WAREHOUSE_TABLES:
        raise ValueError(table)
    constants = {c: frame[c][0] for c in _CONSTANT_COLUMNS if c in frame.columns}
    lot = frame.drop(list(constants)).to_arrow(compat_level=pl.CompatLevel.newest())
    extra = "".join(f", ${c} as {c}" for c in constants)
    values = dict(constants)
    if table == "quarantaine":
        extra += ", $ts as quarantaine_le"
        values["ts"] = params["ts"]
    con.register("_lot", lot)
    try:
        con.execute(f'insert into "{table}" by name select *{extra} from _lot', values)
    finally:
        con.unregister("_lot")


def _sha256(path: Path, stop=None) -> tuple[str, int]:
    """sha256 and size of a file (``stop``: an Event that abandons the reading)."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(8 * 1024 * 1024):
            if stop is not None and stop.is_set():
                raise _Abandoned
            h.update(block)  # releases the GIL
            size += len(block)
    return h.hexdigest(), size


class _Abandoned(Exception):
    pass


class _AlreadyIngested(Exception):
    """The file's bytes were ingested before: ``known`` = (fichier, statut, date)."""

    def __init__(self, known: tuple):
        self.known = known


class _HashUnreadable(Exception):
    """The file could not be read to compute its sha256 (``error``: the OSError)."""

    def __init__(self, error: OSError):
        self.error = error


class _FileIdentity:
    """A file's sha256 (its ingestion id) and size, computed in a background thread from
    construction: the reading and the rules of the first chunks run meanwhile, on the other
    core. :meth:`resolve` (main thread, in the file's transaction) waits for it and checks
    the ``ingestions`` table: nothing of the file is written before."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        import threading

        self.con = con
        self.path = path
        self.sha: str | None = None  # set once the file is known to be new
        self.sha_seen: str | None = None
        self.size: int | None = None
        self.waited_s = 0.0
        self._stop = threading.Event()
        self._outcome: tuple[str, int] | BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcome = _sha256(self.path, self._stop)
        except BaseException as exc:  # handed to resolve()
            self._outcome = exc

    def ready(self) -> bool:
        """True when :meth:`resolve` would not wait."""
        return self.sha is not None or not self._thread.is_alive()

    def resolve(self) -> str:
        """The sha256; raises _AlreadyIngested or _HashUnreadable (once resolved, again)."""
        if self.sha is None:
            t0 = time.perf_counter()
            self._thread.join()
            self.waited_s += time.perf_counter() - t0
            if isinstance(self._outcome, OSError):
                raise _HashUnreadable(self._outcome)
            if isinstance(self._outcome, BaseException):
                raise self._outcome
            sha, size = self._outcome
            rows = self.con.execute(_sql("ingestion_connue"), {"sha256": sha}).fetchall()
            self.sha_seen, self.size = sha, size
            if rows:
                self._outcome = _AlreadyIngested(rows[0])
                raise self._outcome
            self.sha = sha
        return self.sha

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# --- reading ------------------------------------------------------------------------------


class _CsvReader:
    """Stream a CSV (or .csv.gz) file as chunks of records cut at record boundaries.

    ``decode``: ``"detect"`` (the contract's rule, may raise EncodingError/RestartAsCp1252),
    ``"cp1252"`` (forced after a restart) or ``"replace"`` (refused file: texts for the
    quarantine, invalid bytes shown as U+FFFD).
    """

    def __init__(self, path: Path, chunk_bytes: int, decode: str = "detect"):
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.decode_mode = decode
        self.encoding: str | None = None
        self.header: list[str] | None = None
        self.timings: Counter[str] = Counter()

    def _open(self):
        import gzip

        raw = self.path.open("rb")
        if self.path.name.lower().endswith(".gz"):
            return raw, gzip.GzipFile(fileobj=raw, mode="rb")
        return raw, raw

    def _read(self, fh) -> bytes:
        import gzip
        import zlib

        try:
            return fh.read(self.chunk_bytes)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise _Unreadable(f"gzip illisible ou tronqué : {exc}") from exc

    def _blocks(self) -> Iterator[tuple[bytes, EncodingState, int, int]]:
        """Blocks of whole records: ``(bytes, encoding state, offset of the block in the
        file after the BOM, raw bytes consumed so far)``; the BOM is skipped and the state is
        set from the file's first bytes (``decode``: see the class).

        A block ends at a record end; the incomplete record after it starts the next block.
        Without double quotes (the common case) the cut is the block's last newline and the
        block is copied once; with quotes, quotes are counted from the record start
        (``cut_at_record_end``).
        """
        from transforms.raw.dialect import CP1252, EncodingState, cut_at_record_end, start_state

        raw, fh = self._open()
        try:
            block = self._read(fh)
            state, skip = start_state(block)
            if self.decode_mode == "cp1252":
                state = EncodingState(encoding=CP1252, forced=True)
            if skip:
                block = block[skip:]
            offset = skip
            pending = b""  # the start of a record cut by the end of the previous read
            empty = True
            while True:
                if not block:  # end of file: the last record, without its newline
                    if pending or empty:  # an empty file is one empty block (no header)
                        yield pending, state, offset, raw.tell()
                    return
                if b'"' in block or b'"' in pending:
                    joined = pending + block
                    cut = cut_at_record_end(joined)
                    piece, pending = joined[:cut], joined[cut:]
                else:
                    nl = block.rfind(b"\n")
                    if nl < 0:
                        piece, pending = b"", pending + block
                    elif pending:
                        piece = b"".join((pending, memoryview(block)[: nl + 1]))
                        pending = block[nl + 1 :]
                    else:
                        piece = block if nl + 1 == len(block) else block[: nl + 1]
                        pending = block[nl + 1 :]
                if piece:
                    empty = False
                    yield piece, state, offset, raw.tell()
                    offset += len(piece)
                block = self._read(fh)
        finally:
            fh.close()
            raw.close()

    def chunks(self) -> Iterator[tuple[pl.DataFrame, int]]:
        """(records with ``ligne``/``texte``, raw bytes consumed) per chunk; sets header."""
        from transforms.raw.dialect import ENCODING_LABELS
        from transforms.raw.parsing import parse_header, split_records

        line_no, last_pos = 1, 0
        for piece, state, offset, pos in self._blocks():
            t0 = time.perf_counter()
            if self.decode_mode == "replace":
                text = piece.decode("utf-8", errors="replace")
            else:
                text = state.decode(piece, offset)
                self.encoding = ENCODING_LABELS[state.encoding]
            if self.header is None:
                end = text.find("\n")
                head = text if end < 0 else text[:end]
                self.header = parse_header(head)
                text = "" if end < 0 else text[end + 1 :]
                line_no = 2
            records = split_records(text, line_no)
            line_no += text.count("\n")
            self.timings["lecture"] += time.perf_counter() - t0
            yield records, pos - last_pos
            last_pos = pos

    def utf8_blocks(
        self, on_header: Callable[[list[str]], list[str]]
    ) -> Iterator[tuple[bytes, int, int, list[str], int]]:
        """(UTF-8 block, its first physical line, its line ends, column names, raw bytes
        consumed) per chunk, in order: the sequential part of the reading (bytes, encoding, header, line
        numbers); :func:`_fields_of_block` then splits each block, in any thread.

        ``on_header(header)`` is called once with the normalised header and returns the
        column names (it may raise to refuse the file). Windows-1252 is transcoded to UTF-8
        in one call (an ASCII block is the same text in every allowed encoding).
        """
        from transforms.raw.dialect import CP1252, ENCODING_LABELS
        from transforms.raw.native import count_newlines
        from transforms.raw.parsing import parse_header

        line_no, last_pos = 1, 0
        names: list[str] | None = None
        for piece, state, offset, pos in self._blocks():
            t0 = time.perf_counter()
            if piece.isascii():
                # Same text in every allowed encoding; the decision is not changed.
                self.encoding = ENCODING_LABELS[state.encoding]
                data = piece
            else:
                text = state.decode(piece, offset)
                self.encoding = ENCODING_LABELS[state.encoding]
                data = text.encode("utf-8") if state.encoding == CP1252 else piece
            if names is None:
                end = data.find(b"\n")
                head = data if end < 0 else data[:end]
                self.header = parse_header(head.decode("utf-8"))
                names = on_header(self.header)
                data = b"" if end < 0 else data[end + 1 :]
                line_no = 2
            newlines = count_newlines(data)
            self.timings["lecture"] += time.perf_counter() - t0
            yield data, line_no, newlines, names, pos - last_pos
            line_no += newlines
            last_pos = pos


def _fields_of_block(
    data: bytes, first_line: int, newlines: int, names: list[str], typed: dict
) -> tuple[pl.DataFrame, Callable[[pl.Series], pl.Series] | None]:
    """(fields, texts of lines or None) of a UTF-8 block starting at physical line
    ``first_line`` and holding ``newlines`` line ends. Without double quotes it is split in compiled code
    (:func:`transforms.raw.parsing.read_plain_block`: all columns as strings, the columns of
    ``typed`` also typed; ``texte`` left out and given by the returned function for the
    lines that need it); otherwise it takes the exact path (``split_records`` +
    ``split_fields``, with ``texte``)."""
    from transforms.raw.parsing import read_plain_block, split_fields, split_records

    fast = read_plain_block(data, names, first_line, typed, newlines)
    if fast is not None:
        fields, index = fast
        return fields, index.texts
    records = split_records(data.decode("utf-8"), first_line)
    return (split_fields(records, names) if names else records), None


# Threads that split and check blocks at the same time (a checked block of 24 MB is about
# 120 MB in memory: at most one more than this are checked or waiting beyond the one being
# written; with one fewer waiting, the writing thread sometimes waited: +0.3 s on 5 M lines).
PARSE_WORKERS = 2


class _InOrder:
    """``fn(item)`` for each of ``items``, computed by ``workers`` threads, given back in the
    order of ``items``. A feeding thread (named ``lecture``) draws the items at once (the
    caller may do something else before asking for the first): reading block k+1 and
    checking blocks k+1, k+2 overlap the outputs of block k (the block reader, Polars and
    numpy release the GIL).

    Memory: at most ``workers`` + 1 results are being computed or waiting, beyond the one
    the caller holds, and one more item is read ahead. An exception of ``items`` or of ``fn``
    is raised here, in order. :meth:`close` (also at the end, or on an exception) stops the
    feeding, closes ``items`` in its thread, drops what has not started and waits for the
    rest.
    """

    _END = object()

    def __init__(self, fn: Callable, items: Iterator, workers: int):
        import queue
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.fn, self.items = fn, items
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="analyse")
        self.slots = threading.Semaphore(workers + 1)
        self.q: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.closed = False
        self.feeder = threading.Thread(target=self._feed, name="lecture", daemon=True)
        self.feeder.start()

    def _feed(self) -> None:
        try:
            for item in self.items:
                while not self.slots.acquire(timeout=0.1):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                self.q.put(self.pool.submit(self.fn, item))
            self.q.put(self._END)
        except BaseException as exc:  # handed to the consumer, raised there in order
            self.q.put(exc)
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()

    def __iter__(self):
        return self

    def __next__(self):
        if self.closed:
            raise StopIteration
        got = self.q.get()
        if got is self._END:
            self.close()
            raise StopIteration
        if isinstance(got, BaseException):
            self.close()
            raise got
        try:
            result = got.result()
        except BaseException:
            self.close()
            raise
        self.slots.release()
        return result

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop.set()
        self.feeder.join()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _parquet_chunks(path: Path) -> Iterator[tuple[pl.DataFrame, int, list[str]]]:
    """(records shaped like split_fields, bytes, normalised header) per Parquet batch."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    from transforms.raw.parsing import frame_from_table, normalise_name

    try:
        pf = pq.ParquetFile(path)
        header = [normalise_name(n) for n in pf.schema_arrow.names]
        n_groups = max(pf.metadata.num_row_groups, 1)
        batches = pf.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except (pa.ArrowException, OSError) as exc:
        raise _Unreadable(f"Parquet illisible : {exc}") from exc
    size = path.stat().st_size
    line = 2
    emitted = False
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise _Unreadable(f"Parquet illisible : {exc}") from exc
        if batch is None:
            break
        frame = frame_from_table(pl.from_arrow(batch), line)
        line += frame.height
        emitted = True
        yield frame, size // n_groups, header
    if not emitted:
        empty = pl.DataFrame({n: pl.Series([], dtype=pl.String) for n in pf.schema_arrow.names})
        yield frame_from_table(empty, line), size, header


# --- one file ------------------------------------------------------------------------------


@dataclass
class _Context:
    con: duckdb.DuckDBPyConnection
    paths: DataPaths
    key: bytes
    refs: References
    chunk_bytes: int
    on_progress: Callable[[int], None] | None
    # FLX_DIS_DTD values present in each table (committed rows): a chunk whose dates are
    # all new cannot hold a key accepted by an earlier file.
    dates_by_table: dict[str, set] = field(default_factory=dict)

    def known_dates(self, table: str) -> set:
        if table not in self.dates_by_table:
            rows = self.con.execute(f'select distinct "FLX_DIS_DTD" from "{table}"').fetchall()
            self.dates_by_table[table] = {r[0] for r in rows}
        return self.dates_by_table[table]


class _FileLoad:
    """Loads one file inside the current transaction; counts what it does."""

    def __init__(
        self, ctx: _Context, path: Path, spec: SourceSpec, ident: _FileIdentity, start: datetime
    ):
        from expectations.contract import load_contract
        from transforms.raw.pseudo import Pseudonymiser
        from transforms.raw.sorted_runs import SortedRuns

        self.ctx = ctx
        self.path = path
        self.spec = spec
        self.ident = ident
        self.start = start
        self._prov: Provenance | None = None
        contract = load_contract(spec.table)
        self.columns = [(c.name, c.type) for c in contract.columns]
        self.read = 0
        self.accepted = 0
        self.quarantined = 0
        self.rules: Counter[str] = Counter()
        self.pseudo = Pseudonymiser(ctx.key)  # the file's identities, until it is stored
        self._rejected: list[pl.DataFrame] = []  # rejected records not quarantined yet
        self._held: list[pl.DataFrame] = []  # lake rows built before the sha256 was known
        self._rejected_rows = 0
        self.seen_keys: list[pl.DataFrame] = []  # accepted keys of this file, with hash _h
        self.seen_hashes = SortedRuns()
        self.lake_tmp: Path | None = None
        self.lake_final: Path | None = None
        self.writer = None  # opened in the lake thread (self._pool) on the first chunk
        self._pool = None
        self._pending = None  # the lake thread's last task
        self.encoding: str | None = None
        self.timings: Counter[str] = Counter()

    @property
    def sha(self) -> str:
        """The file's sha256 (waits for it; raises _AlreadyIngested: see _FileIdentity)."""
        return self.ident.resolve()

    @property
    def prov(self) -> Provenance:
        """Provenance of the file's rows (its ingestion id is the sha256: waits for it)."""
        from transforms.raw.lines import Provenance

        if self._prov is None:
            self._prov = Provenance(
                ingestion_id=self.sha, fichier=self.path.name, source=self.spec.source
            )
        return self._prov

    # quarantine of whole files ----------------------------------------------------------
    def reject_all(self, rule: str, detail: str) -> None:
        """Quarantine every record of the file with ``rule`` (texts decoded leniently)."""
        from transforms.raw.lines import file_level_rejection
        from transforms.raw.parsing import split_fields

        if self.path.name.lower().endswith(".parquet"):
            for fields, _, _ in _parquet_chunks(self.path):
                self._quarantine(file_level_rejection(fields, rule, detail, self.prov))
            return
        reader = _CsvReader(self.path, self.ctx.chunk_bytes, decode="replace")
        for records, _ in reader.chunks():
            names = _unique_names(reader.header or [])
            fields = split_fields(records, names) if names else records
            self._quarantine(file_level_rejection(fields, rule, detail, self.prov))

    def _quarantine(self, rows: pl.DataFrame) -> None:
        self.read += rows.height
        self.quarantined += rows.height
        for regles in rows["regles"].to_list():
            self.rules.update(regles)
        _insert(self.ctx.con, "quarantaine", rows, ts=self.start)

    # normal load -------------------------------------------------------------------------
    def load(self, decode: str) -> None:
        """Stream, check and load every chunk. Raises _HeaderRejected on a bad header.

        DuckDB inserts run in a worker thread (DuckDB releases the GIL), overlapping the
        parsing of the next chunk; every insert is done when this returns or raises.
        """
        from concurrent.futures import ThreadPoolExecutor

        self.ctx.known_dates(self.spec.table)  # before the worker thread uses ``con``
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="entrepot")
        self._db_pending = None
        done = False
        try:
            self._load(decode)
            done = True
        finally:
            self._close_db_worker(raise_errors=done)

    def _submit_db(self, fn) -> None:
        self._wait_db()
        self._db_pending = self._db_pool.submit(fn)

    def _wait_db(self) -> None:
        if self._db_pending is not None:
            pending, self._db_pending = self._db_pending, None
            pending.result()

    def _close_db_worker(self, raise_errors: bool) -> None:
        try:
            self._wait_db()
        except Exception:
            if raise_errors:
                raise
            log.debug("insertion interrompue", exc_info=True)
        finally:
            self._db_pool.shutdown(wait=True)

    def _load(self, decode: str) -> None:
        from transforms.raw.native import typed_columns
        from transforms.raw.parsing import map_header
        from transforms.raw.rules import check_records, mark_shared_keys

        if self.path.name.lower().endswith(".parquet"):
            self.encoding = "Parquet"
            self.ident.resolve()
            for fields, nbytes, header in _parquet_chunks(self.path):
                self._check_header(header, map_header)
                self._chunk(self._check(fields, len(header)), header)
                self._progress(nbytes)
            self._flush_quarantine(len(header))
            return
        reader = _CsvReader(self.path, self.ctx.chunk_bytes, decode=decode)
        reader.timings = self.timings

        names: list[str] = []

        def on_header(header: list[str]) -> list[str]:
            self.encoding = reader.encoding
            self._check_header(header, map_header)
            names.extend(_unique_names(header))
            return names

        typed = typed_columns(self.spec)

        def check_block(item):
            data, first_line, newlines, block_names, nbytes = item
            t0 = time.perf_counter()
            fields, texts = _fields_of_block(data, first_line, newlines, block_names, typed)
            t1 = time.perf_counter()
            checked = check_records(fields, self.spec, self.ctx.refs, len(block_names))
            # The chunk's own repeated keys too: the writing thread is the busiest one.
            checked = mark_shared_keys(checked, self.spec)
            return checked, nbytes, texts, t1 - t0, time.perf_counter() - t1

        # Blocks k+1 and k+2 are split and checked by two threads while block k is
        # deduplicated, pseudonymised and written (the block reader, Polars and numpy
        # release the GIL); the blocks themselves are read in order by a third one.
        chunks = _InOrder(check_block, reader.utf8_blocks(on_header), PARSE_WORKERS)
        try:
            # The first chunks are read, checked and split while the sha256 is finished;
            # nothing is written before it says the file is new (see _chunk).
            for checked, nbytes, texts, t_read, t_rules in chunks:
                self.timings["lecture"] += t_read
                self.timings["regles"] += t_rules
                self.encoding = reader.encoding
                self._chunk(checked, names, texts)
                self._progress(nbytes)
        finally:
            chunks.close()
        self._release(len(names))
        self._flush_quarantine(len(names))

    def _check(self, fields: pl.DataFrame, n_fields: int) -> pl.DataFrame:
        """Typed values and rule flags of a chunk (``transforms.raw.rules.check_records``)."""
        from transforms.raw.rules import check_records

        t0 = time.perf_counter()
        checked = check_records(fields, self.spec, self.ctx.refs, n_fields)
        self.timings["regles"] += time.perf_counter() - t0
        return checked

    def _progress(self, nbytes: int) -> None:
        if self.ctx.on_progress is not None:
            self.ctx.on_progress(nbytes)

    def _check_header(self, header: list[str], map_header) -> None:
        if getattr(self, "_header_ok", False):
            return
        hmap = map_header(header, self.spec)
        if not header or header == [""]:
            raise _HeaderRejected("en-tête absent (fichier vide)")
        if not hmap.ok:
            raise _HeaderRejected(hmap.problem())
        self.extras = [n for n in _unique_names(header) if n not in set(self.spec.names)]
        self._header_ok = True

    def _chunk(
        self,
        checked: pl.DataFrame,
        names: list[str],
        texts: Callable[[pl.Series], pl.Series] | None = None,
    ) -> None:
        """Load the results of one checked chunk (:meth:`_check`). ``texts``: original text
        of lines by number, when the chunk has no ``texte`` column (needed for rejected
        lines only).

        Until the file's sha256 is known (its ingestion id, and whether it is new), up to
        HELD_CHUNKS chunks are split and their lake rows held, with a provisional
        ``ingestion_id``; then the hash is waited for and the held rows written
        (:meth:`_release`). Doublons and pseudonymisation need no id: they are done at once.
        """
        import polars as pl

        from transforms.raw.lines import split_chunk
        from transforms.raw.rules import v

        t1 = time.perf_counter()
        keys = (
            checked.select(pl.col("rejete"), *(pl.col(v(k)).alias(k) for k in self.spec.key))
            .filter(~pl.col("rejete"))
            .drop("rejete")
        )
        existing = self._existing_keys(keys)
        t2 = time.perf_counter()
        result = split_chunk(
            checked,
            existing,
            spec=self.spec,
            columns=self.columns,
            extras=self.extras,
            pseudo=self.pseudo,
            prov=self._prov or self._provisional_prov(),
            texts=texts,
        )
        t3 = time.perf_counter()
        self.timings["doublons"] += t2 - t1
        self.timings["pseudonymisation_et_sorties"] += t3 - t2
        self._remember_keys(result.accepted)
        self.read += checked.height
        self.accepted += result.accepted.height
        self.quarantined += result.rejected.height
        self._rejected.append(result.rejected)
        self._rejected_rows += result.rejected.height
        self._held.append(result.lake)
        if self._prov is not None or self.ident.ready() or len(self._held) >= HELD_CHUNKS:
            self._release(len(names))

    def _provisional_prov(self) -> Provenance:
        from transforms.raw.lines import Provenance

        return Provenance(_PENDING_ID, fichier=self.path.name, source=self.spec.source)

    def _release(self, n_fields: int) -> None:
        """Write the held lake rows (waiting for the sha256 if need be: it may raise
        _AlreadyIngested, nothing being written yet) and the quarantine rows of a full
        batch."""
        import polars as pl

        if self._prov is None:
            ingestion_id = self.prov.ingestion_id  # waits for the sha256 (timed there)
            self._held = [
                lake.with_columns(pl.lit(ingestion_id, dtype=pl.String).alias("ingestion_id"))
                for lake in self._held
            ]
        held, self._held = self._held, []
        t1 = time.perf_counter()
        for lake in held:
            self._write_lake(lake)
        self.timings["ecriture_parquet"] += time.perf_counter() - t1
        if self._rejected_rows >= QUARANTINE_BATCH_ROWS:
            self._flush_quarantine(n_fields)  # timed there

    def _flush_quarantine(self, n_fields: int) -> None:
        """Quarantine rows of the rejected records gathered so far, inserted by the worker
        thread (rules counted here)."""
        import polars as pl

        from transforms.raw.lines import quarantine_rows

        if not self._rejected:
            return
        t0 = time.perf_counter()
        batch = pl.concat(self._rejected, how="diagonal_relaxed")
        self._rejected, self._rejected_rows = [], 0
        rows = quarantine_rows(batch, self.spec, self.ctx.refs, n_fields, self.prov)
        for regles in rows["regles"].to_list():
            self.rules.update(regles)
        t1 = time.perf_counter()
        self._submit_db(lambda: self._insert_chunk(rows))
        self.timings["quarantaine"] += t1 - t0
        self.timings["attente_insertion_duckdb"] += time.perf_counter() - t1

    def _insert_chunk(self, quarantined: pl.DataFrame) -> None:
        """Worker thread: append quarantined rows (the main thread does not use ``con``
        now). Accepted rows go to the lake only (``lignes_ij``/``actions`` are views)."""
        t0 = time.perf_counter()
        _insert(self.ctx.con, "quarantaine", quarantined, ts=self.start)
        self.timings["insertion_duckdb"] += time.perf_counter() - t0

    def _existing_keys(self, keys: pl.DataFrame) -> pl.DataFrame:
        """Keys of ``keys`` already accepted: by earlier files, or by earlier chunks of this
        one (same transaction).

        Earlier files: a key includes FLX_DIS_DTD, so when none of the chunk's dates is in
        the table yet (a new nightly extract) no key can exist and nothing is looked up.
        Earlier chunks: their keys and key hashes are kept in memory.
        """
        import polars as pl

        if keys.height == 0:
            return keys.clear()
        found: list[pl.DataFrame] = []
        dates = set(keys.get_column("FLX_DIS_DTD").drop_nulls().unique().to_list())
        if dates & self.ctx.known_dates(self.spec.table):
            found.append(self._lookup(keys))
        if self.seen_keys:
            import numpy as np

            hashes = keys.hash_rows(seed=_KEY_HASH_SEED)
            # Sorted queries walk the sorted array in order: ten times faster than random
            # probes into millions of hashes (cache misses).
            h = np.sort(hashes.to_numpy())
            found_hashes = self.seen_hashes.found(h)
            if len(found_hashes):
                hits = hashes.is_in(pl.Series(found_hashes, dtype=pl.UInt64).implode())
                candidates = keys.with_columns(_h=hashes).filter(hits)
                wanted = candidates.get_column("_h").implode()
                holders = self._chunks_with(found_hashes)
                if holders:
                    same = pl.concat(
                        [f.filter(pl.col("_h").is_in(wanted)) for f in holders],
                        how="vertical_relaxed",
                    ).cast(dict(keys.schema))
                    found.append(
                        candidates.join(same, on=[*keys.columns, "_h"], how="semi").drop("_h")
                    )
        found = [f for f in found if f.height]
        return pl.concat(found).unique() if found else keys.clear()

    def _chunks_with(self, hashes) -> list[pl.DataFrame]:
        """The kept key chunks holding one of ``hashes`` (sorted): a binary search in each
        chunk's sorted hashes instead of a scan of every key kept (millions in a big file)."""
        import numpy as np

        out = []
        for f in self.seen_keys:
            h = f.get_column("_h").to_numpy()
            pos = np.searchsorted(h, hashes).clip(max=len(h) - 1)
            if (h[pos] == hashes).any():
                out.append(f)
        return out

    def _lookup(self, keys: pl.DataFrame) -> pl.DataFrame:
        """Exact lookup of ``keys`` in the table (this transaction's rows included)."""
        import polars as pl

        self._wait_db()
        con = self.ctx.con
        con.register("_cles", keys.unique().to_arrow())
        try:
            found = con.sql(_sql(f"cles_existantes_{self.spec.table}")).to_arrow_table()
        finally:
            con.unregister("_cles")
        out = pl.from_arrow(found)
        return out.cast(keys.schema) if out.height else keys.clear()

    def _remember_keys(self, accepted: pl.DataFrame) -> None:
        """Keep this chunk's accepted keys, and their hashes in the sorted runs."""
        if accepted.height:
            import polars as pl

            keys = accepted.select(list(self.spec.key))
            hashes = keys.hash_rows(seed=_KEY_HASH_SEED)
            # Code columns (the caisse) kept as categories: 4 bytes a row instead of a 16-byte
            # string view, on a list that grows with the file (25 M lines: 300 MB).
            few = [c.name for c in self.spec.columns if c.low_cardinality and c.name in keys]
            kept = keys.with_columns(pl.col(few).cast(pl.Categorical), _h=hashes)
            # Sorted by hash: the exact check of a found hash is a binary search per chunk.
            self.seen_keys.append(kept.sort("_h"))
            self.seen_hashes.add(hashes.to_numpy())

    def _write_lake(self, lake: pl.DataFrame) -> None:
        """Append a chunk to the lake file, in the lake thread (pyarrow releases the GIL):
        the next chunk's outputs overlap the Parquet encoding. The file is opened there too,
        its encoding chosen on its first chunk (counting distinct values takes a while: not
        on the busiest thread). At most one write is pending."""
        from concurrent.futures import ThreadPoolExecutor

        import polars as pl
        import pyarrow.parquet as pq

        # Newest Arrow types (string views): no conversion copy; same Parquet columns.
        table = lake.to_arrow(compat_level=pl.CompatLevel.newest())
        if self._pool is None:
            from transforms.raw.lake import lake_relpath
            from transforms.raw.lines import never_null_columns

            rel = lake_relpath(self.spec.source, self.path.name, self.sha)
            self.lake_final = self.ctx.paths.root / rel
            self.lake_final.parent.mkdir(parents=True, exist_ok=True)
            self.lake_tmp = self.lake_final.with_name(f".{self.lake_final.name}.tmp")
            never_null = never_null_columns(self.spec)

            def open_and_write() -> None:
                schema, options = _parquet_encoding(lake, never_null)
                self.writer = pq.ParquetWriter(self.lake_tmp, schema, **options)
                self.writer.write_table(table.cast(schema))

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lac")
            self._pending = self._pool.submit(open_and_write)
            return
        self._pending.result()  # raises an error of the previous task
        self._pending = self._pool.submit(
            lambda: self.writer.write_table(table.cast(self.writer.schema))
        )

    def _drain(self) -> None:
        """Wait for the lake thread and close the file (raises an error of the writing)."""
        if self._pool is None:
            return
        try:
            self._pending.result()
        finally:
            self._pending = None
            self._pool.shutdown(wait=True)
            self._pool = None
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    def finish_lake(self) -> None:
        """Close the lake file and move it in place (before the commit: see module doc)."""
        if self._pool is not None:
            self._drain()
            self.lake_tmp.replace(self.lake_final)

    def abort_lake(self) -> None:
        try:
            self._drain()
        except Exception:
            log.debug("écriture du lac interrompue", exc_info=True)
        if self.lake_tmp is not None and self.lake_tmp.exists():
            self.lake_tmp.unlink()

    def store_identities(self, ident_con: duckdb.DuckDBPyConnection) -> None:
        identities = self.pseudo.identities()
        if identities.height == 0:
            return
        ident_con.register("_identites", identities.to_arrow())
        try:
            ident_con.execute(_sql("identites_nouvelles"))
        finally:
            ident_con.unregister("_identites")


# Columns whose min/max statistics are written besides the dates: the organisation codes
# queries filter on (per caisse, per ELSM).
STATISTICS_CODES = ("ORG_AFF_COD", "ELSM")


def _parquet_encoding(first: pl.DataFrame, never_null: set[str]) -> tuple[pa.Schema, dict]:
    """Arrow schema and Parquet options of a lake file, chosen on its first chunk. Measured
    on the 5-million-line benchmark (Parquet encoding alone, one thread: 4.1 -> 3.3 s):

    - dictionary encoding only for the columns with few distinct values (on identifiers it
      is built, then abandoned: pure cost), and no zstd on them (their pages are small
      already: compressing them cost time for 0.2 byte a row);
    - amounts as 64-bit integers (cents, the Parquet DECIMAL form for 12 digits) in delta
      encoding, like ``ligne``: smaller than zstd on 16-byte decimals, three times faster;
    - the columns accepted rows always fill (``never_null``) declared REQUIRED: no
      definition levels to encode (a null there would stop the writing: an invariant);
    - min/max statistics only for the dates and the organisation codes: what DuckDB prunes
      row groups on (statistics of the other columns were a fifth of the encoding time).
    """
    import polars as pl
    import pyarrow as pa

    schema = first.head(0).to_arrow(compat_level=pl.CompatLevel.newest()).schema
    schema = pa.schema([f.with_nullable(f.name not in never_null) for f in schema])
    limit = max(1_000, first.height // 20)
    decimals = [c for c, t in first.schema.items() if isinstance(t, pl.Decimal)]
    delta = [*decimals, *(c for c in ("ligne",) if c in first.columns)]
    few = [c for c in first.columns if c not in delta and first.get_column(c).n_unique() <= limit]
    stats = [
        c
        for c, t in first.schema.items()
        if t in (pl.Date, pl.Datetime) or isinstance(t, pl.Datetime) or c in STATISTICS_CODES
    ]
    zstd = [c for c in first.columns if c not in few and c not in delta]
    return schema, {
        "compression": {c: "zstd" if c in zstd else "none" for c in first.columns},
        "compression_level": dict.fromkeys(zstd, 1),
        "use_dictionary": few,
        "write_statistics": stats,
        "store_decimal_as_integer": True,
        "column_encoding": dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
    }


def _unique_names(header: list[str]) -> list[str]:
    """Header names usable as columns: empty names become COLONNE_<n>."""
    return [n if n else f"COLONNE_{i + 1}" for i, n in enumerate(header)]


def _record(con, load: _FileLoad, path: Path, statut: str, motif: str | None) -> None:
    sha = load.sha  # waits for the hash (and the size that comes with it)
    con.execute(
        _sql("ingestion_enregistree"),
        {
            "ingestion_id": sha,
            "fichier": path.name,
            "chemin": str(path.resolve()),
            "source": load.spec.source,
            "taille_octets": load.ident.size,
            "encodage": load.encoding,
            "lignes_lues": load.read,
            "lignes_acceptees": load.accepted,
            "lignes_quarantaine": load.quarantined,
            "statut": statut,
            "motif": motif,
            "debut": load.start,
            "fin": datetime.now(),
        },
    )


def _ingest_file(
    ctx: _Context, ident_con, path: Path, spec: SourceSpec
) -> tuple[FileResult, Counter[str]]:
    """Load one file in one transaction; never raises for bad input."""
    t0 = time.perf_counter()
    ident = _FileIdentity(ctx.con, path)
    try:
        return _load_file(ctx, ident_con, path, spec, ident, t0)
    finally:
        ident.close()


def _refusal(exc: Exception) -> tuple[str | None, str]:
    """(quarantine rule of the file's records, ``motif``) of a refused file; no rule when
    the file cannot be read (no record to quarantine)."""
    from transforms.raw.dialect import EncodingError

    if isinstance(exc, EncodingError):
        return "encodage", f"encodage : {exc}"
    if isinstance(exc, _HeaderRejected):
        return "entete", f"entete : {exc}"
    return None, f"fichier illisible : {exc}"


def _restart(
    ctx: _Context, load: _FileLoad, path: Path, spec: SourceSpec, ident, start: datetime
) -> _FileLoad:
    """Undo what ``load`` did (a new transaction) and start a new load of the file."""
    ctx.con.rollback()
    ctx.con.begin()
    load.abort_lake()
    return _FileLoad(ctx, path, spec, ident, start)


def _load_file(
    ctx: _Context, ident_con, path: Path, spec: SourceSpec, ident: _FileIdentity, t0: float
) -> tuple[FileResult, Counter[str]]:
    """:func:`_ingest_file`, the file's sha256 being computed by ``ident``."""
    import duckdb

    from transforms.raw.dialect import EncodingError, RestartAsCp1252

    result = FileResult(path.name, str(path), spec.source, INTROUVABLE)
    start = datetime.now()
    statut, motif = OK, None
    decode = "detect"
    load = _FileLoad(ctx, path, spec, ident, start)
    while True:
        ctx.con.begin()
        try:
            try:
                load.load(decode)
            except RestartAsCp1252:
                raise
            except (EncodingError, _HeaderRejected, _Unreadable) as exc:
                # The whole file is refused: what was loaded is undone, its records go to
                # the quarantine with the file's rule (none when it cannot be read: same
                # bytes, same failure), and the file is recorded so that a re-delivery is a
                # no-op.
                encoding = load.encoding if isinstance(exc, _HeaderRejected) else None
                load = _restart(ctx, load, path, spec, ident, start)
                load.encoding = encoding
                rule, motif = _refusal(exc)
                statut = REJETE
                if rule is not None:
                    try:
                        load.reject_all(rule, str(exc))
                    except _Unreadable as unreadable:
                        load = _restart(ctx, load, path, spec, ident, start)
                        _, motif = _refusal(unreadable)
            t1 = time.perf_counter()
            load.store_identities(ident_con)
            t2 = time.perf_counter()
            load.finish_lake()
            t3 = time.perf_counter()
            _record(ctx.con, load, path, statut, motif)
            if load.accepted:
                refresh_views(ctx.con, ctx.paths)
            ctx.con.commit()
            if load.seen_keys and spec.table in ctx.dates_by_table:
                ctx.dates_by_table[spec.table].update(
                    d for f in load.seen_keys for d in f.get_column("FLX_DIS_DTD").unique()
                )
            load.timings["identites"] += t2 - t1
            load.timings["ecriture_parquet"] += t3 - t2
            load.timings["commit_duckdb"] += time.perf_counter() - t3
            break
        except RestartAsCp1252:
            ctx.con.rollback()
            load.abort_lake()
            log.info(
                "%s : UTF-8 invalide après du texte non ASCII, relu en Windows-1252", path.name
            )
            load = _FileLoad(ctx, path, spec, ident, start)
            decode = "cp1252"
        except _AlreadyIngested as exc:
            ctx.con.rollback()
            load.abort_lake()
            fichier, statut_connu, le = exc.known
            result.ingestion_id, result.taille_octets = ident.sha_seen, ident.size
            result.statut = DEJA_INGERE
            result.motif = (
                f"mêmes octets que {fichier}, déjà ingéré le {le:%d/%m/%Y %H:%M} "
                f"(statut {statut_connu}) : rien à faire"
            )
            if ctx.on_progress is not None:
                ctx.on_progress(ident.size)
            return result, Counter()
        except _HashUnreadable as exc:
            ctx.con.rollback()
            load.abort_lake()
            result.motif = f"fichier illisible : {exc.error.strerror or exc.error}"
            return result, Counter()
        except (Exception, KeyboardInterrupt) as exc:
            # Anything else (disk error, a bug): nothing is kept and nothing is recorded, so
            # the next run tries the file again; the other files go on.
            with contextlib.suppress(duckdb.Error):
                ctx.con.rollback()
            load.abort_lake()
            if isinstance(exc, KeyboardInterrupt):
                raise
            log.exception("%s : erreur pendant l'ingestion, fichier non ingéré", path.name)
            result.ingestion_id, result.taille_octets = ident.sha_seen, ident.size
            result.statut = ERREUR
            result.motif = (
                f"erreur pendant l'ingestion ({type(exc).__name__} : {exc}) ; rien n'a été "
                "chargé, le fichier sera repris au prochain passage"
            )
            result.duree_s = round(time.perf_counter() - t0, 3)
            return result, Counter()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                ctx.con.rollback()
            load.abort_lake()
            raise

    result.statut, result.motif = statut, motif
    result.ingestion_id, result.taille_octets = ident.sha, ident.size
    result.encodage = load.encoding
    result.lignes_lues, result.lignes_acceptees = load.read, load.accepted
    result.lignes_quarantaine = load.quarantined
    result.regles = dict(sorted(load.rules.items()))
    result.duree_s = round(time.perf_counter() - t0, 3)
    load.timings["attente_sha256"] += ident.waited_s
    return result, load.timings


# --- entry points ----------------------------------------------------------------------------


def ingest_paths(
    paths: DataPaths,
    inputs: list[Path],
    key: bytes,
    *,
    references: References | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    on_progress: Callable[[int], None] | None = None,
    timings: Counter[str] | None = None,
) -> IngestSummary:
    """Ingest files and folders into ``paths``: lake, warehouse, quarantine, identities.

    Files are taken in extraction-date order; a file already ingested (same sha256) is a
    no-op. ``key`` is the pseudonymisation key (``pseudo_key()``; ``ru demo`` passes the demo
    key). ``timings`` (optional) receives seconds per stage, for the benchmark.
    """
    from flows.warehouse import identity_store, warehouse

    t0 = time.perf_counter()
    paths.ensure()
    refs = references or load_references()
    todo, skipped = discover(inputs)
    results: list[FileResult] = list(skipped)
    for s in skipped:
        log.warning("%s : %s", s.fichier, s.motif)
    with warehouse(paths) as con, identity_store(paths) as ident_con:
        # A large file is one transaction: bound DuckDB's cache so it evicts written blocks
        # instead of growing towards its default (80 % of the machine's memory).
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        ensure_tables(con, paths)
        ident_con.execute(_sql("identite_ddl"))
        ctx = _Context(con, paths, key, refs, chunk_bytes, on_progress)
        for path, spec in todo:
            res, file_timings = _ingest_file(ctx, ident_con, path, spec)
            if timings is not None:
                timings.update(file_timings)
            _log_result(res)
            results.append(res)
    summary = IngestSummary(results, duree_s=time.perf_counter() - t0)
    statuts = Counter(r.statut for r in results)
    log.info(
        "Ingestion : %d fichier(s) (%d ingéré(s), %d déjà ingéré(s)) ; %d ligne(s) lue(s), "
        "%d acceptée(s), %d en quarantaine",
        len(results),
        statuts.get(OK, 0),
        statuts.get(DEJA_INGERE, 0),
        summary.lignes_lues,
        summary.lignes_acceptees,
        summary.lignes_quarantaine,
    )
    return summary


def _log_result(r: FileResult) -> None:
    # Per-file successes are detail (a history load has hundreds of files; `ru ingest` prints
    # its table, the nightly manifest keeps the counts); problems are always said.
    if r.statut == DEJA_INGERE:
        log.debug("%s : %s", r.fichier, r.motif)
    elif r.statut == OK:
        log.debug(
            "%s : %d ligne(s) lue(s), %d acceptée(s), %d en quarantaine",
            r.fichier,
            r.lignes_lues,
            r.lignes_acceptees,
            r.lignes_quarantaine,
        )
    else:
        log.warning(
            "%s : fichier %s (%s) ; %d ligne(s) en quarantaine",
            r.fichier,
            r.statut,
            r.motif,
            r.lignes_quarantaine,
        )


def check_ingested(paths: DataPaths, summary: IngestSummary) -> list:
    """Data checks (``flows.checks``) of the rows this run loaded into ``lignes_ij`` and
    ``actions``: one slice per table, restricted to the run's new ingestions.

    Returns the check reports; raises ``flows.checks.ChecksFailed`` on a ``fail``-level
    breach (French message naming the rule and the numbers).
    """
    from flows.checks import TableSlice, check_tables
    from flows.warehouse import warehouse

    tables = {"ij_paiements": "lignes_ij", "actions": "actions"}
    slices = [
        TableSlice(
            table=tables[source],
            label=f"ingestion {tables[source]}",
            where="ingestion_id in (select unnest($ids))",
            params={"ids": ids},
        )
        for source, ids in sorted(summary.new_ingestions.items())
    ]
    if not slices:
        return []
    with warehouse(paths) as con:
        return check_tables(con, slices, paths)


def _print_table(summary: IngestSummary) -> None:
    from rich.table import Table

    from flows.console import out

    table = Table(title="Ingestion", show_lines=False)
    for col in ("fichier", "source", "statut", "lues", "acceptées", "quarantaine", "règles"):
        numeric = col in ("lues", "acceptées", "quarantaine")
        table.add_column(
            col,
            justify="right" if numeric else "left",
            overflow="fold",
            no_wrap=col in ("statut", "source") or numeric,
        )
    for f in summary.fichiers:
        regles = ", ".join(f"{k} {n}" for k, n in f.regles.items()) or (f.motif or "")
        table.add_row(
            f.fichier,
            f.source or "",
            f.statut,
            str(f.lignes_lues),
            str(f.lignes_acceptees),
            str(f.lignes_quarantaine),
            regles if f.statut != DEJA_INGERE else (f.motif or ""),
        )
    out.print(table)
    out.print(
        f"{len(summary.fichiers)} fichier(s), {summary.lignes_lues} ligne(s) lue(s), "
        f"{summary.lignes_acceptees} acceptée(s), {summary.lignes_quarantaine} en quarantaine "
        f"({summary.duree_s:.1f} s)"
    )


def ingest(
    fichiers: Annotated[
        list[Path],
        typer.Argument(
            help="Fichiers `ij_paiements_AAAAMMJJ_<organisme>` et `actions_AAAAMMJJ_<elsm>` "
            "(.csv, .csv.gz, .parquet), ou dossiers qui les contiennent.",
            show_default=False,
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Résumé lisible par une machine sur la sortie standard.")
    ] = False,
    data: DataOption = None,
) -> None:
    """Ingère des extractions de paiements d'IJ et d'actions (rien ne se perd).

    Chaque ligne lue est acceptée (entrepôt et lac Parquet, NIR pseudonymisé) ou mise en
    quarantaine avec les règles qu'elle enfreint (voir docs/regles.md) ; un fichier déjà
    ingéré (mêmes octets) est ignoré. La clé de pseudonymisation est lue dans RU_CLE_PSEUDO.

    Exemple : ru ingest data/arrivee/ --json
    """
    from flows.console import progress
    from flows.warehouse import WarehouseError

    try:
        key, _ = pseudo_key()
    except ConfigError as exc:
        fail(str(exc))
    paths = resolve_data_dir(data)
    todo, _ = discover(fichiers)
    total = 0
    for p, _spec in todo:
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    import duckdb

    try:
        with progress("Ingestion des fichiers", total=total or None) as step:
            summary = ingest_paths(paths, fichiers, key, on_progress=step.advance)
    except (WarehouseError, ConfigError) as exc:
        fail(str(exc))
    except duckdb.IOException as exc:
        fail(f"entrepôt inaccessible (une autre commande l'utilise-t-elle ?) : {exc}")
    from flows.checks import ChecksFailed

    failure = None
    try:
        check_ingested(paths, summary)
    except ChecksFailed as exc:
        failure = str(exc)
    if json_output:
        payload = summary.as_dict()
        payload["controles"] = "echec" if failure else "ok"
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        _print_table(summary)
    if failure:
        fail(f"contrôles de données en échec après l'ingestion : {failure}")

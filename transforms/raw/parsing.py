"""From decoded extract text to a frame of string fields, one row per record.

Grain of the output: one row per record (a line of the file, or several physical lines when
a quoted field holds a newline), with ``ligne`` = the physical line where the record starts
(the header is line 1), ``texte`` = the record's original text, ``nb_champs`` = its number
of fields (``-1`` when its quoting cannot be read) and one string column per header field
(null when empty). Empty lines carry no data and are not records.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import polars as pl

from transforms.raw.schema import NIR_COLUMNS, ColumnSpec, SourceSpec

SEP = ";"
QUOTE = '"'
UNREADABLE = -1


def normalise_name(name: str) -> str:
    """Header names are case-insensitive: stripped, BOM removed, upper-cased."""
    return name.replace("\ufeff", "").strip().upper()


def parse_header(line: str) -> list[str]:
    """The normalised column names of a header line (quotes allowed)."""
    line = line.lstrip("\ufeff").rstrip("\r\n")
    row = next(csv.reader([line], delimiter=SEP, quotechar=QUOTE), [])
    return [normalise_name(n) for n in row]


@dataclass(frozen=True)
class HeaderMap:
    """How a file's header maps to its contract.

    ``names``: header names in file order; ``missing``: required contract columns absent;
    ``duplicates``: names present twice; ``extras``: names the contract does not know.
    """

    names: tuple[str, ...]
    missing: tuple[str, ...]
    duplicates: tuple[str, ...]
    extras: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.duplicates

    def problem(self) -> str:
        """French description of what is wrong with the header."""
        parts = []
        if self.missing:
            parts.append("colonne(s) obligatoire(s) absente(s) : " + ", ".join(self.missing))
        if self.duplicates:
            parts.append("colonne(s) en double : " + ", ".join(self.duplicates))
        return " ; ".join(parts)


def map_header(names: list[str], spec: SourceSpec) -> HeaderMap:
    """Check a header against the contract of ``spec``."""
    known = set(spec.names)
    seen: set[str] = set()
    duplicates = []
    for n in names:
        if n in seen and n not in duplicates:
            duplicates.append(n)
        seen.add(n)
    missing = [c for c in spec.header_required if c not in seen]
    if not any(n in seen for n in NIR_COLUMNS):
        missing.append(" ou ".join(NIR_COLUMNS))
    extras = [n for n in names if n not in known and n]
    return HeaderMap(tuple(names), tuple(missing), tuple(duplicates), tuple(extras))


def split_records(text: str, first_line: int) -> pl.DataFrame:
    """Records of a block of text that starts at physical line ``first_line``.

    Output columns: ``ligne`` (Int64), ``texte`` (String, without its line end). A quoted
    field may span lines: physical lines are merged while a quote is open.
    """
    lines = pl.Series("texte", [text], dtype=pl.String).str.split("\n").explode()
    frame = pl.DataFrame({"texte": lines}).with_row_index("ligne", offset=0)
    if text.endswith("\n"):
        frame = frame.head(frame.height - 1)
    texte = pl.col("texte").str.strip_suffix("\r") if "\r" in text else pl.col("texte")
    frame = frame.select((pl.col("ligne").cast(pl.Int64) + first_line).alias("ligne"), texte)
    if QUOTE in text:
        odd = (pl.col("texte").str.count_matches(QUOTE, literal=True) % 2) == 1
        frame = frame.with_columns(_odd=odd)
        open_before = ((pl.col("_odd").cast(pl.Int64).cum_sum() - pl.col("_odd")) % 2) == 1
        frame = frame.with_columns(_cont=open_before)
        if frame["_cont"].any():
            frame = (
                frame.with_columns(_rec=(~pl.col("_cont")).cast(pl.Int64).cum_sum())
                .group_by("_rec", maintain_order=True)
                .agg(pl.col("ligne").first(), pl.col("texte").str.join("\n"))
            )
        frame = frame.select("ligne", "texte")
    empty = frame.get_column("texte").str.len_bytes() == 0
    if empty.any():
        frame = frame.filter(~empty)
    return frame


def _parse_quoted(texte: str, n: int) -> list[tuple[int, str, list[str] | None]]:
    """Fields of one quoted record, as ``[(line offset, text, fields or None)]``.

    A record merged over several physical lines whose quoting does not read as one row is
    split back into its physical lines, each read on its own.
    """
    try:
        rows = list(csv.reader([texte], delimiter=SEP, quotechar=QUOTE, strict=True))
    except csv.Error:
        rows = []
    if len(rows) == 1 and (len(rows[0]) == n or "\n" not in texte):
        return [(0, texte, rows[0])]
    if "\n" not in texte:
        return [(0, texte, None)]
    out: list[tuple[int, str, list[str] | None]] = []
    for i, line in enumerate(texte.split("\n")):
        if line == "":
            continue
        try:
            parsed = list(csv.reader([line], delimiter=SEP, quotechar=QUOTE, strict=True))
        except csv.Error:
            parsed = []
        out.append((i, line, parsed[0] if len(parsed) == 1 else None))
    return out


def split_fields(records: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """One string column per header name, from ``records`` (``ligne``, ``texte``).

    Adds ``nb_champs`` (Int32, ``-1`` when quoting cannot be read). Empty fields are null.
    Lines without quotes are split in Polars; quoted ones with the ``csv`` module.
    """
    n = len(names)
    slots = [f"_f{i}" for i in range(n)]
    has_quote = records.get_column("texte").str.contains(QUOTE, literal=True)
    any_quote = bool(has_quote.any())
    plain = records.filter(~has_quote) if any_quote else records
    # One slot more than the header: a filled extra slot means too many fields, an empty
    # last slot too few. Only those lines get their fields counted.
    plain = (
        plain.with_columns(_s=pl.col("texte").str.split_exact(SEP, n))
        .with_columns(pl.col("_s").struct.rename_fields([*slots, "_extra"]))
        .unnest("_s")
    )
    count_ok = pl.col(slots[-1]).is_not_null() & pl.col("_extra").is_null()
    plain = plain.with_columns(nb_champs=pl.when(count_ok).then(pl.lit(n, dtype=pl.Int32))).drop(
        "_extra"
    )
    bad = plain["nb_champs"].is_null()
    if bad.any():
        idx = bad.arg_true()
        counts = plain["texte"].gather(idx).str.count_matches(SEP, literal=True) + 1
        plain = plain.with_columns(plain["nb_champs"].scatter(idx, counts.cast(pl.Int32)))
    plain = plain.select("ligne", "texte", "nb_champs", *slots)
    parts = [plain]
    quoted = records.filter(has_quote) if any_quote else records.clear()
    if quoted.height:
        rows: dict[str, list] = {"ligne": [], "texte": [], "nb_champs": []}
        cells: list[list[str | None]] = [[] for _ in range(n)]
        for ligne, texte in quoted.iter_rows():
            for offset, text, fields in _parse_quoted(texte, n):
                rows["ligne"].append(ligne + offset)
                rows["texte"].append(text)
                rows["nb_champs"].append(UNREADABLE if fields is None else len(fields))
                values = fields or []
                for i in range(n):
                    cells[i].append(values[i] if i < len(values) else None)
        extra = pl.DataFrame(
            {
                "ligne": pl.Series(rows["ligne"], dtype=pl.Int64),
                "texte": pl.Series(rows["texte"], dtype=pl.String),
                "nb_champs": pl.Series(rows["nb_champs"], dtype=pl.Int32),
                **{slot: pl.Series(cells[i], dtype=pl.String) for i, slot in enumerate(slots)},
            }
        )
        parts.append(extra)
        out = pl.concat(parts, how="vertical").sort("ligne")
    else:
        out = plain
    empty_to_null = [
        pl.when(pl.col(slot) != "").then(pl.col(slot)).alias(name)
        for slot, name in zip(slots, names, strict=True)
    ]
    return out.select("ligne", "texte", "nb_champs", *empty_to_null)


def frame_from_table(table: pl.DataFrame, first_line: int) -> pl.DataFrame:
    """Records from a Parquet batch (native types), shaped like :func:`split_fields`.

    Column names are normalised; every value becomes its text (dates ISO ``AAAA-MM-JJ``,
    decimals with a point); ``ligne`` counts rows as if a header were line 1; ``texte`` is
    the row's values joined with ``;``.
    """
    names: list[str] = []
    for c in table.columns:  # duplicates after normalisation get a suffix (entete rejects them)
        name = normalise_name(c) or "COLONNE"
        while name in names:
            name += "_BIS"
        names.append(name)
    renamed = table.rename(dict(zip(table.columns, names, strict=True)))
    as_text = []
    for name, dtype in renamed.schema.items():
        col = pl.col(name)
        if dtype.is_float():
            # Integers stored as floats (pandas writes nullable ints so): 2.0 reads « 2 ».
            integral = col.is_finite() & (col == col.round(0)) & (col.abs() < 2**53)
            text = (
                pl.when(integral)
                .then(col.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(col.round(6).cast(pl.String))
            )
        elif isinstance(dtype, pl.Datetime):
            text = col.dt.date().cast(pl.String)
        else:
            text = col.cast(pl.String)
        as_text.append(text.alias(name))
    out = renamed.select(as_text)
    texte = pl.concat_str([pl.col(c).fill_null("") for c in out.columns], separator=SEP)
    return out.with_columns(
        pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in out.columns
    ).select(
        (pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias("ligne"),
        texte.alias("texte"),
        pl.lit(len(out.columns), dtype=pl.Int32).alias("nb_champs"),
        *out.columns,
    )


@dataclass(frozen=True)
class LineIndex:
    """Where the physical lines of a UTF-8 block are: line ``first_line + i`` is
    ``data[starts[i]:ends[i]]`` (line end and trailing CR excluded)."""

    data: bytes
    starts: object  # numpy int64 array
    ends: object  # numpy int64 array
    first_line: int
    newlines: int  # line ends in ``data`` (the next block starts at first_line + newlines)

    def texts(self, lignes: pl.Series) -> pl.Series:
        """Original text of the given physical lines (for the quarantine)."""
        idx = lignes.to_numpy() - self.first_line
        out = [
            self.data[s:e].decode("utf-8", errors="replace")
            for s, e in zip(self.starts[idx].tolist(), self.ends[idx].tolist(), strict=True)
        ]
        return pl.Series("texte", out, dtype=pl.String)


def read_plain_block(
    data: bytes,
    names: list[str],
    first_line: int,
    typed: dict[str, ColumnSpec] | None = None,
    newlines: int | None = None,
) -> tuple[pl.DataFrame, LineIndex] | None:
    """Fields of a UTF-8 block without any double quote, split in compiled code
    (:func:`transforms.raw.native.read_block`).

    ``data`` starts at physical line ``first_line`` and ends at a line end (or the end of the
    file). Same grain and columns as :func:`split_fields` except ``texte`` (recovered on
    demand with :meth:`LineIndex.texts`): ``ligne`` (Int64), ``nb_champs`` (Int32) and one
    string column per name (null when empty); plus, for each column of ``typed`` among the
    names, its typed value ``_v_<COL>`` (as :func:`transforms.raw.rules.typed_values` would
    compute it, which then leaves it as is), or for the NIR the columns of
    :func:`transforms.raw.rules.nir_columns`. ``newlines``: the block's line ends when the
    caller has counted them already. Empty lines are not records. Returns None when
    the block has a quote (or is empty, or of 2 GB or more): the caller then takes the
    exact path (:func:`split_records` + :func:`split_fields`).
    """
    from transforms.raw.native import read_block
    from transforms.raw.rules import v

    if b'"' in data or not data or len(data) >= 2**31:  # views hold 32-bit offsets
        return None
    block = read_block(data, names, typed or {}, newlines)
    newlines = block.line_start.size - (0 if data.endswith(b"\n") else 1)
    index = LineIndex(data, block.line_start, block.line_end, first_line, newlines)
    out = pl.DataFrame(
        [
            pl.Series("ligne", block.rec_line + first_line, dtype=pl.Int64),
            pl.Series("nb_champs", block.n_fields, dtype=pl.Int32),
            *block.strings,
            *(s.alias(v(name)) for name, s in block.typed.items()),
            *(s.alias(f"_nir_{part}") for part, s in block.nir.items()),
        ]
    )
    return out, index

"""Splitting and typing of quote-free CSV blocks in compiled code (numba).

Input: a block of UTF-8 bytes without any double quote, starting at a physical line and
ending at a line end (or at the end of the file). :func:`read_block` makes one pass over
the bytes that finds the lines and the fields of each record and writes each field as an
Arrow string view (16 bytes: values of at most 12 bytes are held in the view itself); a
pass per column then copies its longer values to a buffer of its own and gives the
column to Polars without copy (String, null when empty or absent); integer, decimal and
date columns are typed from their views, with the results of
:func:`transforms.raw.rules._parse_expr` (same formats, same ranges, same calendar), and
the NIR into the parts of :func:`transforms.raw.rules.nir_columns`: the tests compare both
on every edge of the contract's formats.

Why compiled code: Polars' CSV reader materialises every field as a string and the typing
then hashes each text against a dictionary; on a 5-million-line extract these two steps
were the largest single cost of the ingestion (benchmarks/bench_ingest.py). The kernels
release the GIL (``nogil``: the reading thread overlaps the others) and are compiled once,
then cached on disk by numba. Loops run from a constant start with no early exit, and
helpers have one return: numba compiles the other forms into code several times slower.

Memory: each column owns its views (16 bytes a record) and its buffer of long values,
which Polars takes without copy; the array the scan writes is reused from block to block.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numba as nb
import numpy as np
import polars as pl
import pyarrow as pa

from transforms.raw.schema import ColumnSpec, Kind, SourceSpec

_SEMICOLON, _NEWLINE, _CR = 59, 10, 13
_INLINE = 12  # Arrow string views hold values of at most 12 bytes inline
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

# Kinds typed here (a NIR into its parts); texts keep their string column only.
TYPED_KINDS = (Kind.INT, Kind.DEC, Kind.DATE, Kind.NIR)


def typed_columns(spec: SourceSpec) -> dict[str, ColumnSpec]:
    """The columns of ``spec`` that :func:`read_block` types (integers, decimals, dates,
    the NIR)."""
    return {c.name: c for c in spec.columns if c.kind in TYPED_KINDS}


_LOW32 = np.uint64(0xFFFFFFFF)
_BYTE = np.uint64(0xFF)


@nb.njit(cache=True, nogil=True)
def _newlines(buf):
    """Number of LF bytes."""
    n = 0
    for b in buf:
        if b == _NEWLINE:
            n += 1
    return n


def count_newlines(data: bytes) -> int:
    """Number of line ends (LF) in ``data``."""
    return _newlines(np.frombuffer(data, dtype=np.uint8))


@nb.njit(cache=True, nogil=True)
def _count_lines(buf):
    """Number of physical lines (the last one may lack its LF)."""
    unfinished = buf.size > 0 and buf[buf.size - 1] != _NEWLINE
    return _newlines(buf) + (1 if unfinished else 0)


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _load_word(buf, at, count):
    """Little-endian word of buf[at : at + count] (count <= 8), zero beyond."""
    w = np.uint64(0)
    for k in range(8):
        if k < count:
            w |= np.uint64(buf[at + k]) << np.uint64(8 * k)
    return w


# Bytes scanned per window: the window's separator positions fit a small array.
_WINDOW = 1 << 20


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _scan(buf, n_cols, line_start, line_end, rec_line, n_fields, views, long_bytes):
    """Line bounds (trailing CR excluded) and, per record (non-empty line), its physical
    line, its number of fields and its first ``n_cols`` fields as string views in
    ``views[col, 2 * rec : 2 * rec + 2]`` (empty or absent: length 0); a value longer than
    12 bytes points for now at its offset in ``buf`` (see _finish_column) and
    ``long_bytes[col]`` adds up their lengths. Returns the record count.

    Per window of bytes, a branch-free loop lists the positions of ``;`` and line ends,
    then a loop over those positions writes the fields: testing each byte with a branch
    costs a misprediction every few bytes (measured: 84 ms against 45 for a 24 MB block).
    """
    n = buf.size
    seps = np.empty(min(n, _WINDOW) + 1, dtype=np.int64)
    fs = 0  # start of the current field
    ls = 0  # start of the current line
    col = 0
    rec = 0
    line = 0
    for w0 in range(0, n + 1, _WINDOW):
        w1 = min(w0 + _WINDOW, n)
        k = 0
        for p in range(w0, w1):
            b = buf[p]
            seps[k] = p
            k += (b == _SEMICOLON) | (b == _NEWLINE)
        if w1 == n:  # the end of the block ends its last line
            seps[k] = n
            k += 1
        for i in range(k):
            p = seps[i]
            end_of_line = p == n or buf[p] == _NEWLINE
            fe = p
            if end_of_line and fe > fs and buf[fe - 1] == _CR:
                fe -= 1
            if end_of_line and fe == ls:  # an empty line (or nothing after the last one)
                if p < n or p > ls:
                    line_start[line] = ls
                    line_end[line] = fe
                    line += 1
                ls = p + 1
                fs = p + 1
                col = 0
                continue
            if col < n_cols:
                length = fe - fs
                head = np.uint64(length) | (_load_word(buf, fs, min(4, length)) << np.uint64(32))
                if length <= _INLINE:
                    tail = _load_word(buf, fs + 4, max(0, length - 4))
                else:
                    tail = np.uint64(fs) << np.uint64(32)  # buffer 0, offset fs
                    long_bytes[col] += length
                views[col, 2 * rec] = head
                views[col, 2 * rec + 1] = tail
            col += 1
            fs = p + 1
            if end_of_line:
                for c in range(col, n_cols):  # fields the line does not have
                    views[c, 2 * rec] = 0
                    views[c, 2 * rec + 1] = 0
                line_start[line] = ls
                line_end[line] = fe
                rec_line[rec] = line
                n_fields[rec] = col
                rec += 1
                line += 1
                ls = p + 1
                col = 0
        if w1 == n:
            break
    return rec


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _finish_column(buf, scanned, views, data, valid):
    """The column's views, from ``scanned`` (written by _scan) to ``views``, its long
    values copied from ``buf`` to ``data`` (offsets rewritten); ``valid``: non-empty."""
    off = 0
    for r in range(valid.size):
        head = scanned[2 * r]
        length = np.int64(head & _LOW32)
        valid[r] = length > 0
        views[2 * r] = head
        if length > _INLINE:
            src = np.int64(scanned[2 * r + 1] >> np.uint64(32))
            for k in range(length):
                data[off + k] = buf[src + k]
            views[2 * r + 1] = np.uint64(off) << np.uint64(32)
            off += length
        else:
            views[2 * r + 1] = scanned[2 * r + 1]


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _byte(views, data, r, k):
    """Byte ``k`` of value ``r`` of a finished column. (One return per helper: numba
    inlines early returns into slow code.)"""
    head = views[2 * r]
    if np.int64(head & _LOW32) > _INLINE:
        b = np.int64(data[np.int64(views[2 * r + 1] >> np.uint64(32)) + k])
    elif k < 4:
        b = np.int64((head >> np.uint64(32 + 8 * k)) & _BYTE)
    else:
        b = np.int64((views[2 * r + 1] >> np.uint64(8 * (k - 4))) & _BYTE)
    return b


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _numbers(views, data, cents, lo, hi, out, valid):
    """``^[+-]?[0-9]{1,10}$`` as an integer kept when in [lo, hi] or, with ``cents``,
    ``^[+-]?[0-9]{1,10}([.,][0-9]{1,2})?$`` as a whole number of cents. (Loops run from 0
    with no early exit: numba compiles the other forms into code several times slower.)"""
    for r in range(valid.size):
        length = np.int64(views[2 * r] & _LOW32)
        x = 0
        sign = 1
        start = 0
        dot = -1
        ok = length > 0
        for k in range(length):
            b = _byte(views, data, r, k)
            if k == 0 and (b == 45 or b == 43):
                sign = -1 if b == 45 else 1
                start = 1
            elif cents and dot < 0 and (b == 44 or b == 46):
                dot = k
            else:
                d = b - 48
                ok &= (d >= 0) & (d <= 9)
                x = x * 10 + d
        whole = (length if dot < 0 else dot) - start
        frac = 0 if dot < 0 else length - dot - 1
        ok &= (whole >= 1) & (whole <= 10)
        ok &= (dot < 0) | ((frac >= 1) & (frac <= 2))
        if cents:
            x *= 100 if frac == 0 else (10 if frac == 1 else 1)
        x *= sign
        ok &= (x >= lo) & (x <= hi)
        out[r] = x if ok else 0
        valid[r] = ok


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _digit(word, shift):
    """The decimal digit in the byte of ``word`` at bit ``shift``, or -1 (all bits set: the
    bitwise or of several digits is negative exactly when one of them is -1)."""
    d = np.int64((word >> np.uint64(shift)) & _BYTE) - 48
    return d if (d >= 0) & (d <= 9) else -1


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _dates(views, data, out, valid):
    """``JJ/MM/AAAA`` or ``AAAA-MM-JJ``, a real day of the proleptic Gregorian calendar
    (years 0000-9999), as days since 1970-01-01. Ten bytes: always inline in the view
    (bytes 0-3 in the high half of the first word, 4-11 in the second)."""
    for r in range(valid.size):
        head = views[2 * r]
        w = (head >> np.uint64(32)) | (views[2 * r + 1] << np.uint64(32))  # bytes 0-7
        tail = views[2 * r + 1] >> np.uint64(32)  # bytes 8-11
        ok = np.int64(head & _LOW32) == 10
        b2 = np.int64((w >> np.uint64(16)) & _BYTE)
        b4 = np.int64((w >> np.uint64(32)) & _BYTE)
        b5 = np.int64((w >> np.uint64(40)) & _BYTE)
        b7 = np.int64((w >> np.uint64(56)) & _BYTE)
        if (b2 == 47) & (b5 == 47):  # JJ/MM/AAAA
            d0, d1 = _digit(w, 0), _digit(w, 8)
            m0, m1 = _digit(w, 24), _digit(w, 32)
            y0, y1, y2, y3 = _digit(w, 48), _digit(w, 56), _digit(tail, 0), _digit(tail, 8)
        elif (b4 == 45) & (b7 == 45):  # AAAA-MM-JJ
            y0, y1, y2, y3 = _digit(w, 0), _digit(w, 8), _digit(w, 16), _digit(w, 24)
            m0, m1 = _digit(w, 40), _digit(w, 48)
            d0, d1 = _digit(tail, 0), _digit(tail, 8)
        else:
            ok = False
            d0 = d1 = m0 = m1 = y0 = y1 = y2 = y3 = 0
        ok &= (d0 | d1 | m0 | m1 | y0 | y1 | y2 | y3) >= 0
        d = d0 * 10 + d1
        m = m0 * 10 + m1
        y = ((y0 * 10 + y1) * 10 + y2) * 10 + y3
        ok &= (m >= 1) & (m <= 12) & (d >= 1)
        leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
        if m == 2:
            month_days = 29 if leap else 28
        elif (m == 4) | (m == 6) | (m == 9) | (m == 11):
            month_days = 30
        else:
            month_days = 31
        ok &= d <= month_days
        # Days from the civil date (H. Hinnant's algorithm; // is floor division).
        yy = y - 1 if m <= 2 else y
        era = yy // 400
        yoe = yy - era * 400
        mp = m + 9 if m <= 2 else m - 3
        doy = (153 * mp + 2) // 5 + d - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
        out[r] = era * 146097 + doe - 719468 if ok else 0
        valid[r] = ok


@nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _dig(views, data, r, k):
    """Digit at position ``k`` of value ``r``, or -1 (see _digit)."""
    d = _byte(views, data, r, k) - 48
    return d if (d >= 0) & (d <= 9) else -1


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _nirs(views, data, ok_out, n13_out, key_out, num_out, valid):
    """The NIR form ``^[12][0-9]{2}(0[1-9]|1[0-2]|[2-9][0-9])(2A|2B|[0-9]{2})[0-9]{6}[0-9]{2}$``
    and, for NIRs of that form, the 13 first characters as a number (2A / 2B read as 19 /
    18), the key, and the whole NIR as an exact integer (``transforms.raw.rules.nir_columns``
    computes the same in Polars)."""
    for r in range(valid.size):
        ok = np.int64(views[2 * r] & _LOW32) == 15
        n13 = 0
        key = 0
        offset = 0
        if ok:
            sex = _byte(views, data, r, 0)
            ok &= (sex == 49) | (sex == 50)
            y0, y1 = _dig(views, data, r, 1), _dig(views, data, r, 2)
            m0, m1 = _dig(views, data, r, 3), _dig(views, data, r, 4)
            month = m0 * 10 + m1
            ok &= ((month >= 1) & (month <= 12)) | ((month >= 20) & (month <= 99))
            b5, b6 = _byte(views, data, r, 5), _byte(views, data, r, 6)
            if (b5 == 50) & ((b6 == 65) | (b6 == 66)):  # 2A / 2B
                dept = 19 if b6 == 65 else 18
                offset = 10**15 if b6 == 65 else 2 * 10**15
                digits = y0 | y1 | m0 | m1
            else:
                e0, e1 = _dig(views, data, r, 5), _dig(views, data, r, 6)
                dept = e0 * 10 + e1
                digits = y0 | y1 | m0 | m1 | e0 | e1
            rest = 0
            for k in range(7, 13):
                d = _dig(views, data, r, k)
                digits |= d
                rest = rest * 10 + d
            k0, k1 = _dig(views, data, r, 13), _dig(views, data, r, 14)
            ok &= (digits | k0 | k1) >= 0
            n13 = ((((sex - 48) * 100 + y0 * 10 + y1) * 100 + month) * 100 + dept) * 10**6 + rest
            key = k0 * 10 + k1
        ok_out[r] = ok
        valid[r] = ok
        n13_out[r] = n13 if ok else 0
        key_out[r] = key if ok else 0
        num_out[r] = n13 * 100 + key + offset if ok else 0


@dataclass(frozen=True)
class Block:
    """A block read by :func:`read_block`. Physical line ``i`` of the block is
    ``data[line_start[i]:line_end[i]]`` (line end and trailing CR excluded); record ``r``
    (a non-empty line) is on line ``rec_line[r]`` and has ``n_fields[r]`` fields;
    ``strings``: one String Series per name (null when empty or absent); ``typed``: the
    typed values of the columns asked for, by name; ``nir``: for a NIR column asked for,
    ``ok`` (Boolean), ``n13``, ``cle`` and ``num`` (Int64, null unless ``ok``)."""

    line_start: np.ndarray
    line_end: np.ndarray
    rec_line: np.ndarray
    n_fields: np.ndarray
    strings: list[pl.Series]
    typed: dict[str, pl.Series]
    nir: dict[str, pl.Series]


def _bitmap(valid: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _nir_parts(views: np.ndarray, data: np.ndarray) -> dict[str, pl.Series]:
    n = views.size // 2
    ok = np.empty(n, dtype=np.bool_)
    valid = np.empty(n, dtype=np.bool_)
    parts = {name: np.empty(n, dtype=np.int64) for name in ("n13", "cle", "num")}
    _nirs(views, data, ok, parts["n13"], parts["cle"], parts["num"], valid)
    bitmap = _bitmap(valid)
    out = {"ok": pl.Series("ok", ok)}
    for name, values in parts.items():
        arr = pa.Array.from_buffers(pa.int64(), n, [bitmap, pa.py_buffer(values)])
        out[name] = pl.Series(name, arr)
    return out


def _typed(views: np.ndarray, data: np.ndarray, spec: ColumnSpec) -> pa.Array:
    n = views.size // 2
    valid = np.empty(n, dtype=np.bool_)
    if spec.kind is Kind.DATE:
        days = np.empty(n, dtype=np.int32)
        _dates(views, data, days, valid)
        return pa.Array.from_buffers(pa.date32(), n, [_bitmap(valid), pa.py_buffer(days)])
    values = np.empty(n, dtype=np.int64)
    if spec.kind is Kind.INT:
        lo = _I64_MIN if spec.int_min is None else spec.int_min
        hi = _I64_MAX if spec.int_max is None else spec.int_max
        _numbers(views, data, False, lo, hi, values, valid)
    elif spec.kind is Kind.DEC:
        _numbers(views, data, True, _I64_MIN, _I64_MAX, values, valid)
    else:
        raise ValueError(f"{spec.name} : le type {spec.kind} n'est pas lu ici")
    return pa.Array.from_buffers(pa.int64(), n, [_bitmap(valid), pa.py_buffer(values)])


class _Scratch(threading.local):
    """Per-thread arrays that _scan writes, reused from block to block (a fresh 60 MB
    array per block would cost its page faults each time)."""

    views: np.ndarray | None = None

    def get(self, n_cols: int, n_lines: int) -> np.ndarray:
        if self.views is None or self.views.shape[0] < n_cols or self.views.shape[1] < 2 * n_lines:
            self.views = np.empty((n_cols, 2 * n_lines), dtype=np.uint64)
        return self.views


_SCRATCH = _Scratch()


def read_block(
    data: bytes, names: list[str], typed: dict[str, ColumnSpec], newlines: int | None = None
) -> Block:
    """Split a quote-free block (``;`` separated, LF or CRLF line ends, fields in the order
    of ``names``) and type the columns of ``typed`` (INT: Int64 within the column's range;
    DEC: Int64 cents; DATE: Date; null when empty, absent or unreadable; NIR: its parts).
    ``newlines``: the block's LF count, when the caller has it (not counted again)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    n_cols = len(names)
    if newlines is None:
        n_lines = _count_lines(buf)
    else:  # a last line without its LF is a line too
        n_lines = newlines + (1 if buf.size and buf[-1] != _NEWLINE else 0)
    line_start = np.empty(n_lines, dtype=np.int64)
    line_end = np.empty(n_lines, dtype=np.int64)
    rec_line = np.empty(n_lines, dtype=np.int64)
    n_fields = np.empty(n_lines, dtype=np.int32)
    scanned = _SCRATCH.get(n_cols, n_lines)
    long_bytes = np.zeros(n_cols, dtype=np.int64)
    n = _scan(buf, n_cols, line_start, line_end, rec_line, n_fields, scanned, long_bytes)
    strings, out, nir = [], {}, {}
    for c, name in enumerate(names):
        # Each column owns its arrays: a Series kept later holds only its own column.
        views = np.empty(2 * n, dtype=np.uint64)
        col_data = np.empty(long_bytes[c], dtype=np.uint8)
        valid = np.empty(n, dtype=np.bool_)
        _finish_column(buf, scanned[c, : 2 * n], views, col_data, valid)
        arr = pa.Array.from_buffers(
            pa.string_view(),
            n,
            [_bitmap(valid), pa.py_buffer(views), pa.py_buffer(col_data)],
        )
        strings.append(pl.Series(name, arr))
        spec = typed.get(name)
        if spec is not None and spec.kind is Kind.NIR:
            nir = _nir_parts(views, col_data)
        elif spec is not None:
            out[name] = pl.Series(name, _typed(views, col_data, spec))
    return Block(line_start, line_end, rec_line[:n], n_fields[:n], strings, out, nir)

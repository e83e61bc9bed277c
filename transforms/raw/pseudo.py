"""NIR pseudonymisation and masking.

``assure_id`` = HMAC-SHA256(key, BEN_NIR + BEN_RNG_GEM) in hex, truncated to 32 characters
(contract ``ij_paiements.md``); a line that comes with ``BEN_NIR_PSA`` keeps it as
``assure_id``. The HMAC is computed once per distinct (NIR, rang) of a file
(:class:`Pseudonymiser`).
Masking keeps the first 5 characters of a NIR and replaces the rest with ``*``.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import polars as pl

from transforms.raw.sorted_runs import SortedRuns

ID_LENGTH = 32
MASK_KEEP = 5
# Any token shaped like a NIR (13 characters, with or without its 2-digit key): a safety net
# for lines whose fields are shifted, so the NIR is not where the header says.
NIR_LIKE_RE = r"\b[12][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{6}(?:[0-9]{2})?\b"
# The same tokens by length, the first 5 characters captured (see mask_texts).
_NIR_LIKE_15 = r"\b([12][0-9]{4})(?:[0-9]{2}|2[AB])[0-9]{6}[0-9]{2}\b"
_NIR_LIKE_13 = r"\b([12][0-9]{4})(?:[0-9]{2}|2[AB])[0-9]{6}\b"
_NO_DATE = np.iinfo(np.int32).max


def assure_id(key: bytes, nir: str, rang: str = "1") -> str:
    """The pseudonymous identifier of one (NIR, rang)."""
    return hmac.new(key, (nir + rang).encode("utf-8"), hashlib.sha256).hexdigest()[:ID_LENGTH]


def hmac_ids(key: bytes, messages: list[bytes] | list[str]) -> list[str]:
    """HMAC ids of many ``NIR + rang`` messages (UTF-8 bytes or strings).

    RFC 2104 spelled out on ``hashlib``: the inner and outer SHA-256 states of the padded
    key are built once and copied per message (the ``hmac`` module's per-message Python
    overhead was most of the cost). Same values as :func:`assure_id`.
    """
    block = hashlib.sha256().block_size
    k = hashlib.sha256(key).digest() if len(key) > block else key
    k = k.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    out = []
    append = out.append
    for msg in messages:
        h = inner.copy()
        h.update(msg if isinstance(msg, bytes) else msg.encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        append(o.hexdigest()[:ID_LENGTH])
    return out


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``values``' distinct values (sorted), one row holding each, and each row's index into
    them. ``np.unique(return_index=True)`` wants the first row of each, hence a stable sort:
    any row will do here (equal integers are the same NIR and rang), and the unstable sort
    takes 6 ms instead of 11 for a chunk of 121,000 rows."""
    order = np.argsort(values)
    ordered = values[order]
    starts = np.empty(len(values), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    inverse = np.empty(len(values), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], order[starts], inverse


class Pseudonymiser:
    """``assure_id`` of the lines of one file, each distinct (NIR, rang) hashed once per file.

    A (NIR, rang) is known by an exact integer (``number`` × 10 + rang, ``number`` being the
    NIR as an integer, see :func:`transforms.raw.rules.nir_columns`): a chunk's integers are
    made unique (one numpy sort), looked up among those already met in the file
    (:class:`~transforms.raw.sorted_runs.SortedRuns`) and only the new ones are HMAC'd; the
    ids are then gathered per row. The earliest date of each (NIR, rang) is kept for the
    identity store (:meth:`identities`). The clear NIRs live in this object only: drop it
    with the file.
    """

    def __init__(self, key: bytes):
        self.key = key
        self._codes = SortedRuns()  # integer of (NIR, rang) → code (order of first sight)
        self._ids = pl.Series("assure_id", [], dtype=pl.String)  # by code
        self._messages = pl.Series("_m", [], dtype=pl.String)  # NIR + rang, by code
        self._first = np.empty(0, dtype=np.int32)  # earliest date per code (days; _NO_DATE)

    def __len__(self) -> int:
        return self._ids.len()

    def _add(self, integers: np.ndarray, messages: pl.Series) -> np.ndarray:
        """Codes for new (NIR, rang): their HMAC ids computed, appended."""
        codes = np.arange(len(self), len(self) + len(integers), dtype=np.int64)
        ids = hmac_ids(self.key, messages.cast(pl.Binary).to_list())
        self._codes.add(integers, codes)
        self._ids = self._ids.append(pl.Series("assure_id", ids, dtype=pl.String))
        self._messages = self._messages.append(messages.alias("_m"))
        if self._ids.n_chunks() > 32:
            self._ids, self._messages = self._ids.rechunk(), self._messages.rechunk()
        self._first = np.concatenate([self._first, np.full(len(integers), _NO_DATE, np.int32)])
        return codes

    def pseudonymise(
        self, frame: pl.DataFrame, nir: str, number: str, psa: str, rang: str, date: str
    ) -> pl.DataFrame:
        """``frame`` with ``assure_id``: the HMAC of ``nir`` + ``rang``, or ``psa`` where the
        line has no NIR (exactly one of the two is filled per row). ``nir``: the NIR text
        (checked); ``number``: the same as an exact integer; ``rang``: integer, already
        defaulted to 1, one digit; ``date``: the line's date (FLX_DIS_DTD)."""
        integer = frame.select(pl.col(number) * 10 + pl.col(rang)).to_series()
        has = integer.is_not_null()
        every = bool(has.all())
        rows = None if every else has.arg_true()
        values = (integer if every else integer.gather(rows)).to_numpy()
        unique, first_row, inverse = _unique(values)
        codes = self._codes.lookup(unique)
        new = codes < 0
        if new.any():
            at = first_row[new] if every else rows.to_numpy()[first_row[new]]
            sub = frame.select(pl.col(nir), pl.col(rang).cast(pl.String))[at]
            messages = sub.select(pl.concat_str(pl.col(nir), pl.col(rang))).to_series()
            codes[new] = self._add(unique[new], messages)
        per_row = codes[inverse]
        dates = frame.get_column(date).cast(pl.Date).to_physical().fill_null(_NO_DATE)
        np.minimum.at(self._first, per_row, (dates if every else dates.gather(rows)).to_numpy())
        # Per distinct value first, then per row: gathering rows straight from the file's
        # ids (hundreds of thousands) was 4 times slower (cache misses).
        ids = self._ids.gather(pl.Series(codes)).gather(pl.Series(inverse))
        if not every:
            ids = pl.repeat(None, frame.height, dtype=pl.String, eager=True).scatter(rows, ids)
        return frame.with_columns(assure_id=pl.coalesce(ids, pl.col(psa)))

    def identities(self) -> pl.DataFrame:
        """The identity store's rows of the file: one per distinct (NIR, rang) met, with a
        clear NIR: ``assure_id``, ``BEN_NIR``, ``BEN_RNG_GEM``, ``premiere_vue`` (min date)."""
        m = pl.col("_m")
        # Rang is one digit (1-9, checked before): the message splits back into NIR and rang.
        return pl.DataFrame(
            [self._ids.rechunk(), self._messages.rechunk(), pl.Series("_d", self._first)]
        ).select(
            "assure_id",
            m.str.slice(0, m.str.len_chars() - 1).alias("BEN_NIR"),
            m.str.slice(-1).cast(pl.Int16).alias("BEN_RNG_GEM"),
            pl.when(pl.col("_d") != _NO_DATE)
            .then(pl.col("_d"))
            .cast(pl.Date)
            .alias("premiere_vue"),
        )


def mask_value(value: str) -> str:
    """``1850775123456 21`` → ``18507**********``: first 5 characters kept."""
    return value[:MASK_KEEP] + "*" * max(len(value) - MASK_KEEP, 0)


def mask_texts(texts: pl.Series, nirs: pl.Series) -> pl.Series:
    """Original texts with their NIR masked.

    ``nirs``: the BEN_NIR field of each text (null when absent). Every occurrence of that
    value is masked, then any remaining NIR-shaped token (shifted fields, unknown header).
    Whole columns at once: a NIR-shaped token is a whole word of 15 or 13 characters, so
    masking the 15-character ones, then the 13-character ones, is :data:`NIR_LIKE_RE`.
    """
    t, n = pl.col("t"), pl.col("n")
    masked_nir = n.str.slice(0, MASK_KEEP).str.pad_end(n.str.len_chars(), "*")
    own = pl.when(n.str.len_chars() > MASK_KEEP).then(t.str.split(n).list.join(masked_nir))
    out = pl.DataFrame({"t": texts.cast(pl.String), "n": nirs.cast(pl.String)}).select(
        pl.coalesce(own, t)
        .str.replace_all(_NIR_LIKE_15, "${1}" + "*" * 10)
        .str.replace_all(_NIR_LIKE_13, "${1}" + "*" * 8)
    )
    return out.to_series().alias(texts.name)

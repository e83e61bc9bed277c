"""NIR pseudonymisation and masking.

``assure_id`` = HMAC-SHA256(key, BEN_NIR + BEN_RNG_GEM) in hex, truncated to 32 characters
(contract ``ij_paiements.md``); a line that comes with ``BEN_NIR_PSA`` keeps it as
``assure_id``. The HMAC is computed once per distinct (NIR, rang) and joined back.
Masking keeps the first 5 characters of a NIR and replaces the rest with ``*``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import polars as pl

ID_LENGTH = 32
MASK_KEEP = 5
# Any token shaped like a NIR (13 characters, with or without its 2-digit key): a safety net
# for lines whose fields are shifted, so the NIR is not where the header says.
NIR_LIKE_RE = r"\b[12][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{6}(?:[0-9]{2})?\b"
_NIR_LIKE = re.compile(NIR_LIKE_RE)


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


def pseudonymise(
    frame: pl.DataFrame,
    key: bytes,
    nir: str,
    psa: str,
    rang: str,
    date: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add ``assure_id`` to ``frame`` and return the identities met.

    ``nir``, ``psa``: String columns (exactly one filled per row); ``rang``: Int column
    (rang gémellaire, already defaulted to 1); ``date``: the line's date (FLX_DIS_DTD).
    The second frame has one row per distinct (NIR, rang) with a clear NIR — the identity
    store's rows: ``assure_id``, ``BEN_NIR``, ``BEN_RNG_GEM``, ``premiere_vue`` (min date).
    """
    keyed = frame.select(
        _m=pl.concat_str(pl.col(nir), pl.col(rang).cast(pl.String)), _d=pl.col(date)
    )
    # One hash pass gives the distinct (NIR, rang) and their first date; each is hashed once
    # (a cache across chunks was tried: its dictionary lookups cost more than the HMACs
    # they saved), then attached to the rows by one join.
    per_msg = keyed.drop_nulls("_m").group_by("_m").agg(premiere_vue=pl.col("_d").min())
    ids = pl.Series(
        "assure_id",
        hmac_ids(key, per_msg.get_column("_m").cast(pl.Binary).to_list()),
        dtype=pl.String,
    )
    per_msg = per_msg.with_columns(ids)
    attached = keyed.join(
        per_msg.select("_m", "assure_id"), on="_m", how="left", maintain_order="left"
    ).get_column("assure_id")
    out = frame.with_columns(assure_id=pl.coalesce(attached, pl.col(psa)))
    # Rang is one digit (1-9, checked before): the message splits back into NIR and rang.
    m = pl.col("_m")
    identities = per_msg.select(
        "assure_id",
        m.str.slice(0, m.str.len_chars() - 1).alias("BEN_NIR"),
        m.str.slice(-1).cast(pl.Int16).alias("BEN_RNG_GEM"),
        pl.col("premiere_vue").cast(pl.Date),
    )
    return out, identities


def mask_value(value: str) -> str:
    """``1850775123456 21`` → ``18507**********``: first 5 characters kept."""
    return value[:MASK_KEEP] + "*" * max(len(value) - MASK_KEEP, 0)


def mask_texts(texts: pl.Series, nirs: pl.Series) -> pl.Series:
    """Original texts with their NIR masked.

    ``nirs``: the BEN_NIR field of each text (null when absent). Every occurrence of that
    value is masked, then any remaining NIR-shaped token (shifted fields, unknown header).
    """
    out = []
    for text, nir in zip(texts.to_list(), nirs.to_list(), strict=True):
        if text is not None:
            if nir and len(nir) > MASK_KEEP:
                text = text.replace(nir, mask_value(nir))
            text = _NIR_LIKE.sub(lambda m: mask_value(m.group(0)), text)
        out.append(text)
    return pl.Series(texts.name, out, dtype=pl.String)

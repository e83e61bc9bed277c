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


def hmac_ids(key: bytes, messages: list[str]) -> list[str]:
    """HMAC ids of many ``NIR + rang`` strings (the keyed state is built once)."""
    base = hmac.new(key, digestmod=hashlib.sha256)
    out = []
    for msg in messages:
        h = base.copy()
        h.update(msg.encode("utf-8"))
        out.append(h.hexdigest()[:ID_LENGTH])
    return out


def pseudonymise(
    frame: pl.DataFrame, key: bytes, nir: str, psa: str, rang: str, date: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add ``assure_id`` to ``frame`` and return the identities met.

    ``nir``, ``psa``: String columns (exactly one filled per row); ``rang``: Int column
    (rang gémellaire, already defaulted to 1); ``date``: the line's date (FLX_DIS_DTD).
    The second frame has one row per distinct (NIR, rang) with a clear NIR — the identity
    store's rows: ``assure_id``, ``BEN_NIR``, ``BEN_RNG_GEM``, ``premiere_vue`` (min date).
    """
    msg = pl.concat_str(pl.col(nir), pl.col(rang).cast(pl.String))
    distinct = (
        frame.filter(pl.col(nir).is_not_null())
        .group_by(msg.alias("_msg"))
        .agg(
            pl.col(nir).first().alias("BEN_NIR"),
            pl.col(rang).first().cast(pl.Int16).alias("BEN_RNG_GEM"),
            pl.col(date).min().alias("premiere_vue"),
        )
    )
    ids = pl.Series("assure_id", hmac_ids(key, distinct["_msg"].to_list()), dtype=pl.String)
    distinct = distinct.with_columns(ids)
    out = frame.with_columns(msg.alias("_msg")).join(
        distinct.select("_msg", pl.col("assure_id").alias("_hmac")), on="_msg", how="left"
    )
    out = out.with_columns(assure_id=pl.coalesce("_hmac", pl.col(psa))).drop("_msg", "_hmac")
    return out, distinct.select("assure_id", "BEN_NIR", "BEN_RNG_GEM", "premiere_vue")


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

"""Synthetic NIRs in a range INSEE never assigns, with valid keys.

Reserved range (documented in data/sample/README.md):
- département of birth ``99`` (born abroad) with a country code ``990``–``999``: INSEE country
  codes of the NIR stop well below 990, so no real person has such a NIR;
- a few Corsican NIRs (``2A``/``2B``) with a commune ``990``–``999``: Corsican communes are
  numbered below 400. They exercise the key rule where 2A counts 19 and 2B counts 18.

The NIR is ``S AA MM DD CCC OOO`` + key, key = 97 − (NIR mod 97).
"""

from __future__ import annotations

import numpy as np

# Slots per (sex, birth year, département kind): 12 months x 10 communes x 999 order numbers.
SLOTS = 12 * 10 * 999
_STRIDE = 7919  # prime, coprime with SLOTS = 2^3 * 3^4 * 5 * 37: a bijection of the slots

DEPT_KINDS = ("99", "2A", "2B")
# Value of the département positions in the key computation.
DEPT_NUMERIC = np.array([99, 19, 18], dtype=np.int64)


def nir_number(sex, yy, mm, dept_numeric, commune, ordre) -> np.ndarray:
    """The 13-digit NIR as an integer (2A -> 19, 2B -> 18 already applied)."""
    return (
        np.asarray(sex, dtype=np.int64) * 10**12
        + np.asarray(yy, dtype=np.int64) * 10**10
        + np.asarray(mm, dtype=np.int64) * 10**8
        + np.asarray(dept_numeric, dtype=np.int64) * 10**6
        + np.asarray(commune, dtype=np.int64) * 10**3
        + np.asarray(ordre, dtype=np.int64)
    )


def nir_key(number: np.ndarray) -> np.ndarray:
    """Control key of the NIR: 97 − (NIR mod 97), in 1..97."""
    return 97 - np.asarray(number, dtype=np.int64) % 97


def slot_parts(slot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Month (1–12), commune (990–999) and order number (1–999) of a slot index."""
    mixed = (np.asarray(slot, dtype=np.int64) * _STRIDE + 1) % SLOTS
    mm = mixed % 12 + 1
    rest = mixed // 12
    return mm, 990 + rest % 10, rest // 10 + 1


def nir_text(sex, yy, mm, kind, commune, ordre) -> np.ndarray:
    """NIR strings of 15 characters (13 + key), vectorised with numpy string ops."""
    number = nir_number(sex, yy, mm, DEPT_NUMERIC[kind], commune, ordre)
    key = nir_key(number)
    head = np.char.zfill((np.asarray(sex) * 10**4 + np.asarray(yy) * 100 + mm).astype(str), 5)
    dept = np.asarray(DEPT_KINDS)[kind]
    tail = np.char.zfill((np.asarray(commune) * 1000 + ordre).astype(str), 6)
    return np.char.add(
        np.char.add(np.char.add(head, dept), tail), np.char.zfill(key.astype(str), 2)
    )


def check_key(nir: str) -> bool:
    """True when a 15-character NIR has a valid key (for tests and documentation)."""
    dept = {"2A": "19", "2B": "18"}.get(nir[5:7].upper(), nir[5:7])
    body = nir[:5] + dept + nir[7:13]
    return 97 - int(body) % 97 == int(nir[13:])

"""Vectorised helpers shared by the generator (numpy only, no Python loops over rows)."""

from __future__ import annotations

import numpy as np

EPOCH = np.datetime64("1970-01-01", "D")


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent index and rank within parent for ``counts[i]`` children of each parent ``i``."""
    counts = np.asarray(counts, dtype=np.int64)
    parent = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(parent.size) - starts[parent]
    return parent, rank


def group_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum of ``values`` within runs of equal ``group`` (sorted groups)."""
    total = np.cumsum(values)
    if values.size == 0:
        return total
    first = np.r_[True, group[1:] != group[:-1]]
    base = np.where(first, total - values, 0)
    base = np.maximum.accumulate(np.where(first, base, -np.inf))
    return total - base.astype(total.dtype)


def days_to_date(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 -> ``datetime64[D]``."""
    return EPOCH + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")


def date_to_days(dates) -> np.ndarray:
    return (np.asarray(dates, dtype="datetime64[D]") - EPOCH).astype(np.int64)


def next_business_day(days: np.ndarray) -> np.ndarray:
    """Nightly extracts run on working days: roll a date forward to Monday–Friday."""
    rolled = np.busday_offset(days_to_date(days), 0, roll="forward")
    return date_to_days(rolled)


def previous_business_day(days: np.ndarray) -> np.ndarray:
    rolled = np.busday_offset(days_to_date(days), 0, roll="backward")
    return date_to_days(rolled)


def pick(rng: np.random.Generator, choices, probs, size: int) -> np.ndarray:
    """``size`` draws of ``choices`` with probabilities ``probs`` (normalised)."""
    p = np.asarray(probs, dtype=float)
    return np.asarray(choices)[rng.choice(len(p), size=size, p=p / p.sum())]


def pick_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix -> column index."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(probs.shape[0])[:, None]
    return (u > cum).sum(axis=1)


def luhn_digit(numbers: np.ndarray, length: int) -> np.ndarray:
    """Luhn check digit of non-negative integers written on ``length`` digits."""
    n = np.asarray(numbers, dtype=np.int64).copy()
    total = np.zeros(n.shape, dtype=np.int64)
    for pos in range(length):  # loop over digit positions, vectorised over rows
        digit = n % 10
        n //= 10
        if pos % 2 == 0:  # rightmost digit of the payload is doubled
            digit = digit * 2
            digit = np.where(digit > 9, digit - 9, digit)
        total += digit
    return (10 - total % 10) % 10

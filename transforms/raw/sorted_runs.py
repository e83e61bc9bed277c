"""A growing set of 64-bit integers, optionally with a value each, for batch lookups.

Pure: numpy arrays in, numpy arrays out. Used for the keys already accepted in a file
(doublons) and for the (NIR, rang) already pseudonymised in a file.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _gallop(run, queries, pos, hit):
    """For sorted ``queries``, ``pos``: where each would be inserted in the sorted ``run``
    (left side), ``hit``: whether it is there. Each search starts where the previous one
    ended and doubles its step (galloping): the probes stay near each other, where a binary
    search over the whole run misses the cache at every step (5 M-value run, 121,000
    queries: 4.7 ms against 16.6 for ``np.searchsorted``)."""
    n = run.size
    start = 0
    for i in range(queries.size):
        x = queries[i]
        lo = start
        hi = start
        step = 1
        while hi < n and run[hi] < x:
            lo = hi + 1
            hi = lo + step
            step *= 2
        if hi > n:
            hi = n
        while lo < hi:
            mid = (lo + hi) >> 1
            if run[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        start = lo
        pos[i] = lo
        hit[i] = lo < n and run[lo] == x


class SortedRuns:
    """Integers kept as a few sorted arrays whose sizes at least double from the newest to
    the oldest (merged when a newer one catches up): adding a batch costs a sort of the batch
    plus amortised linear merges, not a re-sort of everything seen; a lookup is one binary
    search per run (a handful). Queries come sorted: walking the runs in order is ten times
    faster than random probes into millions of values (cache misses).

    With ``values``, each added integer carries an int64 value (:meth:`lookup`). An integer
    is added once (callers add only what :meth:`lookup` / :meth:`found` did not find).
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []
        self.values: list[np.ndarray | None] = []

    def add(self, keys: np.ndarray, values: np.ndarray | None = None) -> None:
        if self.runs and (values is None) != (self.values[0] is None):
            raise ValueError("SortedRuns.add : toujours avec des valeurs, ou jamais")
        if values is None:
            self.runs.append(np.sort(keys))
            self.values.append(None)
        else:
            order = np.argsort(keys, kind="stable")
            self.runs.append(keys[order])
            self.values.append(np.asarray(values, dtype=np.int64)[order])
        while len(self.runs) >= 2 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            newer, newer_values = self.runs.pop(), self.values.pop()
            older, older_values = self.runs.pop(), self.values.pop()
            merged = np.concatenate([older, newer])
            if newer_values is None:
                merged.sort(kind="stable")  # two sorted runs: a linear merge
                self.runs.append(merged)
                self.values.append(None)
            else:
                order = np.argsort(merged, kind="stable")
                self.runs.append(merged[order])
                self.values.append(np.concatenate([older_values, newer_values])[order])

    def _hits(self, run: np.ndarray, sorted_queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(sorted_queries, dtype=run.dtype)  # one type: exact
        pos = np.empty(len(queries), dtype=np.int64)
        hit = np.empty(len(queries), dtype=np.bool_)
        _gallop(run, queries, pos, hit)
        return pos, hit

    def found(self, sorted_queries: np.ndarray) -> np.ndarray:
        """The values of ``sorted_queries`` (sorted) present in the set."""
        hit = np.zeros(len(sorted_queries), dtype=bool)
        for run in self.runs:
            hit |= self._hits(run, sorted_queries)[1]
        return sorted_queries[hit]

    def lookup(self, sorted_queries: np.ndarray) -> np.ndarray:
        """The value of each of ``sorted_queries`` (sorted), -1 where absent."""
        out = np.full(len(sorted_queries), -1, dtype=np.int64)
        for run, values in zip(self.runs, self.values, strict=True):
            if values is None:
                raise ValueError("SortedRuns.lookup : entiers ajoutés sans valeurs")
            pos, hit = self._hits(run, sorted_queries)
            out[hit] = values[pos[hit]]
        return out

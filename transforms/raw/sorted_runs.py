"""A growing set of 64-bit integers, optionally with a value each, for batch lookups.

Pure: numpy arrays in, numpy arrays out. Used for the keys already accepted in a file
(doublons) and for the (NIR, rang) already pseudonymised in a file.
"""

from __future__ import annotations

import numpy as np


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
        pos = np.searchsorted(run, sorted_queries).clip(max=len(run) - 1)
        return pos, run[pos] == sorted_queries

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

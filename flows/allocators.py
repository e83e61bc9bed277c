"""Memory allocator settings of a ``ru`` process, applied once at start (:func:`tune`).

A batch run allocates and frees the same large buffers chunk after chunk (24 MB blocks of a
CSV, their columns, Parquet pages). By default each of the three allocators in the process
gives freed memory back to the system quickly, and takes it back at the next chunk through
page faults (the kernel zeroes every page): on the 5-million-line ingestion benchmark that was
680,000 faults and 3 to 3.8 s of system time out of ~24 CPU-s. Keeping freed memory for reuse
halves the faults and saves 1.2 to 1.8 s of system time, for ~0.1 GiB more peak memory
(measured with ``benchmarks/bench_ingest.py``):

- Polars' jemalloc: no decay of dirty or muzzy pages (``_RJEM_MALLOC_CONF``, read when
  Polars loads: must be set before its import);
- Arrow's mimalloc: no purge of freed pages (``MIMALLOC_PURGE_DELAY``, read when pyarrow
  loads);
- glibc's malloc (Python's bytes and numpy arrays): blocks up to 32 MB come from the heap,
  which is not trimmed below 1 GiB, and every thread uses the main arena (thread arenas
  are unmapped and faulted in again) — through ``mallopt``, effective at once.

A value already in the environment wins (an operator can set other ones). Without effect
(and harmless) on a system without glibc or once Polars/pyarrow are imported.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

ENVIRONMENT = {
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1",
    "MIMALLOC_PURGE_DELAY": "-1",
}
# mallopt parameters (glibc malloc.h) and their values.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -2, -3, -8
MALLOPT = {
    _M_MMAP_THRESHOLD: 32 * 2**20,  # glibc's largest allowed value on 64 bits
    _M_TRIM_THRESHOLD: 2**30,
    _M_TOP_PAD: 64 * 2**20,
    _M_ARENA_MAX: 1,
}

_done = False


def tune() -> dict[str, str]:
    """Apply the settings (once per process); returns what was applied, for the logs."""
    global _done
    if _done:
        return {}
    _done = True
    applied: dict[str, str] = {}
    loaded = [m for m in ("polars", "pyarrow") if m in sys.modules]
    if loaded:
        log.debug("allocateurs : %s déjà chargés, réglages d'environnement sans effet", loaded)
    for name, value in ENVIRONMENT.items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (musl has no mallopt)
            return applied
        env_names = {
            _M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_",
            _M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
            _M_TOP_PAD: "MALLOC_TOP_PAD_",
            _M_ARENA_MAX: "MALLOC_ARENA_MAX",
        }
        for param, value in MALLOPT.items():
            if env_names[param] in os.environ:
                continue  # the operator's choice, already read by glibc
            if mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:
                applied[env_names[param]] = str(value)
    log.debug("allocateurs : %s", applied)
    return applied

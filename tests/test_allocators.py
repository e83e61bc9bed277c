"""Allocator settings applied when ``ru`` starts (flows/allocators.py)."""

from __future__ import annotations

import sys

import pytest

from flows import allocators


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(allocators, "_done", False)
    for name in (*allocators.ENVIRONMENT, "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_sets_the_allocator_environment_once(fresh):
    import os

    applied = allocators.tune()
    for name, value in allocators.ENVIRONMENT.items():
        assert os.environ[name] == value
        assert applied[name] == value
    if sys.platform.startswith("linux"):  # glibc: mallopt accepted every parameter
        assert applied["MALLOC_ARENA_MAX"] == "1"
        assert applied["MALLOC_MMAP_THRESHOLD_"] == str(32 * 2**20)
    assert allocators.tune() == {}  # once per process


def test_an_operator_setting_wins(fresh):
    import os

    fresh.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:1000")
    fresh.setenv("MALLOC_ARENA_MAX", "4")
    applied = allocators.tune()
    assert os.environ["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:1000"
    assert "_RJEM_MALLOC_CONF" not in applied
    assert "MALLOC_ARENA_MAX" not in applied
    assert applied["MIMALLOC_PURGE_DELAY"] == "-1"

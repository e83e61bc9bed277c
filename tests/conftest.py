"""Shared fixtures. Every test works in its own temporary data folder."""

from __future__ import annotations

import os

import pytest

# No network, no analytics, no stray Prefect home: set before anything imports prefect.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data folder, set as RU_DATA, with a test pseudonymisation key."""
    folder = tmp_path / "donnees"
    monkeypatch.setenv("RU_DATA", str(folder))
    monkeypatch.setenv("RU_CLE_PSEUDO", "cle-de-test")
    return folder

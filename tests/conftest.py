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


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite, in a temporary Prefect home) for the session."""
    import tempfile

    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="ru-prefect-"))
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(server_startup_timeout=180),
    ):
        yield


@pytest.fixture(scope="session")
def demo_data(prefect_server, tmp_path_factory):
    """A data folder filled once per session by ``ru demo --nuits 7`` (committed sample, demo
    pseudonymisation key): ingested history, trained and promoted model, 7 nights with their
    manifests, tables, exports and reports. Returns its ``DataPaths``. Shared by several
    tests: read it only (copy it to write)."""
    from flows.demo import demo_at
    from flows.nightly_cli import _prefect_environment
    from flows.settings import SAMPLE_DIR, DataPaths

    paths = DataPaths(tmp_path_factory.mktemp("demo")).ensure()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RU_CLE_PSEUDO", raising=False)
        mp.setenv("RU_DATA", str(paths.root))
        mp.setenv("CI", "1")  # no progress bars in the test logs
        _prefect_environment(paths)
        demo_at(paths, SAMPLE_DIR, nights=7)
    return paths

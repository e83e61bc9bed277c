"""The nightly flow: run manifest, backfill bookkeeping, and the flow end to end.

The manifest and backfill logic are plain functions, tested without Prefect. The flow tests
share one temporary Prefect server for the whole session (``prefect_test_harness``, started
once: ~10 s) and run the real steps on a small generated sample in a landing folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

# Prefect's home (its SQLite database, its logs) in a temporary folder, before Prefect loads.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="ru-prefect-"))

from flows import nightly as nightly_module
from flows.nightly import (
    RunManifest,
    StepFailed,
    landing_files,
    nights_done,
    nights_to_run,
    read_manifests,
)
from flows.settings import DataPaths


def D(text: str) -> date:
    return date.fromisoformat(text)


# ---------------------------------------------------------------- manifest (plain)


def _manifest(paths: DataPaths, as_of: date, ok: bool) -> RunManifest:
    run = RunManifest.start(paths, as_of, None)
    run.step("configuration", lambda: {"ok": True})
    if ok:
        run.finish()
    else:
        with pytest.raises(StepFailed):
            run.step("construction", _boom)
    return run


def _boom():
    raise ValueError("colonne manquante dans lignes_ij")


def test_manifest_records_steps_counts_and_the_failure(tmp_path):
    paths = DataPaths(tmp_path)
    run = RunManifest.start(paths, D("2026-03-02"), tmp_path / "arrivee")
    assert json.loads(run.path.read_text())["statut"] == "en_cours"
    run.step("configuration", lambda: {"fichiers": 3, "quand": D("2026-03-02")})
    with pytest.raises(StepFailed) as caught:
        run.step("construction", _boom)
    assert caught.value.step == "construction"
    assert "colonne manquante dans lignes_ij" in str(caught.value)
    assert "construction des arrêts" in str(caught.value)
    written = json.loads(run.path.read_text(encoding="utf-8"))
    assert run.path == tmp_path / "executions" / run.run_id / "manifest.json"
    assert written["statut"] == "echec"
    assert written["etape_en_echec"] == "construction"
    assert written["erreur"] == "colonne manquante dans lignes_ij"
    assert [(s["nom"], s["statut"]) for s in written["etapes"]] == [
        ("configuration", "succes"),
        ("construction", "echec"),
    ]
    assert written["etapes"][0]["resume"] == {"fichiers": 3, "quand": "2026-03-02"}
    assert written["as_of"] == "2026-03-02" and written["duree_s"] >= 0
    assert {"ru-ij", "duckdb", "prefect", "python"} <= set(written["versions"])
    assert "modele" in written["versions"]


def test_backfill_skips_nights_already_done(tmp_path):
    paths = DataPaths(tmp_path)
    _manifest(paths, D("2026-03-02"), ok=True)
    _manifest(paths, D("2026-03-03"), ok=False)  # failed: to run again
    _manifest(paths, D("2026-03-04"), ok=True)
    (paths.runs / "illisible").mkdir()
    (paths.runs / "illisible" / "manifest.json").write_text("{pas du json", encoding="utf-8")
    assert len(read_manifests(paths)) == 3
    assert nights_done(paths) == {D("2026-03-02"), D("2026-03-04")}
    assert nights_to_run(paths, D("2026-03-01"), D("2026-03-05")) == [
        D("2026-03-01"),
        D("2026-03-03"),
        D("2026-03-05"),
    ]


def test_a_night_ingests_only_files_extracted_by_d(tmp_path):
    landing = tmp_path / "arrivee"
    landing.mkdir()
    names = [
        "actions_20260301_31.csv",
        "ij_paiements_20260302_311.csv.gz",
        "ij_paiements_20260303_311.csv",
        "lisez-moi.txt",
        ".cache",
    ]
    for name in names:
        (landing / name).write_text("x", encoding="utf-8")
    assert [p.name for p in landing_files(landing, D("2026-03-02"))] == [
        "actions_20260301_31.csv",
        "ij_paiements_20260302_311.csv.gz",
        "lisez-moi.txt",  # no date: ingestion sets it aside and says why
    ]
    assert len(landing_files(landing, None)) == 4
    assert landing_files(tmp_path / "absent", None) == []


# ---------------------------------------------------------------- the flow (Prefect)


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite) for every flow test of the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(server_startup_timeout=180),
    ):
        yield


LAST_NIGHT = D("2026-03-31")


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Small synthetic extracts: 300 assurés, two ELSM, 15 months, the last 3 nights daily."""
    from flows.sample import generate_sample
    from synthetic.echantillon import Parametres

    folder = tmp_path_factory.mktemp("arrivee")
    params = Parametres(
        n_assures=300,
        debut=D("2025-01-01"),
        fin=LAST_NIGHT,
        elsm=("31", "64B"),
        graine=7,
        taux_defauts=0.01,
    )
    generate_sample(folder, params, nuits=3)
    return folder


@pytest.fixture
def night_env(data_dir, monkeypatch):
    monkeypatch.setenv("CI", "1")  # no progress bars in the test logs
    return DataPaths(data_dir)


def _rows(paths: DataPaths, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


STEPS = [
    "configuration",
    "ingestion",
    "controles",
    "construction",
    "ciblage",
    "orientation",
    "export",
    "indicateurs",
    "rapport",
]


def test_nightly_runs_every_step_and_writes_its_manifest(prefect_server, landing, night_env):
    paths = night_env
    first = LAST_NIGHT - timedelta(days=1)
    manifest = nightly_module.run_night(paths, first, landing)
    assert manifest["statut"] == "succes", manifest.get("erreur")
    assert [s["nom"] for s in manifest["etapes"]] == STEPS
    assert all(s["statut"] == "succes" and s["duree_s"] >= 0 for s in manifest["etapes"])
    assert manifest["prefect_flow_run"]
    on_disk = json.loads((paths.runs / manifest["run_id"] / "manifest.json").read_text())
    assert on_disk["statut"] == "succes" and on_disk["as_of"] == first.isoformat()
    steps = {s["nom"]: s["resume"] for s in manifest["etapes"]}
    # the night ingested only files extracted by D: none dated after it
    ingested = [f["fichier"] for f in steps["ingestion"]["fichiers"]]
    assert ingested and all(LAST_NIGHT.strftime("%Y%m%d") not in name for name in ingested)
    # counts in the manifest are those of the tables
    [(arrets,)] = _rows(paths, "select count(*) from arrets where as_of = ?", [first])
    assert steps["construction"]["arrets"] == arrets > 0
    [(f1_rows,)] = _rows(paths, "select count(*) from indicateurs_f1 where as_of = ?", [first])
    assert steps["indicateurs"]["lignes"]["indicateurs_f1"] == f1_rows
    report = paths.rapports / f"rapport_{first:%Y%m%d}.html"
    assert steps["rapport"]["chemin"] == str(report) and report.exists()
    assert (paths.exports / first.isoformat()).is_dir()

    # the next night, then the same night again: idempotent
    second = nightly_module.run_night(paths, LAST_NIGHT, landing)
    assert second["statut"] == "succes", second.get("erreur")
    routed = _rows(paths, "select count(*) from routage where as_of = ?", [LAST_NIGHT])
    again = nightly_module.run_night(paths, LAST_NIGHT, landing)
    assert again["statut"] == "succes"
    again_steps = {s["nom"]: s["resume"] for s in again["etapes"]}
    assert again_steps["ingestion"]["totaux"]["lignes_acceptees"] == 0  # all already ingested
    assert _rows(paths, "select count(*) from routage where as_of = ?", [LAST_NIGHT]) == routed
    assert nights_done(paths) == {first, LAST_NIGHT}


def test_failed_step_keeps_previous_outputs_and_exits_non_zero(
    prefect_server, landing, night_env, monkeypatch
):
    from typer.testing import CliRunner

    from flows.cli import app

    paths = night_env
    good = nightly_module.run_night(paths, LAST_NIGHT, landing)
    assert good["statut"] == "succes", good.get("erreur")
    report = paths.rapports / f"rapport_{LAST_NIGHT:%Y%m%d}.html"
    report_before = report.read_bytes()
    indicators_before = _rows(paths, "select * from indicateurs_f1 order by all")

    @nightly_module.task(name="orientation")
    def broken_routing(paths, as_of, settings):
        raise OSError("config/capacites.csv illisible")

    monkeypatch.setattr(nightly_module, "route_dossiers", broken_routing)
    result = CliRunner().invoke(
        app, ["nightly", "--as-of", LAST_NIGHT.isoformat(), "--landing", str(landing)]
    )
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "étape « orientation » (orientation vers les files) en échec" in message
    assert "config/capacites.csv illisible" in message
    assert "Les sorties de la dernière exécution réussie restent en place" in message

    failed = [m for m in read_manifests(paths) if m["statut"] == "echec"]
    assert len(failed) == 1
    assert failed[0]["etape_en_echec"] == "orientation"
    assert failed[0]["erreur"] == "config/capacites.csv illisible"
    assert [s["nom"] for s in failed[0]["etapes"]][-1] == "orientation"  # nothing after it
    # exports, indicators and report of the last good run are untouched
    assert report.read_bytes() == report_before
    assert _rows(paths, "select * from indicateurs_f1 order by all") == indicators_before
    # the earlier success of the same night still counts for a backfill
    assert nights_done(paths) == {LAST_NIGHT}


def test_backfill_command_runs_missing_nights_only(prefect_server, landing, night_env):
    from typer.testing import CliRunner

    from flows.cli import app

    paths = night_env
    first = LAST_NIGHT - timedelta(days=2)
    nightly_module.run_night(paths, first, landing)
    result = CliRunner().invoke(
        app,
        [
            "backfill",
            "--from",
            first.isoformat(),
            "--to",
            LAST_NIGHT.isoformat(),
            "--landing",
            str(landing),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 nuit(s) à exécuter, 1 déjà réussie(s)" in result.output
    assert nights_done(paths) == {first, first + timedelta(days=1), LAST_NIGHT}
    assert len(read_manifests(paths)) == 3

"""End to end: ``ru demo`` on the committed sample produces every table, file and the report,
keeps clear NIRs in the identity store and the exports only, and a second run changes
nothing. Uses the session's ``demo_data`` folder (``ru demo --nuits 7``)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from flows.demo import demo_at, plan_demo
from flows.settings import SAMPLE_DIR, DataPaths

TABLES = [
    "lignes_ij",
    "actions",
    "quarantaine",
    "ingestions",
    "arrets",
    "prescripteurs",
    "ciblage",
    "routage",
    "indicateurs_f1",
    "indicateurs_p4",
    "indicateurs_pdp",
    "volumes",
]
QUEUES = ("TECH", "CSAM", "ISM", "MC")


def _table_fingerprints(paths: DataPaths) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent hash of every table's content."""
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        out = {}
        for table in TABLES:
            rows = con.sql(f'select * from "{table}"').fetchall()
            digest = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()
            out[table] = (len(rows), digest)
        return out
    finally:
        con.close()


def _file_fingerprints(root: Path) -> dict[str, str]:
    """sha256 of every output file (exports, reports, models, lake, run manifests)."""
    out = {}
    for folder in ("exports", "rapports", "modeles", "lake", "executions"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_demo_produces_every_table_file_and_the_report(demo_data):
    plan = plan_demo(SAMPLE_DIR, 7)
    last = plan.nights[-1]

    counts = {table: n for table, (n, _) in _table_fingerprints(demo_data).items()}
    for table in TABLES:
        assert counts[table] > 0, f"table {table} vide après la démo"

    con = duckdb.connect(str(demo_data.warehouse), read_only=True)
    try:
        nights_built = {r[0] for r in con.sql("select distinct as_of from arrets").fetchall()}
        routed = con.sql("select count(*) from routage where statut = 'affecte'").fetchall()[0][0]
        files = con.sql("select count(*), sum(lignes_lues) from ingestions").fetchall()[0]
        accounted = con.sql(
            "select count(*) from ingestions "
            "where lignes_lues <> lignes_acceptees + lignes_quarantaine"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert set(plan.nights) <= nights_built
    assert routed > 0
    assert files[0] == len(list(SAMPLE_DIR.glob("*_2*.csv*")))  # every extract ingested once
    assert accounted == 0  # lines read = accepted + quarantined, for every file

    manifests = [
        json.loads(p.read_text(encoding="utf-8")) for p in demo_data.runs.glob("*/manifest.json")
    ]
    assert sorted(m["as_of"] for m in manifests) == [d.isoformat() for d in plan.nights]
    assert all(m["statut"] == "succes" for m in manifests)

    assert (demo_data.rapports / f"rapport_{last:%Y%m%d}.html").exists()
    assert (demo_data.modeles / "chronicite" / "promu.json").exists()
    for elsm in ("31", "64B", "82"):
        folder = demo_data.exports / f"{last:%Y-%m-%d}" / elsm
        names = {p.name for p in folder.iterdir()}
        for queue in QUEUES:
            assert f"routage_{elsm}_{last:%Y%m%d}_{queue}.csv" in names
        assert any(n.endswith(".xlsx") for n in names)
        assert any(n.endswith(".parquet") for n in names)
        assert "manifest.json" in names


def test_clear_nirs_stay_in_the_identity_store_and_the_exports(demo_data):
    ident = duckdb.connect(str(demo_data.identite), read_only=True)
    try:
        nirs = [r[0] for r in ident.sql("select BEN_NIR from identite").fetchall()]
    finally:
        ident.close()
    assert len(nirs) > 1000

    # Every file but the identity store, the exports and the landing folder (the extracts as
    # the caisses deliver them): no NIR in its bytes.
    known = {n[:13].encode() for n in nirs}
    thirteen_digits = re.compile(rb"(?=([12][0-9]{12}))")
    for path in demo_data.root.rglob("*"):
        rel = path.relative_to(demo_data.root).parts
        if not path.is_file() or rel[0] in ("identite", "exports", "arrivee", "prefect"):
            continue
        found = set(thirteen_digits.findall(path.read_bytes())) & known
        assert not found, f"NIR en clair dans {path}"

    # Every text column of every warehouse table (compressed on disk): no NIR value.
    con = duckdb.connect(str(demo_data.warehouse), read_only=True)
    try:
        con.execute("create temp table nirs (nir varchar)")
        con.executemany(
            "insert into nirs values (?)", [[n] for n in nirs] + [[n[:13]] for n in nirs]
        )
        columns = con.sql(
            "select table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR' and table_name <> 'nirs'"
        ).fetchall()
        for table, column in columns:
            hits = con.sql(
                f'select count(*) from "{table}" t join nirs on t."{column}" = nirs.nir'
            ).fetchall()[0][0]
            assert hits == 0, f"NIR en clair dans {table}.{column}"
    finally:
        con.close()


@pytest.mark.slow
def test_running_the_demo_again_changes_nothing(demo_data, tmp_path, monkeypatch):
    monkeypatch.delenv("RU_CLE_PSEUDO", raising=False)  # the demo key, as the first run
    copy = DataPaths(tmp_path / "demo")
    shutil.copytree(demo_data.root, copy.root, ignore=shutil.ignore_patterns("prefect"))
    before_tables = _table_fingerprints(copy)
    before_files = _file_fingerprints(copy.root)

    summary = demo_at(copy, SAMPLE_DIR, nights=7)

    assert summary.nuits == []  # every night already done
    assert summary.ingestion["lignes_acceptees"] == 0  # every file already ingested
    assert _table_fingerprints(copy) == before_tables
    assert _file_fingerprints(copy.root) == before_files

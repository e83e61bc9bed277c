"""The ingestion against the synthetic generator: every injected defect is quarantined under
the rule the generator's manifest (``defauts.json``) names, no more, no less."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import duckdb
import pytest
from test_ingest_fixtures import TEST_KEY

from flows.ingest import ingest_paths
from flows.sample import Compression, Encodage, Format, generate_sample
from flows.settings import DataPaths
from synthetic.echantillon import Parametres


@pytest.mark.parametrize(
    ("fmt", "encodage", "compression"),
    [
        (Format.csv, Encodage.cp1252, Compression.historique),
        (Format.csv, Encodage.utf8_bom, Compression.aucun),
        (Format.parquet, Encodage.utf8, Compression.aucun),
    ],
)
def test_manifest_equals_quarantine_counts(tmp_path, fmt, encodage, compression):
    params = Parametres(
        n_assures=150,
        debut=date(2025, 6, 1),
        fin=date(2026, 10, 31),
        elsm=("31", "64B"),
        graine=7,
        taux_defauts=0.1,
        texte=fmt is Format.csv,
    )
    out = tmp_path / "arrivee"
    generate_sample(out, params, fmt=fmt, nuits=7, compression=compression, encodage=encodage)
    manifest = json.loads((out / "defauts.json").read_text(encoding="utf-8"))
    paths = DataPaths(tmp_path / "donnees")
    summary = ingest_paths(paths, [out], TEST_KEY)

    got: dict[str, Counter] = {"ij_paiements": Counter(), "actions": Counter()}
    for f in summary.fichiers:
        if f.source is None:
            assert f.statut == "ignore" and f.fichier.endswith(".json")
            continue
        assert f.statut == "ok", (f.fichier, f.motif)
        assert f.lignes_lues == f.lignes_acceptees + f.lignes_quarantaine
        got[f.source].update(f.regles)
    for source, per_rule in manifest.items():
        assert dict(got[source]) == {r: n for r, n in per_rule.items() if n}, source
    assert sum(manifest["ij_paiements"].values()) > 0

    # Each quarantined line names exactly one rule (one defect, one rule).
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    (multi,) = con.execute("select count(*) from quarantaine where len(regles) <> 1").fetchone()
    totals = con.execute(
        "select sum(lignes_lues), sum(lignes_acceptees), sum(lignes_quarantaine) from ingestions"
    ).fetchone()
    (in_tables,) = con.execute(
        "select (select count(*) from lignes_ij) + (select count(*) from actions)"
        " + (select count(*) from quarantaine)"
    ).fetchone()
    con.close()
    assert multi == 0
    assert totals[0] == totals[1] + totals[2] == in_tables

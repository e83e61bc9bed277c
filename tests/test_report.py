"""The HTML steering report: French formatting, content, self-containment, rendering.

The warehouse holds hand-written indicator rows (the columns of their contracts), a few
quarantined lines and, in one test, a promoted model. The last test opens the report in
headless Chromium and checks every chart is drawn, with no console error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date

import duckdb
import pytest

from expectations.contract import load_contract
from flows.report import (
    ReportError,
    fr_date,
    fr_mois,
    fr_nombre,
    fr_pourcent,
    report_at,
)
from flows.settings import DataPaths

AS_OF = date(2026, 4, 30)
CHARTS = 8  # F1, P4, PDP, codes, actors, queue fill, backlog, quarantine


def D(text: str) -> date:
    return date.fromisoformat(text)


def test_french_number_formatting():
    assert fr_nombre(1234567.891, 2) == "1\u202f234\u202f567,89"
    assert fr_nombre(12) == "12"
    assert fr_nombre(None) == "—"
    assert fr_pourcent(0.7) == "70,0\u00a0%"
    assert fr_pourcent(3 / 7) == "42,9\u00a0%"
    assert fr_pourcent(1, 0) == "100\u00a0%"
    assert fr_date(D("2026-03-02")) == "02/03/2026"
    assert fr_mois(D("2026-02-01")) == "février 2026"
    assert fr_mois(D("2026-12-01"), court=True) == "déc. 26"


def _insert(con, table: str, rows: list[dict]) -> None:
    con.execute(load_contract(table).ddl())
    for row in rows:
        cols = ", ".join(row)
        con.execute(
            f"insert into {table} ({cols}) values ({', '.join('?' * len(row))})",
            list(row.values()),
        )


def _f1(elsm, mois, routes, actions, provisoire):
    return {
        "as_of": AS_OF,
        "elsm": elsm,
        "mois": D(mois),
        "dossiers_routes": routes,
        "dossiers_avec_action": actions,
        "taux": actions / routes,
        "provisoire": provisoire,
    }


def _vol(elsm, semaine, axe, valeur, affectes, attente, capacite):
    return {
        "as_of": AS_OF,
        "elsm": elsm,
        "semaine_iso": semaine,
        "axe": axe,
        "valeur": valeur,
        "dossiers_affectes": affectes,
        "dossiers_en_attente": attente,
        "capacite": capacite,
        "taux_capacite": affectes / capacite if capacite else None,
    }


@pytest.fixture
def paths(tmp_path) -> DataPaths:
    paths = DataPaths(tmp_path / "donnees").ensure()
    con = duckdb.connect(str(paths.warehouse))
    _insert(
        con,
        "indicateurs_f1",
        [
            _f1("31", "2026-02-01", 1200, 900, False),
            _f1("31", "2026-03-01", 1000, 650, True),
            _f1("64B", "2026-02-01", 300, 150, False),
            _f1("64B", "2026-03-01", 200, 120, True),
        ],
    )
    _insert(
        con,
        "indicateurs_p4",
        [
            {
                "as_of": AS_OF,
                "elsm": "31",
                "mois": D("2026-01-01"),
                "arrets_avec_action": 400,
                "arrets_termines": 180,
                "taux": 0.45,
            }
        ],
    )
    _insert(
        con,
        "indicateurs_pdp",
        [
            {
                "as_of": d,
                "elsm": elsm,
                "arrets_longs": n,
                "arrets_avec_pdp": k,
                "taux": k / n,
            }
            for d, elsm, n, k in (
                (D("2026-03-31"), "31", 100, 50),
                (AS_OF, "31", 120, 84),
                (AS_OF, "64B", 30, 12),
            )
        ],
    )
    _insert(
        con,
        "volumes",
        [
            _vol("31", "2026-W17", "total", "total", 80, 12, 102),
            _vol("31", "2026-W18", "total", "total", 95, 30, 102),
            _vol("31", "2026-W18", "code_ru", "RU02", 60, 20, None),
            _vol("31", "2026-W18", "code_ru", "RU05", 35, 10, None),
            _vol("31", "2026-W18", "acteur", "TECH", 40, 0, 40),
            _vol("31", "2026-W18", "acteur", "CSAM", 30, 0, 30),
            _vol("31", "2026-W18", "acteur", "ISM", 5, 0, 12),
            _vol("31", "2026-W18", "acteur", "MC", 20, 0, 20),
            _vol("64B", "2026-W18", "total", "total", 0, 7, None),
            _vol("64B", "2026-W18", "code_ru", "RU02", 0, 7, None),
        ],
    )
    con.execute(
        "create table quarantaine (ingestion_id VARCHAR, source VARCHAR, fichier VARCHAR, "
        "ligne INTEGER, regles VARCHAR[], details VARCHAR, texte_original VARCHAR, "
        "quarantaine_le TIMESTAMP)"
    )
    con.execute(
        "insert into quarantaine values "
        "('i1', 'ij_paiements', 'f.csv', 2, ['nir_cle'], '', '', now()),"
        "('i1', 'ij_paiements', 'f.csv', 3, ['nir_cle', 'date_invalide'], '', '', now()),"
        "('i2', 'actions', 'a.csv', 2, ['elsm_inconnu'], '', '', now())"
    )
    con.close()
    return paths


def _promote(paths: DataPaths) -> None:
    folder = paths.modeles / "chronicite" / "20260401-abc"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(
        json.dumps(
            {
                "as_of": "2026-03-31",
                "metriques": {
                    "modele": {"roc_auc": 0.8123, "brier": 0.1502, "n": 1520},
                    "reference_duree": {"roc_auc": 0.7011, "brier": 0.1811, "n": 1520},
                },
            }
        ),
        encoding="utf-8",
    )
    (paths.modeles / "chronicite" / "promu.json").write_text(
        json.dumps({"version": "20260401-abc", "promu_le": "2026-04-01"}), encoding="utf-8"
    )


def test_report_is_written_in_french_with_every_chart(paths):
    summary = report_at(paths, AS_OF)
    target = paths.rapports / "rapport_20260430.html"
    assert summary.chemin == str(target) and summary.graphiques == CHARTS
    text = target.read_text(encoding="utf-8")
    assert text.count("<svg") == CHARTS
    assert text.count("<figcaption>") == CHARTS
    assert '<html lang="fr">' in text
    # F1 of February 2026 (last final month), all ELSMs: 1050 / 1500
    assert (
        "Dernier mois définitif, février 2026 : 70,0\u00a0% (1\u202f050 dossiers sur 1\u202f500)"
        in text
    )
    assert "au-dessus de la cible" in text
    assert (
        '<div class="titre">F1, février 2026</div><div class="valeur">70,0\u00a0%</div>'
        '<div class="note">cible 70 %</div>'
    ) in text
    # P4 of January: 180 / 400; PDP: 96 / 150; the trend since 31/03 (50 %)
    assert "janvier 2026, 45,0\u00a0% (180 arrêts sur 400)" in text
    assert "Toutes ELSM : 64,0\u00a0% (96 sur 150)" in text
    assert "depuis le 31/03/2026 (50,0\u00a0% alors)" in text
    # volumes of the latest week, and the ELSM without capacity named
    assert "En tout 95 affectés et 37 en attente" in text
    assert "Sans capacité déclarée (tout part en attente) : ELSM 64B" in text
    assert "aucun modèle promu" in text.lower()
    # quarantine: a line breaking two rules counts in both
    assert "<td>nir_cle</td><td>2</td>" in text
    # axis labels are French and stay text in the SVG
    for label in ("Mois du routage", "Code RU principal", "Semaine ISO", "Cible 70 %"):
        assert label in text


def test_report_is_self_contained_and_reproducible(paths):
    report_at(paths, AS_OF)
    target = paths.rapports / "rapport_20260430.html"
    first = target.read_bytes()
    text = first.decode("utf-8")
    urls = re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", text)
    assert set(urls) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", text)
    report_at(paths, AS_OF)
    assert target.read_bytes() == first


def test_report_shows_the_promoted_model_metrics(paths):
    _promote(paths)
    report_at(paths, AS_OF)
    text = (paths.rapports / "rapport_20260430.html").read_text(encoding="utf-8")
    assert "version <strong>20260401-abc</strong>" in text
    assert "entraîné avec les données au 2026-03-31, promu le 2026-04-01" in text
    assert "<td>AUC ROC</td><td>0,812</td><td>0,701</td>" in text
    assert "<td>score de Brier (plus bas = mieux)</td><td>0,150</td><td>0,181</td>" in text
    assert "<td>arrêts de validation</td><td>1\u202f520</td><td>1\u202f520</td>" in text
    assert "aucun modèle promu" not in text.lower()


def test_report_without_indicators_says_what_to_run(tmp_path, paths):
    with pytest.raises(ReportError, match=r"ru indicators --as-of 2026-05-01"):
        report_at(paths, D("2026-05-01"))
    empty = DataPaths(tmp_path / "vide").ensure()
    duckdb.connect(str(empty.warehouse)).close()
    with pytest.raises(ReportError, match="ru indicators"):
        report_at(empty, AS_OF)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profil-{len(list(tmp_path.glob('profil-*')))}"
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium absent (paquet Debian `chromium`, installé par .ci/run) : "
    "le rendu du rapport dans un navigateur n'est pas vérifié",
)
def test_report_renders_in_headless_chromium(paths, tmp_path):
    import matplotlib.image

    _promote(paths)
    report_at(paths, AS_OF)
    url = (paths.rapports / "rapport_20260430.html").resolve().as_uri()

    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # every chart is in the rendered DOM, with its accessible name and caption
    assert len(re.findall(r'<svg role="img" aria-label="[^"]+"', dom.stdout)) == CHARTS
    assert dom.stdout.count("<figcaption>") == CHARTS
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console

    shot = tmp_path / "rapport.png"
    png = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1100,7000", url)
    assert png.returncode == 0 and shot.exists(), png.stderr[-2000:]
    assert [line for line in png.stderr.splitlines() if "CONSOLE" in line] == []
    pixels = matplotlib.image.imread(shot)[..., :3]
    # the charts' blue (#2e86c1) and the target line's red (#c0392b) are drawn
    for rgb in ((0x2E, 0x86, 0xC1), (0xC0, 0x39, 0x2B)):
        close = (abs(pixels * 255 - rgb) < 8).all(axis=-1)
        assert close.sum() > 500, rgb


def test_summary_card_shows_a_provisional_f1_when_no_month_is_final():
    from flows.report import ReportData, _cards

    data = ReportData(as_of=AS_OF, f1=[_f1("31", "2026-04-01", 40, 10, True)])
    cards = _cards(data)
    assert (
        '<div class="titre">F1, avril 2026</div><div class="valeur">25,0\u00a0%</div>'
        '<div class="note">provisoire, cible 70 %</div>'
    ) in cards
    assert '<div class="valeur">—</div><div class="note">aucun dossier affecté</div>' in (
        _cards(ReportData(as_of=AS_OF))
    )


def test_f1_chart_with_many_elsm_draws_the_spread_instead_of_one_line_each():
    from flows.report import chart_f1

    rows = [
        _f1(f"{n:02d}", mois, 100, 50 + n, mois != "2026-03-01")
        for n in range(1, 15)
        for mois in ("2026-02-01", "2026-03-01")
    ]
    svg = chart_f1(rows)
    assert "ELSM : 10 % à 90 % central" in svg and "ELSM 01" not in svg
    few = chart_f1(rows[:4])
    assert "ELSM 01" in few and "ELSM 02" in few and "10 % à 90 %" not in few

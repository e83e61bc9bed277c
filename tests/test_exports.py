"""Per-ELSM routing files (spec §6): content, format, separation, safety and atomicity."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date
from hashlib import sha256
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

import flows.export as export_flow
from flows.export import export_at
from flows.route import route_at
from flows.settings import DataPaths, load_settings
from transforms.exports.queues import MEDICAL_HEADERS, neutralise

D = date(2026, 11, 18)
HYPERLINK = '=HYPERLINK("http://x")'

# (arret_id, elsm, code, rang, acteur, repli, score, duree, mtf_cat, ald, ARR_NUM, raisons)
DOSSIERS = [
    ("a_tech", "31", "RU02", 10, "TECH", "CSAM", 0.734, 50, "PSY", False, HYPERLINK,
     ["arrêt psy", "reçu 3 prolongations"]),
    ("a_csam", "31", "RU05", 1, "CSAM", "TECH", None, 500, "RHU", True, "A0002", []),
    ("a_ism", "31", "RU09", 6, "ISM", "MC", 0.25, 200, "TRA", True, "A0003", ["TPT long"]),
    ("a_mc", "31", "RU03", 4, "MC", "CSAM", 0.5, 120, "ONC", False, "A0004", ["âgé, après 3 arrêts"]),
    ("a_full", "31", "RU02", 10, "TECH", "CSAM", 0.1, 46, "PSY", False, "A0005", []),
    ("b_tech", "64B", "RU07", 11, "TECH", "CSAM", None, 30, "INF", False, "B0001", []),
    ("c_none", "82", "RU02", 10, "TECH", "CSAM", None, 47, "GRO", False, "C0001", []),
]  # fmt: skip
CAPACITES = "31;TECH;1\n31;CSAM;1\n31;ISM;1\n31;MC;1\n64B;TECH;3\n"


def nir_of(arret_id: str) -> str:
    """A distinct fake NIR per assuré (15 characters, as in the extracts)."""
    return f"18507751234{sum(map(ord, arret_id)) % 10000:04d}"


def setup_night(paths: DataPaths, tmp_path: Path) -> None:
    """arrets and ciblage at D, the identity store, then ``ru route`` for D."""
    arrets = pl.DataFrame(
        [
            {
                "as_of": D,
                "arret_id": a,
                "assure_id": "as_" + a,
                "ORG_AFF_COD": {"31": "311", "64B": "641", "82": "821"}[elsm],
                "elsm": elsm,
                "ARR_NUM": arr_num,
                "risque": "MAL",
                "debut_arret": date(2026, 1, 2),
                "fin_prescrite": date(2026, 12, 31),
                "duree_jours": duree,
                "prescripteur_initial": "10001234567",
                "IJR_EMP_NUM": "12345678900012",
                "derniere_action_dte": date(2026, 10, 1) if a == "a_mc" else None,
                "mtf_cat": mtf,
                "ald": ald,
                "tpt_en_cours": a == "a_ism",
                "duree_tpt_jours": 190 if a == "a_ism" else None,
            }
            for a, elsm, _c, _r, _ac, _rp, _s, duree, mtf, ald, arr_num, _rs in DOSSIERS
        ]
    )
    ciblage = pl.DataFrame(
        [
            {
                "as_of": D,
                "arret_id": a,
                "assure_id": "as_" + a,
                "elsm": elsm,
                "code_ru": code,
                "rang": rang,
                "autres_codes": ["RU07", "RU11"] if a == "a_mc" else [],
                "acteur": acteur,
                "acteur_repli": repli,
                "score": score,
                "raisons": raisons,
                "exclu": False,
                "motif_exclusion": None,
                "duree_jours": duree,
            }
            for a, elsm, code, rang, acteur, repli, score, duree, _m, _al, _n, raisons in DOSSIERS
        ]
    )
    con = duckdb.connect(str(paths.warehouse))
    try:
        con.register("a", arrets)
        con.register("c", ciblage)
        con.execute("create or replace table arrets as select * from a")
        con.execute("create or replace table ciblage as select * from c")
    finally:
        con.close()
    paths.identite.parent.mkdir(parents=True, exist_ok=True)
    ident = pl.DataFrame(
        {
            "assure_id": ["as_" + d[0] for d in DOSSIERS],
            "BEN_NIR": [nir_of(d[0]) for d in DOSSIERS],
            "BEN_RNG_GEM": [1] * len(DOSSIERS),
            "premiere_vue": [date(2024, 1, 1)] * len(DOSSIERS),
        }
    )
    con = duckdb.connect(str(paths.identite))
    try:
        con.register("i", ident)
        con.execute(
            "create or replace table identite as select assure_id, BEN_NIR, "
            "cast(BEN_RNG_GEM as smallint) as BEN_RNG_GEM, premiere_vue from i"
        )
    finally:
        con.close()
    cap = tmp_path / "capacites.csv"
    cap.write_text("elsm;acteur;dossiers_par_semaine\n" + CAPACITES, encoding="utf-8")
    route_at(paths, D, load_settings(), capacites_file=cap)


@pytest.fixture(autouse=True)
def no_gx_checks(monkeypatch):
    """The ledger's GX checks are tested in test_routage.py; they cost seconds here."""
    monkeypatch.setattr("flows.route._run_checks", lambda con, paths, as_of: "non exécutés")


@pytest.fixture
def night(tmp_path) -> DataPaths:
    paths = DataPaths(tmp_path / "donnees").ensure()
    setup_night(paths, tmp_path)
    return paths


def folder(paths: DataPaths, elsm: str) -> Path:
    return paths.exports / "2026-11-18" / elsm


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def folder_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name != "manifest.json"}


def test_folder_has_one_csv_per_queue_a_workbook_a_parquet_and_a_manifest(night):
    summary = export_at(night, D)
    assert summary.elsm == ["31", "64B", "82"]
    assert summary.lignes_par_file == {"TECH": 2, "CSAM": 1, "ISM": 1, "MC": 1, "attente": 2}
    f31 = folder(night, "31")
    assert sorted(p.name for p in f31.iterdir()) == [
        "manifest.json",
        "routage_31_20261118.parquet",
        "routage_31_20261118.xlsx",
        "routage_31_20261118_CSAM.csv",
        "routage_31_20261118_ISM.csv",
        "routage_31_20261118_MC.csv",
        "routage_31_20261118_TECH.csv",
        "routage_31_20261118_attente.csv",
    ]
    manifest = json.loads((f31 / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["elsm"] == "31"
    assert manifest["date_arrete"] == "2026-11-18"
    assert manifest["semaine_iso"] == "2026-W47"
    assert manifest["version_pipeline"] == "0.1.0"
    assert manifest["version_modele"] is None
    assert manifest["dossiers"] == {"TECH": 1, "CSAM": 1, "ISM": 1, "MC": 1, "attente": 1}
    entries = {e["nom"]: e for e in manifest["fichiers"]}
    assert set(entries) == {p.name for p in f31.iterdir()} - {"manifest.json"}
    for name, entry in entries.items():
        data = (f31 / name).read_bytes()
        assert entry["sha256"] == sha256(data).hexdigest()
        assert entry["octets"] == len(data)
    assert entries["routage_31_20261118_TECH.csv"]["lignes"] == 1
    assert entries["routage_31_20261118.xlsx"]["lignes"] == 5
    # An ELSM without capacity gets its folder with everything in the backlog.
    attente_82 = read_csv(folder(night, "82") / "routage_82_20261118_attente.csv")
    assert [r["Motif de l'attente"] for r in attente_82] == ["pas de capacité déclarée pour l'ELSM"]
    assert read_csv(folder(night, "82") / "routage_82_20261118_TECH.csv") == []


def test_rows_are_the_ledger_rows_in_queue_order(night):
    export_at(night, D)
    con = duckdb.connect(str(night.warehouse), read_only=True)
    ledger = con.sql(
        "select dossier_id, arret_id, acteur, rang_file from routage where elsm = '31'"
    ).pl()
    con.close()
    tech = read_csv(folder(night, "31") / "routage_31_20261118_TECH.csv")
    expected = ledger.filter(pl.col("arret_id") == "a_tech").row(0, named=True)
    assert [(r["N° dossier"], r["Rang dans la file"]) for r in tech] == [
        (expected["dossier_id"], "1")
    ]
    attente = read_csv(folder(night, "31") / "routage_31_20261118_attente.csv")
    assert [(r["NIR"], r["Acteur du code"], r["Acteur de repli"]) for r in attente] == [
        (nir_of("a_full"), "TECH", "CSAM")
    ]
    assert attente[0]["Motif de l'attente"] == "capacité de la semaine atteinte"


def test_rerun_gives_identical_bytes_and_ids(night, tmp_path):
    export_at(night, D)
    first = {e: folder_bytes(folder(night, e)) for e in ("31", "64B", "82")}
    # Re-route the same night, then re-export: same ids, same bytes, no double booking.
    cap = tmp_path / "capacites.csv"
    route_at(night, D, load_settings(), capacites_file=cap)
    export_at(night, D)
    second = {e: folder_bytes(folder(night, e)) for e in ("31", "64B", "82")}
    assert first == second
    con = duckdb.connect(str(night.warehouse), read_only=True)
    assert con.sql("select count(*), count(distinct dossier_id) from routage").fetchall() == [
        (7, 7)
    ]
    con.close()
    assert not [p for p in (night.exports / "2026-11-18").iterdir() if p.name.startswith(".")]


def test_an_elsm_folder_holds_only_its_own_dossiers(night):
    export_at(night, D)
    own = {elsm: {nir_of(a) for a, e, *_ in DOSSIERS if e == elsm} for elsm in ("31", "64B", "82")}
    for elsm, nirs in own.items():
        seen = set()
        for path in folder(night, elsm).glob("*.csv"):
            seen |= {row["NIR"] for row in read_csv(path)}
        for sheet in pl.read_excel(
            folder(night, elsm) / f"routage_{elsm}_20261118.xlsx", sheet_id=0
        ).values():
            if sheet.height:
                seen |= set(sheet.get_column("NIR").to_list())
        assert seen == nirs, elsm
        parquet = pl.read_parquet(folder(night, elsm) / f"routage_{elsm}_20261118.parquet")
        assert set(parquet.get_column("elsm")) == {elsm}


def test_medical_columns_only_in_ism_and_mc_files_and_sheets(night):
    export_at(night, D)
    f31 = folder(night, "31")
    medical = {"Catégorie médicale", "ALD", "Temps partiel thérapeutique", "Durée du TPT (jours)"}
    assert medical == MEDICAL_HEADERS
    for queue in ("TECH", "CSAM", "attente"):
        with (f31 / f"routage_31_20261118_{queue}.csv").open(encoding="utf-8-sig") as fh:
            header = set(next(csv.reader(fh, delimiter=";")))
        assert not header & medical, queue
    for queue in ("ISM", "MC"):
        rows = read_csv(f31 / f"routage_31_20261118_{queue}.csv")
        assert medical <= set(rows[0]), queue
    ism = read_csv(f31 / "routage_31_20261118_ISM.csv")[0]
    assert (ism["Catégorie médicale"], ism["ALD"], ism["Temps partiel thérapeutique"]) == (
        "TRA",
        "oui",
        "oui",
    )
    assert ism["Durée du TPT (jours)"] == "190"
    sheets = pl.read_excel(f31 / "routage_31_20261118.xlsx", sheet_id=0)
    assert list(sheets) == ["TECH", "CSAM", "ISM", "MC", "En attente"]
    for name in ("TECH", "CSAM", "En attente"):
        assert not set(sheets[name].columns) & medical, name
    for name in ("ISM", "MC"):
        assert medical <= set(sheets[name].columns), name
    # The analysts' Parquet: no medical column, no clear NIR.
    parquet = pl.read_parquet(f31 / "routage_31_20261118.parquet")
    assert not {"mtf_cat", "ald", "tpt_en_cours", "duree_tpt_jours", "nir"} & set(parquet.columns)
    assert set(parquet.get_column("assure_id")) == {"as_" + a for a, e, *_ in DOSSIERS if e == "31"}
    raw = (f31 / "routage_31_20261118.parquet").read_bytes()
    assert not any(nir_of(a).encode() in raw for a, *_ in DOSSIERS)


def test_formula_cells_are_neutralised_in_csv_and_xlsx(night):
    export_at(night, D)
    f31 = folder(night, "31")
    tech = read_csv(f31 / "routage_31_20261118_TECH.csv")
    assert tech[0]["N° d'arrêt (ARR_NUM)"] == "'" + HYPERLINK
    sheet = pl.read_excel(f31 / "routage_31_20261118.xlsx", sheet_name="TECH")
    assert sheet.get_column("N° d'arrêt (ARR_NUM)").to_list() == ["'" + HYPERLINK]
    with zipfile.ZipFile(f31 / "routage_31_20261118.xlsx") as z:
        xml = "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))
    assert "<f>" not in xml  # no formula cell anywhere


def test_neutralise_prefixes_every_dangerous_start():
    frame = pl.DataFrame(
        {
            "t": ["=1+1", "+33", "-2", "@SUM(A1)", "\tx", "\rx", "ok", "a=b", None],
            "n": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        }
    )
    assert neutralise(frame).get_column("t").to_list() == [
        "'=1+1",
        "'+33",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "ok",
        "a=b",
        None,
    ]
    assert frame.get_column("t")[0] == "=1+1"  # input untouched


def test_csv_and_xlsx_read_back_with_dates_decimals_and_accents(night):
    export_at(night, D)
    f31 = folder(night, "31")
    raw = (f31 / "routage_31_20261118_MC.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    mc = read_csv(f31 / "routage_31_20261118_MC.csv")[0]
    assert mc["Libellé du code"] == "Arrêt maladie de plus de 90 jours sans avis du médecin conseil"
    assert mc["Score (0-100)"] == "50,0"
    assert mc["Raisons"] == "âgé, après 3 arrêts"
    assert mc["Autres codes"] == "RU07, RU11"
    assert mc["Début de l'arrêt"] == "02/01/2026"
    assert mc["Fin prescrite"] == "31/12/2026"
    assert mc["Dernière action"] == "01/10/2026"
    tech = read_csv(f31 / "routage_31_20261118_TECH.csv")[0]
    assert tech["Score (0-100)"] == "73,4"
    assert tech["Raisons"] == "arrêt psy | reçu 3 prolongations"
    assert tech["Employeur (SIRET)"] == "12345678900012"
    csam_raw = (f31 / "routage_31_20261118_CSAM.csv").read_bytes().decode("utf-8-sig")
    assert '""' not in csam_raw  # empty lists are empty cells
    assert read_csv(f31 / "routage_31_20261118_CSAM.csv")[0]["Raisons"] == ""

    sheets = pl.read_excel(f31 / "routage_31_20261118.xlsx", sheet_id=0)
    mc_sheet = sheets["MC"]
    assert mc_sheet.schema["Début de l'arrêt"] == pl.Date
    assert mc_sheet.schema["Score (0-100)"].is_numeric()  # a number cell, not text
    assert mc_sheet.row(0, named=True)["Score (0-100)"] == 50
    assert mc_sheet.row(0, named=True)["Début de l'arrêt"] == date(2026, 1, 2)
    assert mc_sheet.row(0, named=True)["Durée (jours)"] == 120
    assert mc_sheet.row(0, named=True)["Raisons"] == "âgé, après 3 arrêts"
    tech_sheet = sheets["TECH"].row(0, named=True)
    assert tech_sheet["Score (0-100)"] == pytest.approx(73.4)
    assert tech_sheet["Raisons"] == "arrêt psy | reçu 3 prolongations"
    assert tech_sheet["Libellé du code"] == "Arrêt maladie atteignant 45 jours"
    with zipfile.ZipFile(f31 / "routage_31_20261118.xlsx") as z:
        styles = z.read("xl/styles.xml").decode("utf-8")
    assert 'formatCode="dd/mm/yyyy"' in styles


def test_crash_mid_export_leaves_the_previous_folder_intact(night, tmp_path, monkeypatch):
    export_at(night, D)
    before = {p.name: p.read_bytes() for p in folder(night, "31").iterdir()}

    # The night changes (more capacity), then the export crashes while writing the workbook.
    cap = tmp_path / "capacites.csv"
    cap.write_text(
        "elsm;acteur;dossiers_par_semaine\n" + CAPACITES.replace("31;TECH;1", "31;TECH;5"),
        encoding="utf-8",
    )
    route_at(night, D, load_settings(), capacites_file=cap)
    real_write = export_flow._write_file

    def crashing_write(path: Path, data: bytes) -> None:
        if path.suffix == ".xlsx":
            raise OSError("disque plein")
        real_write(path, data)

    monkeypatch.setattr(export_flow, "_write_file", crashing_write)
    with pytest.raises(OSError, match="disque plein"):
        export_at(night, D)
    assert {p.name: p.read_bytes() for p in folder(night, "31").iterdir()} == before
    assert not [p for p in (night.exports / "2026-11-18").iterdir() if p.name.startswith(".")]

    # Once the disk is fine again, the re-run replaces the folder whole.
    monkeypatch.setattr(export_flow, "_write_file", real_write)
    export_at(night, D)
    assert len(read_csv(folder(night, "31") / "routage_31_20261118_TECH.csv")) == 2
    assert read_csv(folder(night, "31") / "routage_31_20261118_attente.csv") == []


def test_interrupted_swap_is_recovered(night):
    export_at(night, D)
    f31 = folder(night, "31")
    before = folder_bytes(f31)
    f31.rename(f31.parent / ".31.old-999")  # crash between the two renames
    export_at(night, D, elsm="31")
    assert folder_bytes(f31) == before
    assert not [p for p in f31.parent.iterdir() if p.name.startswith(".")]


def test_single_elsm_and_stale_folders(night):
    export_at(night, D, elsm="64B")
    assert sorted(p.name for p in (night.exports / "2026-11-18").iterdir()) == ["64B"]
    stale = night.exports / "2026-11-18" / "12"
    stale.mkdir()
    export_at(night, D)
    assert sorted(p.name for p in (night.exports / "2026-11-18").iterdir()) == [
        "31",
        "64B",
        "82",
    ]


def test_an_elsm_with_capacity_but_no_dossier_gets_empty_files(night):
    con = duckdb.connect(str(night.warehouse))
    con.execute("delete from routage where elsm = '64B'")
    con.close()
    export_at(night, D)
    f64 = folder(night, "64B")
    manifest = json.loads((f64 / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["dossiers"] == {"TECH": 0, "CSAM": 0, "ISM": 0, "MC": 0, "attente": 0}
    assert read_csv(f64 / "routage_64B_20261118_TECH.csv") == []
    assert (f64 / "routage_64B_20261118_TECH.csv").read_bytes().startswith(b"\xef\xbb\xbfN")


def test_export_errors_are_french(night):
    from flows.settings import ConfigError
    from flows.warehouse import WarehouseError

    with pytest.raises(WarehouseError, match=r"aucune orientation au 19/11/2026"):
        export_at(night, date(2026, 11, 19))
    with pytest.raises(ConfigError, match="ELSM inconnu : 99Z"):
        export_at(night, D, elsm="99Z")


def test_cli_export(night):
    from flows.cli import app

    result = CliRunner().invoke(
        app, ["export", "--as-of", "2026-11-18", "--elsm", "31", "--data", str(night.root)]
    )
    assert result.exit_code == 0, result.output
    assert "Exports du 18/11/2026 : 1 ELSM (31), 8 fichier(s)" in result.output


def test_xlsx_bytes_do_not_depend_on_the_time_of_the_run():
    import time

    from transforms.exports.render import xlsx_bytes

    frame = pl.DataFrame({"Début": [date(2026, 1, 2)], "Texte": ["é"]})
    first = xlsx_bytes({"TECH": frame}, D)
    time.sleep(1.1)  # a timestamp in the document would now differ
    assert xlsx_bytes({"TECH": frame}, D) == first
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        core = z.read("docProps/core.xml").decode("utf-8")
    assert "2026-11-18T00:00:00Z" in core


def test_manifest_names_the_promoted_model(night):
    pointer = night.modeles / "chronicite" / "promu.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text('{"version": "20261101-ab12", "promu_le": "x", "motif": "y"}')
    export_at(night, D, elsm="31")
    manifest = json.loads((folder(night, "31") / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version_modele"] == "20261101-ab12"


def test_a_night_routed_with_no_dossier_exports_empty_files(night):
    """Routing ran at D and allocated nothing (e.g. every candidate en attente): the export
    writes each ELSM's empty files instead of failing the night."""
    con = duckdb.connect(str(night.warehouse))
    con.execute("delete from routage")
    con.close()
    export_at(night, D)
    for elsm in ("31", "64B", "82"):
        manifest = json.loads((folder(night, elsm) / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["dossiers"] == {"TECH": 0, "CSAM": 0, "ISM": 0, "MC": 0, "attente": 0}

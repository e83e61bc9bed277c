"""``ru ingest`` end to end on hand-written extracts in a temporary data folder."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from test_ingest_fixtures import (
    ACTIONS_HEADER,
    IJ_HEADER,
    NIR_1,
    NIR_2,
    NIR_CORSE,
    TEST_KEY,
    action_line,
    csv_text,
    expected_id,
    ij_line,
    nir,
)
from typer.testing import CliRunner

from flows.cli import app
from flows.ingest import ingest_paths
from flows.settings import DataPaths

IJ_NAME = "ij_paiements_20240315_311.csv"


def ingest(tmp_path: Path, files: dict[str, str | bytes], **kwargs):
    folder = tmp_path / "arrivee"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    paths = DataPaths(tmp_path / "donnees")
    summary = ingest_paths(paths, [folder / n for n in files], TEST_KEY, **kwargs)
    for f in summary.fichiers:
        assert f.lignes_lues == f.lignes_acceptees + f.lignes_quarantaine, f
    return paths, summary


def query(paths: DataPaths, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def reference_rows() -> list[dict]:
    return [
        ij_line(LIG_NUM="L1"),
        ij_line(LIG_NUM="L2", BEN_NIR=NIR_2, BEN_SEX_COD="2", BEN_NAI_ANN="1990"),
        ij_line(LIG_NUM="L3", BEN_RNG_GEM="2", BSE_REM_PRU="41.47", BSE_REM_MNT="1244.1"),
    ]


EXPECTED_LINES = [
    ("L1", expected_id(NIR_1), Decimal("1244.10"), dt.date(2024, 2, 1), 2),
    ("L2", expected_id(NIR_2), Decimal("1244.10"), dt.date(2024, 2, 1), 3),
    ("L3", expected_id(NIR_1, "2"), Decimal("1244.10"), dt.date(2024, 2, 1), 4),
]
LINES_SQL = (
    "select LIG_NUM, assure_id, BSE_REM_MNT, EXE_SOI_DTD, ligne from lignes_ij order by ligne"
)


def test_plain_utf8_and_hmac_values(tmp_path):
    paths, summary = ingest(tmp_path, {IJ_NAME: csv_text(reference_rows(), IJ_HEADER)})
    (f,) = summary.fichiers
    assert (f.statut, f.encodage, f.lignes_lues, f.lignes_acceptees) == ("ok", "UTF-8", 3, 3)
    assert query(paths, LINES_SQL) == EXPECTED_LINES
    # The HMAC by hand: HMAC-SHA256("cle-de-test", NIR + rang), 32 hex characters.
    assert expected_id(NIR_1) == "91314cebddf5da0b6b734d3bd5ac1ace"
    ident = duckdb.connect(str(paths.identite), read_only=True)
    rows = ident.execute(
        "select assure_id, BEN_NIR, BEN_RNG_GEM, premiere_vue from identite order by BEN_NIR, BEN_RNG_GEM"
    ).fetchall()
    ident.close()
    assert rows == [
        (expected_id(NIR_1), NIR_1, 1, dt.date(2024, 3, 15)),
        (expected_id(NIR_1, "2"), NIR_1, 2, dt.date(2024, 3, 15)),
        (expected_id(NIR_2), NIR_2, 1, dt.date(2024, 3, 15)),
    ]
    ingestion = query(
        paths,
        "select ingestion_id = sha256, fichier, source, statut, lignes_lues, lignes_acceptees, "
        "lignes_quarantaine, encodage from ingestions",
    )
    assert ingestion == [(True, IJ_NAME, "ij_paiements", "ok", 3, 3, 0, "UTF-8")]


def test_psa_used_as_is(tmp_path):
    rows = [ij_line(LIG_NUM="L1", BEN_NIR=None, BEN_NIR_PSA="PSA-000123")]
    paths, _ = ingest(tmp_path, {IJ_NAME: csv_text(rows, IJ_HEADER)})
    assert query(paths, "select assure_id from lignes_ij") == [("PSA-000123",)]


@pytest.mark.parametrize(
    "variant",
    ["bom", "cp1252", "crlf", "quoted", "iso_dates", "shuffled_lowercase", "gzip"],
)
def test_dialect_variants_give_the_same_lines(tmp_path, variant):
    rows = reference_rows()
    header = IJ_HEADER
    name = IJ_NAME
    if variant == "iso_dates":
        for r in rows:
            for c in ("FLX_DIS_DTD", "EXE_SOI_DTD", "EXE_SOI_DTF", "PRE_PRE_DTD", "PRE_FIN_DTE"):
                d, m, y = r[c].split("/")
                r[c] = f"{y}-{m}-{d}"
    if variant == "shuffled_lowercase":
        header = [h.lower() if i % 2 else h.title() for i, h in enumerate(reversed(IJ_HEADER))]
        rows = [{h: r[h.upper()] for h in header} for r in rows]
    text = csv_text(rows, header, eol="\r\n" if variant == "crlf" else "\n")
    if variant == "quoted":
        lines = text.splitlines()
        quoted = [";".join(f'"{v}"' for v in ln.split(";")) for ln in lines]
        quoted[1] = quoted[1].replace('"A0001"', '"A;""1"""')  # ARR_NUM = A;"1"
        text = "\n".join(quoted) + "\n"
    content: str | bytes = text
    if variant == "bom":
        content = b"\xef\xbb\xbf" + text.encode("utf-8")
    elif variant == "cp1252":
        extra = [{**r, "COMMENTAIRE": "déjà vu €"} for r in rows]
        content = csv_text(extra, [*header, "COMMENTAIRE"]).encode("cp1252")
    elif variant == "gzip":
        content = gzip.compress(text.encode("utf-8"))
        name = IJ_NAME + ".gz"
    paths, summary = ingest(tmp_path, {name: content})
    (f,) = summary.fichiers
    assert f.statut == "ok" and f.lignes_acceptees == 3, f
    expected = {"bom": "UTF-8 (BOM)", "cp1252": "Windows-1252"}.get(variant, "UTF-8")
    assert f.encodage == expected
    got = query(paths, LINES_SQL)
    assert got == EXPECTED_LINES
    if variant == "quoted":
        assert query(paths, "select ARR_NUM from lignes_ij where LIG_NUM = 'L1'") == [('A;"1"',)]
    if variant == "cp1252":
        lake = pl.read_parquet(next((paths.lake / "raw" / "ij_paiements").glob("*.parquet")))
        assert lake["COMMENTAIRE"].to_list() == ["déjà vu €"] * 3
        cols = [
            r[0]
            for r in query(
                paths,
                "select column_name from information_schema.columns where table_name = 'lignes_ij'",
            )
        ]
        assert "COMMENTAIRE" not in cols


def test_extra_column_kept_in_lake_only(tmp_path):
    rows = [{**r, "SOURCE_SI": f"si-{i}"} for i, r in enumerate(reference_rows())]
    paths, _ = ingest(tmp_path, {IJ_NAME: csv_text(rows, [*IJ_HEADER, "SOURCE_SI"])})
    lake_files = list((paths.lake / "raw" / "ij_paiements").glob("*.parquet"))
    assert len(lake_files) == 1
    lake = pl.read_parquet(lake_files[0]).sort("ligne")
    assert lake["SOURCE_SI"].to_list() == ["si-0", "si-1", "si-2"]
    assert "BEN_NIR" not in lake.columns and "assure_id" in lake.columns
    assert lake["assure_id"].to_list() == [e[1] for e in EXPECTED_LINES]


def test_parquet_native_types(tmp_path):
    rows = reference_rows()
    frame = pl.DataFrame(
        [dict(r.items()) for r in rows], schema=dict.fromkeys(IJ_HEADER, pl.String)
    )
    dates = [
        "FLX_DIS_DTD",
        "ARR_DEB_DTE",
        "PRE_PRE_DTD",
        "PRE_FIN_DTE",
        "EXE_SOI_DTD",
        "EXE_SOI_DTF",
    ]
    ints = [
        "BEN_SEX_COD",
        "BEN_NAI_ANN",
        "RGO_ASU_NAT",
        "PRS_NAT_REF",
        "PRS_ACT_NBR",
        "PRS_ACT_QTE",
    ]
    frame = frame.with_columns(
        *[pl.col(c).str.to_date("%d/%m/%Y") for c in dates],
        *[pl.col(c).cast(pl.Int32) for c in ints],
        pl.col("BSE_REM_PRU").str.replace(",", ".").cast(pl.Float64),
        pl.col("BEN_RNG_GEM").cast(pl.Float64),  # a nullable integer written by pandas
        pl.col("BSE_REM_MNT").str.replace(",", ".").cast(pl.Decimal(12, 2)),
    ).rename({"LIG_NUM": "lig_num"})
    folder = tmp_path / "arrivee"
    folder.mkdir()
    frame.write_parquet(folder / "ij_paiements_20240315_311.parquet")
    paths = DataPaths(tmp_path / "donnees")
    summary = ingest_paths(paths, [folder], TEST_KEY)
    (f,) = summary.fichiers
    assert (f.statut, f.encodage, f.lignes_acceptees) == ("ok", "Parquet", 3)
    assert query(paths, LINES_SQL) == EXPECTED_LINES


def test_encoding_neither_quarantines_every_line(tmp_path):
    text = csv_text(reference_rows(), IJ_HEADER).encode("utf-8")
    bad = text.replace(b"A0001", b"A\x81\xe90001", 1)  # invalid UTF-8 and undefined in cp1252
    paths, summary = ingest(
        tmp_path,
        {
            IJ_NAME: bad,
            "ij_paiements_20240316_311.csv": csv_text(
                [ij_line(LIG_NUM="L9", FLX_DIS_DTD="16/03/2024")], IJ_HEADER
            ),
        },
    )
    first, second = summary.fichiers
    assert (first.statut, first.lignes_lues, first.lignes_quarantaine) == ("rejete", 3, 3)
    assert first.regles == {"encodage": 3}
    assert "0x81" in first.motif
    assert second.statut == "ok" and second.lignes_acceptees == 1
    q = query(paths, "select ligne, regles, texte_original from quarantaine order by ligne")
    assert [(r[0], r[1]) for r in q] == [(2, ["encodage"]), (3, ["encodage"]), (4, ["encodage"])]
    assert all(NIR_1 not in r[2] and NIR_2 not in r[2] for r in q)
    assert query(
        paths,
        "select statut, lignes_lues, lignes_quarantaine from ingestions where fichier = ?",
        [IJ_NAME],
    ) == [("rejete", 3, 3)]


def test_utf8_then_invalid_bytes_rereads_whole_file_as_cp1252(tmp_path):
    rows = [{**r, "NOTE": "x"} for r in reference_rows()]
    rows[0]["NOTE"] = "\u00c3\u00a9"  # bytes C3 A9: valid UTF-8 « é » … or cp1252 « Ã© »
    rows[2]["NOTE"] = "\u00e9"  # written as cp1252 byte E9: invalid UTF-8
    text = csv_text(rows, [*IJ_HEADER, "NOTE"])
    raw = text.encode("cp1252")
    paths, summary = ingest(tmp_path, {IJ_NAME: raw}, chunk_bytes=300)
    (f,) = summary.fichiers
    assert (f.statut, f.encodage, f.lignes_acceptees) == ("ok", "Windows-1252", 3)
    lake = pl.read_parquet(next((paths.lake / "raw" / "ij_paiements").glob("*.parquet")))
    assert lake.sort("ligne")["NOTE"].to_list() == ["\u00c3\u00a9", "x", "\u00e9"]
    assert query(paths, "select count(*) from lignes_ij") == [(3,)]


def test_missing_header_column_is_entete(tmp_path):
    header = [h for h in IJ_HEADER if h != "PRS_ACT_QTE"]
    paths, summary = ingest(tmp_path, {IJ_NAME: csv_text(reference_rows(), header)})
    (f,) = summary.fichiers
    assert (f.statut, f.lignes_lues, f.lignes_quarantaine, f.regles) == (
        "rejete",
        3,
        3,
        {"entete": 3},
    )
    assert "PRS_ACT_QTE" in f.motif
    q = query(paths, "select ligne, details, texte_original from quarantaine order by ligne")
    assert [r[0] for r in q] == [2, 3, 4]
    assert "PRS_ACT_QTE" in q[0][1]
    assert all(NIR_1 not in r[2] for r in q)
    assert query(paths, "select count(*) from lignes_ij") == [(0,)]


def test_same_file_twice_is_a_noop(tmp_path):
    files = {
        IJ_NAME: csv_text([*reference_rows(), ij_line(LIG_NUM="BAD", BEN_SEX_COD="3")], IJ_HEADER)
    }
    paths, _first = ingest(tmp_path, files)
    snapshot = {
        t: query(paths, f"select * from {t} order by all")
        for t in ("lignes_ij", "quarantaine", "ingestions")
    }
    copy = tmp_path / "copie" / "ij_paiements_20240315_311_bis.csv"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "arrivee" / IJ_NAME).read_bytes())
    second = ingest_paths(paths, [tmp_path / "arrivee" / IJ_NAME, copy], TEST_KEY)
    assert [f.statut for f in second.fichiers] == ["deja_ingere", "deja_ingere"]
    assert "rien à faire" in second.fichiers[0].motif
    for t, rows in snapshot.items():
        assert query(paths, f"select * from {t} order by all") == rows
    assert len(list((paths.lake / "raw" / "ij_paiements").glob("*"))) == 1


def test_corrections_keep_history_and_doublons_across_files(tmp_path):
    day1 = csv_text([ij_line(LIG_NUM="L1"), ij_line(LIG_NUM="L2")], IJ_HEADER)
    day2 = csv_text(
        [
            ij_line(LIG_NUM="L1", FLX_DIS_DTD="16/03/2024", BSE_REM_MNT="1244,50"),  # correction
            ij_line(LIG_NUM="L2"),  # same key and same FLX_DIS_DTD as day 1: doublon
        ],
        IJ_HEADER,
    )
    paths, summary = ingest(
        tmp_path, {"ij_paiements_20240316_311.csv": day2, "ij_paiements_20240315_311.csv": day1}
    )
    assert [f.fichier for f in summary.fichiers] == [
        "ij_paiements_20240315_311.csv",
        "ij_paiements_20240316_311.csv",
    ]
    assert query(
        paths, "select LIG_NUM, FLX_DIS_DTD, BSE_REM_MNT, fichier from lignes_ij order by all"
    ) == [
        ("L1", dt.date(2024, 3, 15), Decimal("1244.10"), "ij_paiements_20240315_311.csv"),
        ("L1", dt.date(2024, 3, 16), Decimal("1244.50"), "ij_paiements_20240316_311.csv"),
        ("L2", dt.date(2024, 3, 15), Decimal("1244.10"), "ij_paiements_20240315_311.csv"),
    ]
    assert query(paths, "select fichier, ligne, regles from quarantaine") == [
        ("ij_paiements_20240316_311.csv", 3, ["doublon"])
    ]


def test_action_corrections(tmp_path):
    day1 = csv_text([action_line(ACT_NUM="A1")], ACTIONS_HEADER)
    day2 = csv_text(
        [
            action_line(ACT_NUM="A1", FLX_DIS_DTD="16/03/2024", ACT_RES="REPRISE_FIXEE"),
            action_line(ACT_NUM="A1", FLX_DIS_DTD="16/03/2024"),
        ],
        ACTIONS_HEADER,
    )
    paths, _ = ingest(tmp_path, {"actions_20240315_31.csv": day1, "actions_20240316_31.csv": day2})
    assert query(
        paths, "select ACT_NUM, FLX_DIS_DTD, ACT_RES, assure_id from actions order by all"
    ) == [
        ("A1", dt.date(2024, 3, 15), "ARRET_JUSTIFIE", expected_id(NIR_1)),
        ("A1", dt.date(2024, 3, 16), "REPRISE_FIXEE", expected_id(NIR_1)),
    ]
    assert query(paths, "select ligne, regles from quarantaine") == [(3, ["doublon"])]


def test_small_chunks_give_identical_results(tmp_path):
    rows = [ij_line(LIG_NUM=f"L{i}", BEN_NAI_ANN="1985" if i % 7 else "1984") for i in range(60)]
    rows.append(ij_line(LIG_NUM="L5"))  # doublon of a line in an earlier chunk
    text = csv_text(rows, IJ_HEADER).replace("A0001", '"A\n0001"', 3)  # newlines inside quotes
    a, sa = ingest(tmp_path / "a", {IJ_NAME: text})
    b, sb = ingest(tmp_path / "b", {IJ_NAME: text}, chunk_bytes=700)
    assert sa.fichiers[0].regles == sb.fichiers[0].regles == {"nir_annee": 9, "doublon": 1}
    assert sa.fichiers[0].lignes_lues == 61
    sql = "select LIG_NUM, ARR_NUM, ligne from lignes_ij order by ligne"
    assert query(a, sql) == query(b, sql)
    # Physical line numbers: the 3 quoted newlines push later lines down.
    assert query(a, "select ligne from lignes_ij where LIG_NUM = 'L3'") == [(8,)]
    assert query(b, "select ligne, regles from quarantaine order by ligne")[-1] == (65, ["doublon"])


def test_unreadable_files_are_reported_and_others_go_on(tmp_path):
    good = csv_text([ij_line()], IJ_HEADER)
    truncated = gzip.compress(good.encode())[:-20]
    files = {
        "ij_paiements_20240314_311.csv.gz": truncated,
        "ij_paiements_20240315_311.parquet": b"PAR1 not really parquet",
        "ij_paiements_20240316_311.csv": good,
        "ij_paiements_20240317_311.csv": b"",
        "notes.txt": "rien",
    }
    folder = tmp_path / "arrivee"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    paths = DataPaths(tmp_path / "donnees")
    summary = ingest_paths(paths, [folder, tmp_path / "absent.csv"], TEST_KEY)
    status = {f.fichier: (f.statut, f.motif or "") for f in summary.fichiers}
    assert status["absent.csv"][0] == "introuvable"
    assert status["notes.txt"][0] == "ignore"
    assert status["ij_paiements_20240314_311.csv.gz"][0] == "rejete"
    assert "illisible" in status["ij_paiements_20240314_311.csv.gz"][1]
    assert status["ij_paiements_20240315_311.parquet"][0] == "rejete"
    assert status["ij_paiements_20240316_311.csv"][0] == "ok"
    assert status["ij_paiements_20240317_311.csv"] == (
        "rejete",
        "entete : en-tête absent (fichier vide)",
    )
    assert query(paths, "select count(*) from lignes_ij") == [(1,)]
    assert query(paths, "select fichier, statut, lignes_lues from ingestions order by fichier") == [
        ("ij_paiements_20240314_311.csv.gz", "rejete", 0),
        ("ij_paiements_20240315_311.parquet", "rejete", 0),
        ("ij_paiements_20240316_311.csv", "ok", 1),
        ("ij_paiements_20240317_311.csv", "rejete", 0),
    ]


def test_unexpected_error_keeps_nothing_and_is_retried(tmp_path, monkeypatch):
    import transforms.raw.lines as lines

    real = lines.split_chunk
    calls = {"n": 0}

    def failing_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("panne simulée")
        return real(*args, **kwargs)

    monkeypatch.setattr(lines, "split_chunk", failing_once)
    files = {
        "ij_paiements_20240315_311.csv": csv_text([ij_line(LIG_NUM="L1")], IJ_HEADER),
        "ij_paiements_20240316_311.csv": csv_text([ij_line(LIG_NUM="L2")], IJ_HEADER),
    }
    paths, summary = ingest(tmp_path, files)
    assert [(f.statut, f.lignes_lues) for f in summary.fichiers] == [("erreur", 0), ("ok", 1)]
    assert "panne simulée" in summary.fichiers[0].motif
    assert query(paths, "select fichier from ingestions") == [("ij_paiements_20240316_311.csv",)]
    assert list((paths.lake / "raw" / "ij_paiements").glob(".*tmp")) == []
    again = ingest_paths(paths, [tmp_path / "arrivee"], TEST_KEY)
    assert [f.statut for f in again.fichiers] == ["ok", "deja_ingere"]
    assert query(paths, "select LIG_NUM from lignes_ij order by 1") == [("L1",), ("L2",)]


def _all_text_content(paths: DataPaths) -> dict[Path, bytes]:
    """Every file under the data folder (identity store aside): raw bytes, plus the decoded
    content of Parquet and DuckDB files (which compress strings)."""
    out: dict[Path, bytes] = {}
    for path in sorted(paths.root.rglob("*")):
        if not path.is_file() or path.parent == paths.identite.parent:
            continue
        blob = path.read_bytes()
        if path.suffix == ".parquet":
            blob += repr(pq.read_table(path).to_pylist()).encode()
        if path.suffix == ".duckdb":
            con = duckdb.connect(str(path), read_only=True)
            for (table,) in con.execute(
                "select table_name from information_schema.tables"
            ).fetchall():
                blob += repr(con.execute(f'select * from "{table}"').fetchall()).encode()
            con.close()
        out[path] = blob
    return out


def test_no_clear_nir_outside_the_identity_store(tmp_path):
    wrong_key = NIR_2[:13] + "00"
    rows = [
        ij_line(LIG_NUM="L1"),
        ij_line(LIG_NUM="L2", BEN_NIR=NIR_CORSE, BEN_SEX_COD="2", BEN_NAI_ANN="1992"),
        ij_line(LIG_NUM="L3", BEN_NIR=wrong_key, BEN_SEX_COD="2", BEN_NAI_ANN="1990"),  # nir_cle
        ij_line(LIG_NUM="L4", BEN_NIR=NIR_2 + "9", BEN_SEX_COD="2"),  # nir_format
        ij_line(LIG_NUM="L5", BEN_NIR=NIR_2, BEN_SEX_COD="1"),  # nir_sexe
        ij_line(LIG_NUM="L6", BEN_NIR=nir("1770199000111"), BEN_NAI_ANN="1977", PRE_NAT="Q"),
        ij_line(LIG_NUM="L1"),  # doublon
    ]
    text = csv_text(rows, IJ_HEADER)
    shifted = f"L7;{nir('1660299000222')};15/03/2024;311\n"  # nombre_champs, NIR out of place
    files = {
        IJ_NAME: text + shifted,
        "actions_20240315_31.csv": csv_text(
            [action_line(BEN_NIR=nir("1550377000333"))], ACTIONS_HEADER
        ),
        "ij_paiements_20240316_311.csv": csv_text(
            [ij_line(BEN_NIR=nir("2450488000444"), BEN_SEX_COD="2", BEN_NAI_ANN="1945")],
            [h for h in IJ_HEADER if h != "ALD_IND" and h != "PRE_NAT"],
        ),
    }
    paths, summary = ingest(tmp_path, files)
    assert summary.lignes_quarantaine >= 6
    nirs = [
        NIR_1,
        NIR_CORSE,
        wrong_key,
        NIR_2 + "9",
        NIR_2,
        nir("1770199000111"),
        nir("1660299000222"),
        nir("1550377000333"),
        nir("2450488000444"),
    ]
    contents = _all_text_content(paths)
    assert any(p.suffix == ".parquet" for p in contents) and paths.warehouse in contents
    for path, blob in contents.items():
        for value in nirs:
            assert value.encode() not in blob, f"NIR en clair dans {path}"
            assert value[:13].encode() not in blob, f"NIR (13 car.) en clair dans {path}"
    json_text = json.dumps(summary.as_dict(), default=str)
    assert not any(value in json_text for value in nirs)
    # Positive control: the scan does find NIRs where they are meant to be.
    ident = duckdb.connect(str(paths.identite), read_only=True)
    stored = {r[0] for r in ident.execute("select BEN_NIR from identite").fetchall()}
    ident.close()
    assert {NIR_1, NIR_CORSE, nir("1550377000333")} <= stored


def test_cli_refuses_without_key(tmp_path, monkeypatch):
    monkeypatch.delenv("RU_CLE_PSEUDO", raising=False)
    (tmp_path / IJ_NAME).write_text(csv_text([ij_line()], IJ_HEADER))
    result = CliRunner().invoke(
        app, ["ingest", str(tmp_path / IJ_NAME), "--data", str(tmp_path / "d")]
    )
    assert result.exit_code != 0
    assert "RU_CLE_PSEUDO" in result.output
    assert not (tmp_path / "d" / "warehouse.duckdb").exists()


def test_cli_json_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("RU_CLE_PSEUDO", TEST_KEY.decode())
    folder = tmp_path / "arrivee"
    folder.mkdir()
    rows = [ij_line(LIG_NUM="L1"), ij_line(LIG_NUM="L2", PRE_NAT="X"), ij_line(LIG_NUM="L1")]
    (folder / IJ_NAME).write_text(csv_text(rows, IJ_HEADER))
    (folder / "autre.csv").write_text("x\n")
    result = CliRunner().invoke(
        app, ["ingest", str(folder), "--json", "--data", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    by_name = {f["fichier"]: f for f in payload["fichiers"]}
    f = by_name[IJ_NAME]
    assert (f["statut"], f["lignes_lues"], f["lignes_acceptees"], f["lignes_quarantaine"]) == (
        "ok",
        3,
        1,
        2,
    )
    assert f["regles"] == {"code_inconnu": 1, "doublon": 1}
    assert by_name["autre.csv"]["statut"] == "ignore"
    assert payload["totaux"]["regles"] == {"code_inconnu": 1, "doublon": 1}
    assert payload["controles"] == "ok"
    again = CliRunner().invoke(
        app, ["ingest", str(folder / IJ_NAME), "--json", "--data", str(tmp_path / "d")]
    )
    assert json.loads(again.stdout)["fichiers"][0]["statut"] == "deja_ingere"


PSEUDO_COLUMNS = {"nir": "nir", "number": "num", "psa": "psa", "rang": "rang", "date": "d"}


def with_nir_number(columns: dict) -> pl.DataFrame:
    """A frame of ``columns`` plus ``num``: the NIR as an integer, as the rules compute it."""
    from transforms.raw.rules import nir_columns, v

    frame = pl.DataFrame(columns, schema_overrides={"nir": pl.String, "psa": pl.String})
    number = nir_columns(frame.select(pl.col("nir").alias(v("BEN_NIR"))))["_nir_num"]
    return frame.with_columns(number.alias("num"))


def test_nir_number_is_exact_and_tells_corsica_apart():
    from transforms.raw.rules import nir_columns, v

    bodies = ["292062A123456", "292062B123456", "2920619123456", "2920618123456"]
    nirs = [nir(b) for b in bodies] + [NIR_1, "1850775123456", None]
    got = nir_columns(pl.DataFrame({v("BEN_NIR"): nirs}))["_nir_num"].to_list()
    regular = [int(n) for n in nirs[2:5]]
    assert got[2:5] == regular  # the 15 digits, read as a number
    assert got[0] == 10**15 + int(nirs[0].replace("2A", "19"))
    assert got[1] == 2 * 10**15 + int(nirs[1].replace("2B", "18"))
    assert len(set(got[:5])) == 5
    assert got[5:] == [None, None]  # not a NIR: no number


def test_pseudonymise_once_per_distinct_nir_and_rang_of_a_file(monkeypatch):
    import transforms.raw.pseudo as pseudo

    hashed = []
    real = pseudo.hmac_ids

    def counting(key, messages):
        hashed.extend(messages)
        return real(key, messages)

    monkeypatch.setattr(pseudo, "hmac_ids", counting)
    p = pseudo.Pseudonymiser(TEST_KEY)
    first = with_nir_number(
        {
            "nir": [NIR_1, NIR_2, NIR_1, None, NIR_1],
            "psa": [None, None, None, "PSA-1", None],
            "rang": [1, 1, 1, 1, 2],
            "d": [dt.date(2024, 3, 15), dt.date(2024, 3, 1), dt.date(2024, 2, 1), None, None],
        }
    )
    out = p.pseudonymise(first, **PSEUDO_COLUMNS)
    assert out["assure_id"].to_list() == [
        expected_id(NIR_1),
        expected_id(NIR_2),
        expected_id(NIR_1),
        "PSA-1",
        expected_id(NIR_1, "2"),
    ]
    assert first.columns == ["nir", "psa", "rang", "d", "num"]  # input not mutated
    # A later chunk: known messages are not hashed again; dates move the earliest one.
    second = with_nir_number(
        {
            "nir": [NIR_2, NIR_1, NIR_2, NIR_CORSE],
            "psa": [None, None, None, None],
            "rang": [1, 2, 3, 1],
            "d": [dt.date(2024, 1, 5), dt.date(2024, 4, 1), dt.date(2024, 4, 2), None],
        }
    )
    out = p.pseudonymise(second, **PSEUDO_COLUMNS)
    assert out["assure_id"].to_list() == [
        expected_id(NIR_2),
        expected_id(NIR_1, "2"),
        expected_id(NIR_2, "3"),
        expected_id(NIR_CORSE),
    ]
    assert sorted(hashed) == sorted(
        m.encode() for m in [NIR_1 + "1", NIR_2 + "1", NIR_1 + "2", NIR_2 + "3", NIR_CORSE + "1"]
    )
    assert sorted(p.identities().rows()) == sorted(
        [
            (expected_id(NIR_1), NIR_1, 1, dt.date(2024, 2, 1)),
            (expected_id(NIR_2), NIR_2, 1, dt.date(2024, 1, 5)),
            (expected_id(NIR_1, "2"), NIR_1, 2, dt.date(2024, 4, 1)),
            (expected_id(NIR_2, "3"), NIR_2, 3, dt.date(2024, 4, 2)),
            (expected_id(NIR_CORSE), NIR_CORSE, 1, None),
        ]
    )


def test_pseudonymiser_without_any_nir_has_no_identity():
    from transforms.raw.pseudo import Pseudonymiser

    p = Pseudonymiser(TEST_KEY)
    frame = with_nir_number(
        {"nir": [None], "psa": ["PSA-9"], "rang": [1], "d": [dt.date(2024, 1, 1)]}
    )
    assert p.pseudonymise(frame, **PSEUDO_COLUMNS)["assure_id"].to_list() == ["PSA-9"]
    assert p.identities().height == 0


# --- lignes_ij / actions are views over the lake ---------------------------------------------


def _types(paths: DataPaths, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in query(
            paths,
            "select column_name, data_type from information_schema.columns "
            "where table_name = ? order by ordinal_position",
            [table],
        )
    ]


def test_views_over_the_lake_empty_typed_and_only_committed_files(tmp_path):
    from expectations.contract import load_contract

    # Only quarantined lines: no lake file, the views exist, are empty and typed.
    bad = ij_line(LIG_NUM="L1", ORG_AFF_COD="999")
    paths, summary = ingest(tmp_path, {IJ_NAME: csv_text([bad], IJ_HEADER)})
    assert summary.fichiers[0].lignes_quarantaine == 1
    kinds = query(
        paths,
        "select table_name, table_type from information_schema.tables order by table_name",
    )
    assert ("lignes_ij", "VIEW") in kinds and ("actions", "VIEW") in kinds
    assert ("ingestions", "BASE TABLE") in kinds and ("quarantaine", "BASE TABLE") in kinds
    assert query(paths, "select count(*) from lignes_ij") == [(0,)]
    contract = load_contract("lignes_ij")
    assert _types(paths, "lignes_ij")[:3] == [
        ("LIG_NUM", "VARCHAR"),
        ("FLX_DIS_DTD", "DATE"),
        ("ORG_AFF_COD", "VARCHAR"),
    ]
    assert [n for n, _ in _types(paths, "lignes_ij")] == contract.column_names

    # A lake file whose ingestions row was never committed (crash between the move and the
    # commit) is not shown, even after the views are recreated.
    orphan = (
        paths.lake / "raw" / "ij_paiements" / "ij_paiements_20240316_311__0123456789abcdef.parquet"
    )
    pl.DataFrame({"LIG_NUM": ["X"]}).write_parquet(orphan)
    second = "ij_paiements_20240316_311.csv"
    _, summary = ingest(tmp_path, {second: csv_text(reference_rows(), IJ_HEADER)})
    assert summary.fichiers[0].lignes_acceptees == 3
    assert query(paths, "select LIG_NUM from lignes_ij order by LIG_NUM") == [
        ("L1",),
        ("L2",),
        ("L3",),
    ]
    assert dict(_types(paths, "lignes_ij"))["BSE_REM_MNT"].startswith("DECIMAL")


def test_moved_data_folder_views_recreated_on_next_ingestion(tmp_path):
    import shutil

    paths, _ = ingest(tmp_path, {IJ_NAME: csv_text(reference_rows(), IJ_HEADER)})
    moved = DataPaths(tmp_path / "ailleurs")
    shutil.move(paths.root, moved.root)
    # Opening for writing by ingestion (here with an already-ingested file) re-resolves paths.
    again = tmp_path / "arrivee" / IJ_NAME
    summary = ingest_paths(moved, [again], TEST_KEY)
    assert summary.fichiers[0].statut == "deja_ingere"
    assert query(moved, "select count(*), min(fichier) from lignes_ij") == [(3, IJ_NAME)]


def test_add_lake_file_rows_visible_with_their_ingestion(tmp_path):
    from flows.ingest import add_lake_file, ensure_tables
    from flows.warehouse import warehouse

    paths = DataPaths(tmp_path / "donnees").ensure()
    with warehouse(paths) as con:
        ensure_tables(con, paths)
        ingestion_id = add_lake_file(
            con,
            paths,
            "actions",
            "select 'A1' as ACT_NUM, date '2024-03-15' as FLX_DIS_DTD, '31' as ELSM",
            fichier="bench.csv",
        )
    assert query(
        paths, "select ACT_NUM, FLX_DIS_DTD, ELSM, ingestion_id, fichier, ligne from actions"
    ) == [("A1", dt.date(2024, 3, 15), "31", ingestion_id, "bench.csv", 2)]
    assert query(paths, "select source, statut, lignes_acceptees from ingestions") == [
        ("actions", "ok", 1)
    ]


def test_first_seen_date_is_the_earliest_over_all_chunks_of_a_file(tmp_path):
    rows = [ij_line(LIG_NUM=f"L{i}", FLX_DIS_DTD="20/03/2024") for i in range(12)]
    rows.append(ij_line(LIG_NUM="L99", FLX_DIS_DTD="16/03/2024"))  # last chunk, earliest
    paths, summary = ingest(tmp_path, {IJ_NAME: csv_text(rows, IJ_HEADER)}, chunk_bytes=300)
    assert summary.fichiers[0].lignes_acceptees == 13
    con = duckdb.connect(str(paths.identite), read_only=True)
    try:
        got = con.execute("select BEN_NIR, premiere_vue from identite").fetchall()
    finally:
        con.close()
    assert got == [(NIR_1, dt.date(2024, 3, 16))]


def test_sorted_runs_find_exactly_the_hashes_added_and_stay_few():
    import itertools

    import numpy as np

    from transforms.raw.sorted_runs import SortedRuns

    rng = np.random.default_rng(7)
    runs, added = SortedRuns(), set()
    for size in [5, 300, 40, 40, 1000, 1, 77, 500, 500, 500]:
        chunk = rng.integers(0, 2**20, size, dtype=np.uint64)  # small range: repeats too
        queries = np.sort(rng.integers(0, 2**20, 400, dtype=np.uint64))
        expected = [q for q in queries.tolist() if q in added]
        assert runs.found(queries).tolist() == expected
        runs.add(chunk)
        added.update(chunk.tolist())
        sizes = [len(r) for r in runs.runs]
        assert all(a > 2 * b for a, b in itertools.pairwise(sizes)), sizes


def test_sorted_runs_lookup_gives_the_value_of_each_key_added():
    import numpy as np

    from transforms.raw.sorted_runs import SortedRuns

    rng = np.random.default_rng(11)
    runs, values = SortedRuns(), {}
    for size in [3, 200, 50, 50, 700, 2, 90]:
        fresh = np.setdiff1d(rng.integers(-(2**62), 2**62, size), list(values))
        queries = np.sort(rng.choice(np.concatenate([fresh, list(values) or fresh]), 100))
        expected = [values.get(q, -1) for q in queries.tolist()]
        assert runs.lookup(queries).tolist() == expected
        codes = np.arange(len(values), len(values) + len(fresh))
        order = rng.permutation(len(fresh))
        runs.add(fresh[order], codes[order])
        values.update(zip(fresh.tolist(), codes.tolist(), strict=True))
    everything = np.sort(np.array(list(values)))
    assert runs.lookup(everything).tolist() == [values[k] for k in everything.tolist()]


def test_lake_file_keeps_statistics_on_dates_and_organisation_codes_only(tmp_path):
    rows = [ij_line(LIG_NUM=f"L{i}") for i in range(3)]
    paths, summary = ingest(tmp_path, {IJ_NAME: csv_text(rows, IJ_HEADER)})
    assert summary.fichiers[0].lignes_acceptees == 3
    (lake,) = (paths.lake / "raw" / "ij_paiements").glob("*.parquet")
    group = pq.ParquetFile(lake).metadata.row_group(0)
    with_stats = {
        group.column(i).path_in_schema
        for i in range(group.num_columns)
        if group.column(i).is_stats_set
    }
    assert {"FLX_DIS_DTD", "EXE_SOI_DTD", "EXE_SOI_DTF", "ORG_AFF_COD"} <= with_stats
    assert not with_stats & {"assure_id", "LIG_NUM", "BSE_REM_MNT", "BEN_SEX_COD", "ligne"}
    assert query(
        paths, "select count(*) from lignes_ij where FLX_DIS_DTD >= date '2000-01-01'"
    ) == [(3,)]


def test_a_file_that_cannot_be_read_is_reported_and_the_others_go_on(tmp_path, monkeypatch):
    import flows.ingest

    real = flows.ingest._sha256

    def denied(path, stop=None):
        if path.name.endswith("_311.csv"):
            raise PermissionError(13, "Permission non accordée")
        return real(path, stop)

    monkeypatch.setattr(flows.ingest, "_sha256", denied)
    files = {
        "ij_paiements_20240315_311.csv": csv_text([ij_line(LIG_NUM="L1")], IJ_HEADER),
        "ij_paiements_20240316_312.csv": csv_text([ij_line(LIG_NUM="L2")], IJ_HEADER),
    }
    paths, summary = ingest(tmp_path, files)
    first, second = summary.fichiers
    assert (first.statut, first.motif) == (
        "introuvable",
        "fichier illisible : Permission non accordée",
    )
    assert (second.statut, second.lignes_acceptees) == ("ok", 1)
    assert query(paths, "select fichier from ingestions") == [("ij_paiements_20240316_312.csv",)]
    assert query(paths, "select count(*) from quarantaine") == [(0,)]


def test_sorted_runs_refuse_keys_with_and_without_values_mixed():
    import numpy as np

    from transforms.raw.sorted_runs import SortedRuns

    runs = SortedRuns()
    runs.add(np.array([3, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="jamais"):
        runs.add(np.array([2]))


def test_chunks_loaded_while_the_hash_is_computed_get_the_file_id(tmp_path, monkeypatch):
    """With a slow sha256, the first chunks are split and held with a provisional id; what
    is written carries the file's sha256, and a re-delivery still writes nothing."""
    import hashlib
    import time

    import flows.ingest as ingest_module

    real = ingest_module._sha256

    def slow(path, stop=None):
        time.sleep(0.5)
        return real(path, stop)

    monkeypatch.setattr(ingest_module, "_sha256", slow)
    monkeypatch.setattr(ingest_module, "HELD_CHUNKS", 3)
    rows = [ij_line(LIG_NUM=f"L{i}") for i in range(40)]
    rows[5] = ij_line(LIG_NUM="L5", BEN_SEX_COD="3")  # quarantined while held
    text = csv_text(rows, IJ_HEADER)
    paths, summary = ingest(tmp_path, {IJ_NAME: text}, chunk_bytes=700)
    (f,) = summary.fichiers
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()  # written as UTF-8
    assert (f.statut, f.ingestion_id, f.lignes_acceptees, f.lignes_quarantaine) == (
        "ok",
        sha,
        39,
        1,
    )
    (lake,) = (paths.lake / "raw" / "ij_paiements").glob("*.parquet")
    assert pl.read_parquet(lake)["ingestion_id"].unique().to_list() == [sha]
    assert query(paths, "select distinct ingestion_id from quarantaine") == [(sha,)]
    assert query(paths, "select count(*) from lignes_ij where ingestion_id = ?", [sha]) == [(39,)]
    again = ingest_paths(paths, [tmp_path / "arrivee" / IJ_NAME], TEST_KEY, chunk_bytes=700)
    assert again.fichiers[0].statut == "deja_ingere"
    assert query(paths, "select count(*) from quarantaine") == [(1,)]
    assert len(list((paths.lake / "raw" / "ij_paiements").glob("*"))) == 1


def test_unreadable_file_delivered_again_is_a_noop(tmp_path):
    truncated = gzip.compress(csv_text([ij_line()], IJ_HEADER).encode())[:-20]
    name = "ij_paiements_20240314_311.csv.gz"
    paths, first = ingest(tmp_path, {name: truncated})
    assert first.fichiers[0].statut == "rejete"
    again = ingest_paths(paths, [tmp_path / "arrivee" / name], TEST_KEY)
    assert again.fichiers[0].statut == "deja_ingere"
    assert query(paths, "select fichier, statut, taille_octets from ingestions") == [
        (name, "rejete", len(truncated))
    ]


def test_blocks_checked_by_several_threads_come_back_in_order_and_errors_in_place():
    import threading
    import time as _time

    from flows.ingest import _InOrder

    def slow_evens(i):
        _time.sleep(0.05 if i % 2 == 0 else 0)  # odd items finish before the even ones
        if i == 5:
            raise ValueError("bloc 5 illisible")
        return i * 10, threading.current_thread().name

    got = []
    with pytest.raises(ValueError, match="bloc 5"):
        for value, thread in _InOrder(slow_evens, iter(range(8)), workers=2):
            got.append(value)
            assert thread.startswith("analyse")
    assert got == [0, 10, 20, 30, 40]

    def failing_source():
        yield 1
        yield 2
        raise OSError("disque")

    got = []
    with pytest.raises(OSError, match="disque"):
        for value in _InOrder(lambda i: i, failing_source(), workers=2):
            got.append(value)
    assert got == [1, 2]  # the reading error comes after the items read before it

    closed, started = [], []

    def source():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    def record(i):
        started.append(i)
        return i

    results = _InOrder(record, source(), workers=2)
    assert [next(results), next(results)] == [0, 1]
    results.close()
    assert closed == [True]
    # Never more than `workers` + 1 items taken beyond the ones given back.
    assert len(started) <= 2 + 2 + 1


def test_distinct_integers_of_a_chunk_match_numpy_unique():
    import numpy as np

    from transforms.raw.pseudo import _unique

    rng = np.random.default_rng(7)
    for values in (
        np.array([], dtype=np.int64),
        np.array([42], dtype=np.int64),
        np.full(5, 3, dtype=np.int64),
        rng.integers(0, 50, 1000).astype(np.int64) * 10**14,
    ):
        unique, rows, inverse = _unique(values)
        want_unique, want_inverse = np.unique(values, return_inverse=True)
        assert unique.tolist() == want_unique.tolist()
        assert inverse.tolist() == want_inverse.reshape(-1).tolist()
        assert values[rows].tolist() == unique.tolist()  # a row holding each value


def test_sorted_runs_galloping_search_matches_numpy_searchsorted():
    import numpy as np

    from transforms.raw.sorted_runs import _gallop

    rng = np.random.default_rng(11)
    for run_size in (0, 1, 7, 5000):
        run = np.sort(rng.integers(0, 1000, run_size).astype(np.uint64))
        queries = np.sort(rng.integers(0, 1200, 3000).astype(np.uint64))  # repeats, beyond
        pos = np.empty(len(queries), dtype=np.int64)
        hit = np.empty(len(queries), dtype=np.bool_)
        _gallop(run, queries, pos, hit)
        assert pos.tolist() == np.searchsorted(run, queries).tolist()
        assert hit.tolist() == np.isin(queries, run).tolist()

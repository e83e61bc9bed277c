"""Synthetic extracts (``ru sample``): contract conformity, realism, defects, determinism."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows.sample import Compression, Encodage, Format, generate_sample, read_reference
from synthetic.defauts import REGLES_ACTIONS, REGLES_IJ, REGLES_TEXTE
from synthetic.echantillon import Parametres, generer
from synthetic.generateur import COLONNES_ACTIONS, COLONNES_IJ
from synthetic.nir import check_key, nir_key, nir_number
from synthetic.population import build_monde, elsm_from_reference

DEBUT, FIN = date(2023, 11, 1), date(2026, 10, 31)
ELSM = ("31", "64B", "82")
NIR_RESERVE = r"^[12][0-9]{2}(0[1-9]|1[0-2])(99|2A|2B)99[0-9][0-9]{3}[0-9]{2}$"


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    return read_reference()


def _frames(reference, n=4000, graine=11, taux=0.0, texte=True):
    params = Parametres(n, DEBUT, FIN, ELSM, graine=graine, taux_defauts=taux, texte=texte)
    lots = list(generer(params, reference))
    lignes = pl.concat([lot.lignes for lot in lots])
    actions = pl.concat([lot.actions for lot in lots])
    return params, lots, lignes, actions


@pytest.fixture(scope="module")
def clean(reference):
    """4 000 assurés without defects (about 40 000 payment lines)."""
    return _frames(reference)


@pytest.fixture(scope="module")
def written(tmp_path_factory, reference):
    """A small CSV sample written to disk with defects, nightly files and gzipped history."""
    out = tmp_path_factory.mktemp("echantillon")
    params = Parametres(600, DEBUT, FIN, ELSM, graine=5, taux_defauts=0.05)
    summary = generate_sample(out, params, nuits=5, compression=Compression.historique)
    return out, summary


def _read_extract(path: Path, columns) -> pl.DataFrame:
    """Read an extract with the contract's dialect: cp1252, ';', JJ/MM/AAAA, decimal comma."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        import gzip

        raw = gzip.decompress(raw)
    text = raw.decode("cp1252")
    dates = [c for c in columns if c.endswith(("_DTD", "_DTE", "_DTF"))]
    numbers = {c: pl.Float64 for c in ("BSE_REM_PRU", "BSE_REM_MNT") if c in columns}
    numbers |= {
        c: pl.Int32
        for c in ("BEN_RNG_GEM", "BEN_SEX_COD", "BEN_NAI_ANN", "RGO_ASU_NAT", "ATT_NAT",
                  "PRS_NAT_REF", "PSP_SPE_COD", "PRS_ACT_NBR", "PRS_ACT_QTE")
        if c in columns
    }  # fmt: skip
    frame = pl.read_csv(
        io.StringIO(text),
        separator=";",
        infer_schema=False,
        schema_overrides=numbers,
        decimal_comma=True,
    )
    return frame.with_columns(pl.col(dates).str.to_date("%d/%m/%Y", strict=True))


# ------------------------------------------------------------------------------- NIR


def test_nir_key_on_hand_written_numbers():
    # 1 85 07 75 123 456 -> 97 − (1850775123456 mod 97) = 8
    assert nir_key(np.array([1850775123456]))[0] == 8
    # Corsica: 2A counts 19, 2B counts 18 in the modulus.
    assert nir_key(nir_number(1, 85, 7, 19, 123, 456))[()] == 65
    assert nir_key(nir_number(1, 85, 7, 18, 123, 456))[()] == 92
    assert check_key("185072A12345665")
    assert check_key("185072B12345692")
    assert not check_key("185072B12345665")
    assert check_key("201029999000104")


def test_every_nir_is_valid_reserved_and_matches_sex_and_year(clean):
    _, _, lignes, actions = clean
    with_nir = lignes.filter(pl.col("BEN_NIR").is_not_null())
    nirs = with_nir["BEN_NIR"].to_list()
    assert len(nirs) > 30_000
    assert all(check_key(x) for x in nirs)
    assert with_nir["BEN_NIR"].str.contains(NIR_RESERVE).all()
    assert (with_nir["BEN_NIR"].str.slice(0, 1).cast(pl.Int16) == with_nir["BEN_SEX_COD"]).all()
    assert (
        with_nir["BEN_NIR"].str.slice(1, 2).cast(pl.Int16) == with_nir["BEN_NAI_ANN"] % 100
    ).all()
    # Corsican NIRs exercise the 2A/2B key rule; a few twins share a NIR with rang 2.
    dept = with_nir["BEN_NIR"].str.slice(5, 2)
    assert {"99", "2A", "2B"} <= set(dept.unique().to_list())
    assert set(with_nir["BEN_RNG_GEM"].unique().to_list()) == {1, 2}
    # Exactly one of BEN_NIR / BEN_NIR_PSA, on lines and actions; a few pseudonymised.
    for frame in (lignes, actions):
        assert (frame["BEN_NIR"].is_null() != frame["BEN_NIR_PSA"].is_null()).all()
    share_psa = lignes["BEN_NIR_PSA"].is_not_null().mean()
    assert 0.005 < share_psa < 0.08
    # One NIR + rang is one person: same sex and birth year everywhere.
    per_person = with_nir.group_by("BEN_NIR", "BEN_RNG_GEM").agg(
        pl.col("BEN_SEX_COD").n_unique(), pl.col("BEN_NAI_ANN").n_unique()
    )
    assert per_person["BEN_SEX_COD"].max() == 1 and per_person["BEN_NAI_ANN"].max() == 1


# ------------------------------------------------------------------------------- contract rules


def test_clean_lines_satisfy_every_line_rule_of_the_contract(clean, reference):
    _, _, lig, a = clean
    assert lig.columns[: len(COLONNES_IJ)] == list(COLONNES_IJ)
    days = (pl.col("EXE_SOI_DTF") - pl.col("EXE_SOI_DTD")).dt.total_days() + 1
    bad = lig.filter(
        (pl.col("EXE_SOI_DTD") > pl.col("EXE_SOI_DTF"))
        | (days > 31)
        | (pl.col("ARR_DEB_DTE") > pl.col("EXE_SOI_DTD"))
        | ((pl.col("PRS_ACT_NBR") > 0) & (pl.col("PRS_ACT_QTE") != days))
        | (pl.col("PRS_ACT_NBR").abs() > pl.col("PRS_ACT_QTE"))
        | (
            (pl.col("PRS_ACT_NBR") != 0)
            & (pl.col("BSE_REM_MNT").sign() != pl.col("PRS_ACT_NBR").sign())
        )
        | (
            (pl.col("PRS_ACT_NBR") != 0)
            & (
                (pl.col("BSE_REM_MNT").abs() - pl.col("PRS_ACT_QTE") * pl.col("BSE_REM_PRU")).abs()
                > 1
            )
        )
        | ~pl.col("BSE_REM_PRU").is_between(0, 250)
        | (pl.col("PRE_FIN_DTE") < pl.col("PRE_PRE_DTD"))
        | (pl.col("PRE_FIN_DTE") > pl.col("PRE_PRE_DTD").dt.offset_by("3y"))
        | (pl.max_horizontal("ARR_DEB_DTE", "PRE_PRE_DTD", "EXE_SOI_DTF") > pl.col("FLX_DIS_DTD"))
        | (pl.col("FLX_DIS_DTD") < DEBUT)
        | (pl.col("FLX_DIS_DTD") > FIN)
        | ~pl.col("ORG_AFF_COD").is_in(reference["code_organisme"].to_list())
        | ~pl.col("PRE_NAT").is_in(["I", "P", "R"])
        | ~pl.col("MTF_CAT").is_in(["PSY", "RHU", "TRA", "ONC", "CAR", "INF", "GRO", "AUT"])
        | ~pl.col("ATT_NAT").is_in([1, 2, 3])
        | ~pl.col("RGO_ASU_NAT").is_in([10, 30, 40])
        | (pl.col("PFS_PRE_NUM").str.len_chars() != 11)
        | (pl.col("PRS_MTT_NUM").str.len_chars() != 11)
        | (pl.col("IJR_EMP_NUM").str.len_chars() != 14)
        | (pl.col("BEN_RES_DPT").str.len_chars() != 3)
    )
    assert bad.height == 0
    # Key unique except for re-delivered corrections (same key, later FLX_DIS_DTD).
    assert lig.select("ORG_AFF_COD", "LIG_NUM", "FLX_DIS_DTD").is_unique().all()
    assert a.columns[: len(COLONNES_ACTIONS)] == list(COLONNES_ACTIONS)
    assert a["ACT_NUM"].is_unique().all()
    assert (a["ACT_DTE"] <= a["FLX_DIS_DTD"]).all()
    assert a["ACT_NUM"].str.len_chars().max() <= 30


# ------------------------------------------------------------------------------- realism


def _arrets(lignes: pl.DataFrame) -> pl.DataFrame:
    """One row per arrêt with an ARR_NUM (maladie and AT/MP IJ codes)."""
    return (
        lignes.filter(pl.col("ARR_NUM").is_not_null() & (pl.col("PRS_NAT_REF") < 6119))
        .group_by("ARR_NUM")
        .agg(
            pl.col("RGO_ASU_NAT").first(),
            pl.min_horizontal(pl.col("ARR_DEB_DTE").min(), pl.col("EXE_SOI_DTD").min()).alias(
                "debut"
            ),
            pl.col("EXE_SOI_DTF").max().alias("fin"),
            pl.col("PRS_ACT_NBR").sum().alias("jours"),
            (pl.col("TPT_IND") == "O").sum().alias("lignes_tpt"),
        )
        .with_columns(((pl.col("fin") - pl.col("debut")).dt.total_days() + 1).alias("duree"))
    )


def test_realistic_shape_of_arrets(clean):
    _, _, lig, _ = clean
    ar = _arrets(lig)
    # Cohort that started early enough in the window to be followed a year and a half.
    cohort = ar.filter(pl.col("debut").is_between(DEBUT, date(2025, 4, 30)))
    assert cohort.height > 2000
    assert (cohort["jours"] < 8).mean() > 0.5
    long_year = (cohort["duree"] > 365).mean()
    long_half = (cohort["duree"] > 180).mean()
    assert 0.01 < long_year < 0.08
    assert 0.3 < long_year / long_half < 0.75  # about half still off at 12 months
    # AT/MP arrêts lasting more than four years, TPT lines beyond 6 months.
    atmp = ar.filter(pl.col("RGO_ASU_NAT") == 40)
    assert atmp.height > 100 and (atmp["duree"] > 1461).sum() >= 1
    assert lig.filter(pl.col("TPT_IND") == "O")["PRS_NAT_REF"].is_in([6117, 6118]).all()
    tpt = (
        lig.filter(pl.col("TPT_IND") == "O")
        .group_by("ARR_NUM")
        .agg(
            ((pl.col("EXE_SOI_DTF").max() - pl.col("EXE_SOI_DTD").min()).dt.total_days() + 1).alias(
                "d"
            )
        )
    )
    assert (tpt["d"] > 180).sum() >= 1
    # Maternité and cure thermale lines exist (not to be targeted).
    assert set(lig.filter(pl.col("RGO_ASU_NAT") == 30)["PRS_NAT_REF"].unique()) == {6121, 6122}
    assert lig["PRS_NAT_REF"].is_in([6131, 6132, 6133]).sum() > 0
    # Carence: the first paid day of a maladie arrêt is its 4th day, unless ALD.
    first = (
        lig.filter(
            (pl.col("RGO_ASU_NAT") == 10)
            & (pl.col("PRS_NAT_REF") < 6119)  # not cure thermale
            & (pl.col("PRE_NAT") == "I")
            & (pl.col("ARR_DEB_DTE") > DEBUT)  # first lines delivered in the window
        )
        .group_by("ARR_NUM")
        .agg(pl.col("ARR_DEB_DTE").first(), pl.col("EXE_SOI_DTD").min(), pl.col("ALD_IND").first())
        .filter(pl.col("ALD_IND") == "N")
    )
    gap = (first["EXE_SOI_DTD"] - first["ARR_DEB_DTE"]).dt.total_days()
    assert (gap == 3).mean() > 0.99
    # Deaths on the last lines, lines without ARR_NUM, ARR_DEB_DTE and MTF_CAT mostly filled.
    assert (lig["DCD_IND"] == "O").sum() > 0
    assert 0.03 < lig["ARR_NUM"].is_null().mean() < 0.2
    assert lig["ARR_DEB_DTE"].is_not_null().mean() > 0.75
    assert lig["MTF_CAT"].is_not_null().mean() > 0.8
    # Prolongations, some by a prescriber who is neither the initial one nor the MT.
    assert (lig["PRE_NAT"] == "P").mean() > 0.3
    assert (lig["PSP_SPE_COD"] == 1).mean() > 0.7 and lig["PSP_SPE_COD"].is_in([33, 14, 41]).any()
    # Daily amounts: maladie about 20–55 €, AT/MP higher, always ≤ 250.
    mal = lig.filter(
        (pl.col("RGO_ASU_NAT") == 10) & (pl.col("TPT_IND") == "N") & (pl.col("PRS_ACT_NBR") > 0)
    )
    assert 25 < mal["BSE_REM_PRU"].median() < 50 and mal["BSE_REM_PRU"].max() <= 53.31
    atmp_pru = lig.filter(pl.col("RGO_ASU_NAT") == 40)["BSE_REM_PRU"].median()
    assert atmp_pru > mal["BSE_REM_PRU"].median()


def test_multi_employer_cancellations_and_corrections(clean):
    _, _, lig, _ = clean
    key = ["BEN_NIR", "BEN_NIR_PSA", "EXE_SOI_DTD", "EXE_SOI_DTF"]
    # Second employer: dénombrement 0, same quantity as a counted line of the same period.
    zero = lig.filter(pl.col("PRS_ACT_NBR") == 0)
    assert zero.height > 200
    counted = lig.filter(pl.col("PRS_ACT_NBR") > 0).select(*key, pl.col("PRS_ACT_QTE").alias("q"))
    joined = zero.join(counted, on=key, how="left", nulls_equal=True)
    assert (joined["q"] == joined["PRS_ACT_QTE"]).all()
    assert (zero["IJR_EMP_NUM"].is_not_null()).all()
    # Cancellations: new LIG_NUM, negative; each period nets to zero with its original.
    neg = lig.filter(pl.col("PRS_ACT_NBR") < 0)
    assert neg.height > 50 and (neg["BSE_REM_MNT"] < 0).all()
    sums = (
        lig.filter(pl.col("PRS_ACT_NBR") != 0)
        .group_by(key)
        .agg(
            pl.col("PRS_ACT_NBR").sum(), pl.len(), (pl.col("PRS_ACT_NBR") < 0).any().alias("annule")
        )
    )
    cancelled = sums.filter(pl.col("annule"))
    # original + cancellation (= 0 days), plus sometimes a re-issued line (= the days again)
    assert cancelled.height == neg.height
    assert (cancelled.filter(pl.col("len") == 2)["PRS_ACT_NBR"] == 0).all()
    assert (cancelled.filter(pl.col("len") == 2).height > 0) and (
        cancelled.filter(pl.col("len") == 3).height > 0
    )
    # Corrections: same (ORG_AFF_COD, LIG_NUM) delivered again later with another amount.
    dup = lig.filter(pl.struct("ORG_AFF_COD", "LIG_NUM").is_duplicated()).sort(
        "LIG_NUM", "FLX_DIS_DTD"
    )
    assert dup.height > 100
    pairs = dup.group_by("ORG_AFF_COD", "LIG_NUM").agg(
        pl.col("FLX_DIS_DTD").n_unique().alias("n_flx"),
        pl.col("BSE_REM_MNT").n_unique().alias("n_mnt"),
    )
    assert (pairs["n_flx"] == 2).all() and (pairs["n_mnt"] == 2).mean() > 0.9


def test_atypical_prescribers_arrets_are_longer_than_their_peers(clean, reference):
    params, _, lig, _ = clean
    monde = build_monde(elsm_from_reference(reference, list(ELSM)), params.n_assures, params.graine)
    atyp = pl.DataFrame({"PFS_PRE_NUM": monde.pre_num, "atypique": monde.pre_atypique,
                         "spe": monde.pre_spe})  # fmt: skip
    initial = (
        lig.filter(
            (pl.col("PRE_NAT") == "I")
            & (pl.col("RGO_ASU_NAT") == 10)
            & pl.col("ARR_NUM").is_not_null()
        )
        .group_by("ARR_NUM")
        .agg(pl.col("PFS_PRE_NUM").first())
        .join(_arrets(lig).select("ARR_NUM", "jours"), on="ARR_NUM")
        .join(atyp, on="PFS_PRE_NUM")
        .filter(pl.col("spe") == 1)
    )
    per_gp = initial.group_by("PFS_PRE_NUM", "atypique").agg(pl.col("jours").mean(), pl.len())
    assert per_gp.filter(pl.col("atypique")).height >= 2
    means = per_gp.group_by("atypique").agg(pl.col("jours").median())
    ratio = (
        means.filter(pl.col("atypique"))["jours"][0] / means.filter(~pl.col("atypique"))["jours"][0]
    )
    assert ratio >= 2.0
    # Enough general practitioners with ≥ 20 patients a year for peers to exist.
    assert (per_gp["len"] >= 60).sum() >= 10


def test_actions_are_consistent_with_the_arrets(clean):
    _, _, lig, a = clean
    assert set(a["ACT_ACTEUR"].unique()) == {"TECH", "CSAM", "ISM", "MC"}
    convoc = a.filter(
        pl.col("ACT_TYP").is_in(["CONVOCATION", "INVITATION"]) & pl.col("ACT_RES").is_not_null()
    )
    assert 0.15 < (convoc["ACT_RES"] == "NON_HONORE").mean() < 0.35
    assert a["ACT_RES"].is_null().mean() > 0.05
    assert (a["ACT_RES"] == "REPRISE_FIXEE").sum() > 10
    pdp = a.filter(
        pl.col("ACT_TYP").is_in(
            ["COURRIER_PDP", "SIGNALEMENT_SST", "SIGNALEMENT_SSOC", "RDV_LIAISON"]
        )
        | (pl.col("ACT_RES") == "PDP_ENGAGEE")
    )
    assert pdp.height > 50
    # ARR_NUM of an action is an arrêt of the same assuré; long arrêts get more actions.
    ar = _arrets(lig)
    linked = a.filter(pl.col("ARR_NUM").is_not_null()).join(ar, on="ARR_NUM", how="left")
    assert linked["duree"].is_not_null().mean() > 0.97
    per = ar.join(
        a.group_by("ARR_NUM").agg(pl.len().alias("n")), on="ARR_NUM", how="left"
    ).with_columns(pl.col("n").fill_null(0))
    assert (
        per.filter(pl.col("duree") > 180)["n"].mean()
        > 3 * per.filter(pl.col("duree") < 30)["n"].mean()
    )
    # A return fixed by the médecin conseil is followed by the end of the arrêt soon after.
    rep = a.filter(pl.col("ACT_RES") == "REPRISE_FIXEE").join(ar, on="ARR_NUM")
    ended = rep.filter(pl.col("fin") < FIN - __import__("datetime").timedelta(days=60))
    assert ((ended["fin"] - ended["ACT_DTE"]).dt.total_days() <= 40).mean() > 0.9


# ------------------------------------------------------------------------------- defects


def test_defects_alter_exactly_the_counted_lines(reference, clean):
    _, _, base, base_a = clean
    _, lots, lig, a = _frames(reference, taux=0.03)
    manifest_ij = {}
    manifest_a = {}
    for lot in lots:
        for k, v in lot.defauts_ij.items():
            manifest_ij[k] = manifest_ij.get(k, 0) + v
        for k, v in lot.defauts_actions.items():
            manifest_a[k] = manifest_a.get(k, 0) + v
    assert set(manifest_ij) == set(REGLES_IJ) and set(manifest_a) == set(REGLES_ACTIONS)
    total = sum(manifest_ij.values())
    assert abs(total - 0.03 * base.height) < len(lots) + 1
    # Same generation, defects added: duplicates appended, other defects alter one line each.
    marked = lig["_defaut"].drop_nulls().value_counts()
    assert dict(zip(marked["_defaut"], marked["count"], strict=True)) == manifest_ij
    assert lig.height == base.height + manifest_ij["doublon"]
    cols = list(COLONNES_IJ)
    kept = lig.filter(pl.col("_defaut").is_null() | (pl.col("_defaut") != "doublon"))
    changed = pl.DataFrame([kept[c].ne_missing(base[c]) for c in cols]).select(
        pl.any_horizontal(pl.all())
    )
    altered = changed.to_series()
    assert altered.sum() == total - manifest_ij["doublon"]
    assert (altered == kept["_defaut"].is_not_null()).all()
    assert a.height == base_a.height + manifest_a["doublon"]


def test_written_sample_files_follow_the_contract(written):
    out, summary = written
    names = sorted(p.name for p in out.iterdir())
    assert "defauts.json" in names and "generation.json" in names
    ij = [p for p in out.iterdir() if p.name.startswith("ij_paiements_")]
    act = [p for p in out.iterdir() if p.name.startswith("actions_")]
    assert ij and act
    nightly = [p for p in ij if p.suffix == ".csv"]
    history = [p for p in ij if p.name.endswith(".csv.gz")]
    assert nightly and history
    # Nightly files: one per night and caisse, for the last 5 days only.
    assert {p.name.split("_")[3].split(".")[0] for p in nightly} <= {"311", "641", "821"}
    assert {p.name.split("_")[2] for p in nightly} <= {
        "20261027",
        "20261028",
        "20261029",
        "20261030",
    }
    for path in history[:3] + nightly[:2]:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            import gzip

            raw = gzip.decompress(raw)
        assert raw.startswith(b"LIG_NUM;FLX_DIS_DTD;ORG_AFF_COD;")
        assert b"\r\n" in raw
    # The file date is the max FLX_DIS_DTD of its lines; every file parses with the dialect
    # (apart from the lines with a text defect, which are what they are).
    total = 0
    for path in ij:
        flx = _flx_dates(path)
        total += len(flx)
        assert max(flx).strftime("%Y%m%d") == path.name.split("_")[2]
    assert total == summary.lignes_ij
    manifest = json.loads((out / "defauts.json").read_text(encoding="utf-8"))
    assert manifest == summary.defauts
    assert sum(manifest["ij_paiements"].values()) > 0


def _flx_dates(path: Path) -> list[date]:
    """FLX_DIS_DTD of every data line (second field; no defect touches it)."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        import gzip

        raw = gzip.decompress(raw)
    lines = raw.decode("cp1252").splitlines()[1:]
    return [date(int(x[6:10]), int(x[3:5]), int(x[0:2])) for x in (r.split(";")[1] for r in lines)]


def test_clean_csv_parses_with_the_contract_dialect(tmp_path, reference):
    params = Parametres(300, DEBUT, FIN, ELSM, graine=3)
    generate_sample(tmp_path, params, nuits=3)
    path = max(tmp_path.glob("ij_paiements_*_311.csv"), key=lambda p: p.stat().st_size)
    frame = _read_extract(path, COLONNES_IJ)
    assert frame.columns == list(COLONNES_IJ)
    pru = frame["BSE_REM_PRU"].cast(pl.Float64)  # decimal comma read as decimal
    assert pru.is_not_null().all() and (pru > 0).all()
    first_line = path.read_bytes().decode("cp1252").split("\r\n")[1].split(";")
    pru_text = first_line[COLONNES_IJ.index("BSE_REM_PRU")]
    assert "," in pru_text and "." not in pru_text
    assert first_line[COLONNES_IJ.index("EXE_SOI_DTD")][2] == "/"
    actions = _read_extract(next(tmp_path.glob("actions_*_31.csv")), COLONNES_ACTIONS)
    assert actions.columns == list(COLONNES_ACTIONS)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def digest(folder: Path, seed: int) -> str:
        params = Parametres(250, DEBUT, FIN, ELSM, graine=seed, taux_defauts=0.05)
        generate_sample(folder, params, nuits=3, compression=Compression.historique)
        h = hashlib.sha256()
        for p in sorted(folder.iterdir()):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        return h.hexdigest()

    a = digest(tmp_path / "a", 9)
    b = digest(tmp_path / "b", 9)
    c = digest(tmp_path / "c", 10)
    assert a == b
    assert a != c


def test_parquet_output_has_native_types_and_no_text_defects(tmp_path):
    params = Parametres(300, DEBUT, FIN, ELSM, graine=4, taux_defauts=0.05, texte=False)
    summary = generate_sample(tmp_path, params, fmt=Format.parquet, nuits=2)
    files = sorted(tmp_path.glob("ij_paiements_*.parquet"))
    assert files and all(p.suffix == ".parquet" for p in files)
    frame = pl.read_parquet(files[-1])
    assert frame.columns == list(COLONNES_IJ)
    assert frame.schema["EXE_SOI_DTD"] == pl.Date and frame.schema["BSE_REM_PRU"] == pl.Float64
    assert not set(REGLES_TEXTE) & set(summary.defauts["ij_paiements"])
    assert sum(summary.defauts["ij_paiements"].values()) > 0


def test_refuses_to_mix_with_an_earlier_run_and_unknown_elsm(tmp_path, reference):
    params = Parametres(50, DEBUT, FIN, ("82",), graine=1)
    generate_sample(tmp_path, params, nuits=0, encodage=Encodage.utf8)
    with pytest.raises(FileExistsError, match="--ecraser"):
        generate_sample(tmp_path, params, nuits=0)
    summary = generate_sample(tmp_path, params, nuits=0, ecraser=True)
    assert all("_821." in f or "_82." in f for f in summary.fichiers)
    from synthetic.population import ReferenceError

    with pytest.raises(ReferenceError, match="ZZ"):
        list(generer(Parametres(10, DEBUT, FIN, ("ZZ",)), reference))


def test_cli_sample_json_summary(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(
        app,
        ["sample", "--assures", "120", "--elsm", "82", "--seed", "2", "--defects", "0.05",
         "--nuits", "2", "--out", str(tmp_path / "s"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["assures"] == 120 and payload["lignes_ij"] > 500
    bad = CliRunner().invoke(app, ["sample", "--elsm", "XX", "--out", str(tmp_path / "t")])
    assert bad.exit_code == 1 and "ELSM inconnu" in bad.output


@pytest.mark.slow
def test_ingestion_quarantines_exactly_the_manifest(written, tmp_path, monkeypatch):
    """The ingestion validator's quarantine counts by rule equal ``defauts.json``."""
    import duckdb

    from flows.ingest import ingest_paths
    from flows.settings import DataPaths

    out, summary = written
    paths = DataPaths(tmp_path / "donnees")
    result = ingest_paths(paths, [out], b"cle-de-test")
    assert result.lignes_lues == summary.lignes_ij + summary.actions
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        rows = con.execute("select source, regles from quarantaine").fetchall()
    assert all(len(regles) == 1 for _, regles in rows)
    got: dict[str, dict[str, int]] = {"ij_paiements": {}, "actions": {}}
    for source, regles in rows:
        got[source][regles[0]] = got[source].get(regles[0], 0) + 1
    expected = {k: {r: n for r, n in v.items() if n} for k, v in summary.defauts.items()}
    assert got == expected


def test_text_defect_sentinels_become_impossible_dates_and_nothing_else():
    from synthetic.texte import remplacer_sentinelles

    clean = b"L1;30/10/2026;01/01/2019;N\r\n"
    assert remplacer_sentinelles(clean) is clean
    marked = b"L1;30/10/2026;01/01/1901;N\r\nL2;30/10/2026;02/01/1901;N;X\r\n"
    assert remplacer_sentinelles(marked) == (
        b"L1;30/10/2026;31/04/2025;N\r\nL2;30/10/2026;30/02/2024;N;X\r\n"
    )

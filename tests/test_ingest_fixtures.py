"""Hand-written extract lines shared by the ingestion tests (no tests here).

``ij_line(**changes)`` is one valid ``ij_paiements`` line as a dict of column → text;
``csv_text(rows)`` writes rows in the contract's dialect (``;``, header, JJ/MM/AAAA).
"""

from __future__ import annotations

import hashlib
import hmac

IJ_HEADER = [
    "LIG_NUM", "FLX_DIS_DTD", "ORG_AFF_COD", "BEN_NIR", "BEN_NIR_PSA", "BEN_RNG_GEM",
    "BEN_SEX_COD", "BEN_NAI_ANN", "BEN_RES_DPT", "RGO_ASU_NAT", "ATT_NAT", "PRS_NAT_REF",
    "ARR_NUM", "ARR_DEB_DTE", "PRE_NAT", "PRE_PRE_DTD", "PRE_FIN_DTE", "PFS_PRE_NUM",
    "PSP_SPE_COD", "PRS_MTT_NUM", "IJR_EMP_NUM", "EXE_SOI_DTD", "EXE_SOI_DTF", "PRS_ACT_NBR",
    "PRS_ACT_QTE", "BSE_REM_PRU", "BSE_REM_MNT", "TPT_IND", "ALD_IND", "MTF_CAT", "DCD_IND",
]  # fmt: skip

ACTIONS_HEADER = [
    "ACT_NUM", "FLX_DIS_DTD", "ELSM", "DOSSIER_ID", "ORG_AFF_COD", "BEN_NIR", "BEN_NIR_PSA",
    "BEN_RNG_GEM", "ARR_NUM", "ACT_DTE", "ACT_ACTEUR", "ACT_TYP", "ACT_RES",
]  # fmt: skip

TEST_KEY = b"cle-de-test"


def nir(body: str) -> str:
    """A 13-character NIR body with its correct 2-digit key (2A → 19, 2B → 18)."""
    digits = body[:5] + body[5:7].replace("2A", "19").replace("2B", "18") + body[7:]
    return body + f"{97 - int(digits) % 97:02d}"


NIR_1 = nir("1850775123456")  # man born 1985
NIR_2 = nir("2900631555001")  # woman born 1990
NIR_CORSE = nir("292062A123456")  # woman born 1992, Corse-du-Sud


def expected_id(nir_value: str, rang: str = "1", key: bytes = TEST_KEY) -> str:
    return hmac.new(key, (nir_value + rang).encode(), hashlib.sha256).hexdigest()[:32]


def ij_line(**changes: str | None) -> dict[str, str | None]:
    """One valid IJ payment line (30 days at 41,47 €), with ``changes`` applied."""
    row: dict[str, str | None] = {
        "LIG_NUM": "L0001",
        "FLX_DIS_DTD": "15/03/2024",
        "ORG_AFF_COD": "311",
        "BEN_NIR": NIR_1,
        "BEN_NIR_PSA": None,
        "BEN_RNG_GEM": "1",
        "BEN_SEX_COD": "1",
        "BEN_NAI_ANN": "1985",
        "BEN_RES_DPT": "031",
        "RGO_ASU_NAT": "10",
        "ATT_NAT": None,
        "PRS_NAT_REF": "6111",
        "ARR_NUM": "A0001",
        "ARR_DEB_DTE": "01/02/2024",
        "PRE_NAT": "P",
        "PRE_PRE_DTD": "28/02/2024",
        "PRE_FIN_DTE": "31/03/2024",
        "PFS_PRE_NUM": "10001234567",
        "PSP_SPE_COD": "1",
        "PRS_MTT_NUM": "10007654321",
        "IJR_EMP_NUM": "12345678900011",
        "EXE_SOI_DTD": "01/02/2024",
        "EXE_SOI_DTF": "01/03/2024",
        "PRS_ACT_NBR": "30",
        "PRS_ACT_QTE": "30",
        "BSE_REM_PRU": "41,47",
        "BSE_REM_MNT": "1244,10",
        "TPT_IND": "N",
        "ALD_IND": "N",
        "MTF_CAT": "RHU",
        "DCD_IND": "N",
    }
    row.update(changes)
    return row


def action_line(**changes: str | None) -> dict[str, str | None]:
    """One valid action line, with ``changes`` applied."""
    row: dict[str, str | None] = {
        "ACT_NUM": "ACT0001",
        "FLX_DIS_DTD": "15/03/2024",
        "ELSM": "31",
        "DOSSIER_ID": None,
        "ORG_AFF_COD": "311",
        "BEN_NIR": NIR_1,
        "BEN_NIR_PSA": None,
        "BEN_RNG_GEM": "1",
        "ARR_NUM": "A0001",
        "ACT_DTE": "10/03/2024",
        "ACT_ACTEUR": "MC",
        "ACT_TYP": "CONVOCATION",
        "ACT_RES": "ARRET_JUSTIFIE",
    }
    row.update(changes)
    return row


def csv_text(rows: list[dict], header: list[str] | None = None, eol: str = "\n") -> str:
    """Rows in the contract's CSV dialect: header line, ``;``, empty field = null."""
    header = header or list(rows[0])
    lines = [";".join(header)]
    lines += [";".join("" if r.get(c) is None else str(r[c]) for c in header) for r in rows]
    return eol.join(lines) + eol


def checked_variants() -> list[dict[str, str | None]]:
    """Lines that exercise typing: a clean one, then invalid dates and codes, ISO date,
    negative amounts with a point, out-of-range and missing values, an int with a decimal
    part and a short date (the rule checks compare paths on them)."""
    return [
        ij_line(LIG_NUM="L1"),
        ij_line(LIG_NUM="L2", EXE_SOI_DTF="30/02/2024", BEN_RNG_GEM="0", BSE_REM_PRU="41,4x"),
        ij_line(LIG_NUM="L3", FLX_DIS_DTD="2024-03-15", PRS_ACT_NBR="-30", BSE_REM_MNT="-1244.1"),
        ij_line(LIG_NUM="L4", BEN_NAI_ANN="1850", PSP_SPE_COD=None, ATT_NAT="9"),
        ij_line(LIG_NUM="L5", PRS_NAT_REF="6111.0", ARR_DEB_DTE="1/2/2024"),
    ]

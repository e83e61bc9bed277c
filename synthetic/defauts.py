"""Contract defects injected on purpose, one rule per defective line.

``injecter_ij`` / ``injecter_actions`` take a chunk's typed frame and return it with a share
of its lines altered so that each breaks **exactly one** line-level rule of
``docs/regles.md`` (file-level rules ``encodage`` and ``entete`` excepted), plus a ``_defaut``
column naming that rule (null on clean lines). ``doublon`` lines are exact copies of a clean
line appended after the chunk's lines.

Two rules can only exist in text (CSV): ``nombre_champs`` (one field too many) and
``date_invalide`` (a date that is not in the calendar). They are carried by sentinels that
the CSV writer turns into text (see ``synthetic.texte``). In Parquet they are not injected.

Every alteration is chosen so that the rules depending on the altered value still hold
(e.g. a wrong NIR key keeps the sex and year digits; a period made longer than 31 days keeps
quantity, dénombrement and amount consistent; a reversed period is only made on lines with
PRS_ACT_NBR ≤ 0, where the quantity rule does not apply).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from synthetic.nir import nir_key
from synthetic.texte import CHAMP_EN_TROP, DATES_SENTINELLES

REGLES_IJ = (
    "nombre_champs", "champ_obligatoire", "format_invalide", "date_invalide",
    "date_hors_plage", "fin_prescrite", "nir_exclusif", "nir_format", "nir_cle", "nir_sexe",
    "nir_annee", "periode_ordre", "periode_duree", "debut_arret_ordre", "quantite_periode",
    "denombrement_quantite", "signe_montant", "montant_coherent", "prix_unitaire",
    "code_inconnu", "organisme_inconnu", "doublon",
)  # fmt: skip
REGLES_ACTIONS = (
    "nombre_champs", "champ_obligatoire", "format_invalide", "date_invalide",
    "date_hors_plage", "nir_exclusif", "nir_format", "nir_cle", "code_inconnu",
    "elsm_inconnu", "organisme_inconnu", "doublon",
)  # fmt: skip
REGLES_TEXTE = ("nombre_champs", "date_invalide")


def _np(frame: pl.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy()


def _days(frame: pl.DataFrame, col: str) -> np.ndarray:
    """Date column as days since epoch, -1 for null."""
    return frame[col].cast(pl.Int32).fill_null(-1).to_numpy().astype(np.int64)


def _allocate(
    rng: np.random.Generator,
    n: int,
    taux: float,
    regles: tuple[str, ...],
    eligible: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Row indices per rule: ``round(taux × n)`` defects spread evenly over the rules,
    each on a distinct line eligible for it; ``doublon`` sources are left clean."""
    total = round(taux * n)
    if total == 0 or n == 0:
        return {}
    # Even split (every rule present as soon as there are enough lines), remainder at random.
    wanted = np.full(len(regles), total // len(regles))
    wanted[rng.choice(len(regles), total % len(regles), replace=False)] += 1
    used = np.zeros(n, dtype=bool)
    chosen = {}
    for regle, k in zip(regles, wanted, strict=True):
        free = np.flatnonzero(eligible.get(regle, np.ones(n, dtype=bool)) & ~used)
        k = min(int(k), free.size)
        if k == 0:
            continue
        idx = np.sort(rng.choice(free, k, replace=False))
        used[idx] = True
        chosen[regle] = idx
    return chosen


def _mask(n: int, idx: np.ndarray) -> pl.Series:
    m = np.zeros(n, dtype=bool)
    m[idx] = True
    return pl.Series(m)


def _split(rng: np.random.Generator, idx: np.ndarray, parts: int) -> list[np.ndarray]:
    """Spread rows over ``parts`` variants of a defect."""
    which = rng.integers(0, parts, idx.size)
    return [idx[which == p] for p in range(parts)]


def _set(frame: pl.DataFrame, idx: np.ndarray, col: str, value) -> pl.DataFrame:
    """``frame`` with ``col`` replaced by ``value`` (expr, literal or array) on rows ``idx``."""
    if idx.size == 0:
        return frame
    mask = _mask(frame.height, idx)
    if isinstance(value, np.ndarray):
        full = np.zeros(frame.height, dtype=value.dtype)
        full[idx] = value
        value = pl.Series(full)
        if frame.schema[col] == pl.Date:
            value = value.cast(pl.Int32).cast(pl.Date)
    elif not isinstance(value, pl.Expr):
        value = pl.lit(value, dtype=frame.schema[col]) if value is not None else pl.lit(None)
    return frame.with_columns(
        pl.when(mask).then(value).otherwise(pl.col(col)).cast(frame.schema[col]).alias(col)
    )


def _nir_alter(frame: pl.DataFrame, idx: np.ndarray, how: Callable[[np.ndarray], np.ndarray]):
    if idx.size == 0:
        return frame
    nirs = np.asarray(frame["BEN_NIR"].gather(idx).to_list(), dtype=str)
    return _set(frame, idx, "BEN_NIR", pl.Series(_scatter(frame.height, idx, how(nirs))))


def _scatter(n: int, idx: np.ndarray, values: np.ndarray) -> list:
    out: list = [None] * n
    for i, v in zip(idx.tolist(), values.tolist(), strict=True):  # only defective rows
        out[i] = v
    return out


def _bad_key(nirs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same 13 characters, a valid-looking but wrong 2-digit key."""
    body = np.char.replace(np.char.replace(np.char.ljust(nirs, 15), "2A", "19"), "2B", "18")
    number = np.array([int(b[:13]) for b in body.tolist()], dtype=np.int64)
    key = nir_key(number)
    wrong = (key - 1 + rng.integers(1, 97, key.size)) % 97 + 1
    heads = np.array([x[:13] for x in nirs.tolist()])
    return np.char.add(heads, np.char.zfill(wrong.astype(str), 2))


def _marks(frame: pl.DataFrame, chosen: dict[str, np.ndarray]) -> pl.DataFrame:
    """``frame`` with ``_defaut``: the rule of each defective row, null elsewhere."""
    names = list(chosen)
    code = np.full(frame.height, len(names), dtype=np.int64)
    for k, regle in enumerate(names):
        code[chosen[regle]] = k
    labels = pl.Series("_defaut", [*names, None], dtype=pl.String)
    return frame.with_columns(labels.gather(code))


def _finish(f: pl.DataFrame, chosen: dict[str, np.ndarray]):
    """Mark the rules and append the duplicates (copies of clean rows) at the end; count."""
    src = chosen.pop("doublon", np.zeros(0, dtype=np.int64))
    f = _marks(f, chosen)
    if src.size:
        f = pl.concat([f, f[src].with_columns(pl.lit("doublon").alias("_defaut"))])
    return f, _counts(f)


def _texte(f: pl.DataFrame, rng, g, empty, date_cols: dict[int, str], last_col: str):
    """Text-only defects through their sentinels (see ``synthetic.texte``)."""
    sentinels = np.array(list(DATES_SENTINELLES), dtype="datetime64[D]").astype(np.int64)
    by_col: dict[str, list[int]] = {}
    for i, col in date_cols.items():
        by_col.setdefault(col, []).append(i)
    for col, rows in by_col.items():
        idx = np.array(rows, dtype=np.int64)
        f = _set(f, idx, col, sentinels[rng.integers(0, sentinels.size, idx.size)])
    return _set(f, g("nombre_champs", empty), last_col,
                pl.col(last_col).fill_null("") + CHAMP_EN_TROP)  # fmt: skip


def _counts(frame: pl.DataFrame) -> dict[str, int]:
    vc = frame["_defaut"].drop_nulls().value_counts()
    return dict(zip(vc["_defaut"].to_list(), vc["count"].to_list(), strict=True))


def injecter_ij(
    lignes: pl.DataFrame,
    taux: float,
    rng: np.random.Generator,
    texte: bool,
    organisme_inconnu: str,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Payment lines with ``taux`` of them carrying one contract defect each.

    Returns the frame (plus ``_defaut``) and the count of defects per rule.
    """
    n = lignes.height
    regles = tuple(r for r in REGLES_IJ if texte or r not in REGLES_TEXTE)
    nbr = _np(lignes, "PRS_ACT_NBR")
    dtd, dtf = _days(lignes, "EXE_SOI_DTD"), _days(lignes, "EXE_SOI_DTF")
    deb, flx = _days(lignes, "ARR_DEB_DTE"), _days(lignes, "FLX_DIS_DTD")
    fin = _days(lignes, "PRE_FIN_DTE")
    has_nir = lignes["BEN_NIR"].is_not_null().to_numpy()
    eligible = {
        "nir_format": has_nir,
        "nir_cle": has_nir,
        "nir_sexe": has_nir,
        "nir_annee": has_nir,
        "periode_ordre": (nbr <= 0) & (dtf > dtd),
        "periode_duree": (nbr > 0) & ((deb < 0) | (dtf - deb >= 45)),
        "debut_arret_ordre": dtf > dtd,
        "quantite_periode": nbr > 0,
        "denombrement_quantite": nbr > 0,
        "signe_montant": nbr > 0,
        "montant_coherent": nbr > 0,
        "prix_unitaire": nbr > 0,
    }
    chosen = _allocate(rng, n, taux, regles, eligible)
    f = lignes
    g = chosen.get
    empty = np.zeros(0, dtype=np.int64)

    a, b = _split(rng, g("champ_obligatoire", empty), 2)
    f = _set(f, a, "PFS_PRE_NUM", None)
    f = _set(f, b, "BEN_RES_DPT", None)

    idx = g("format_invalide", empty)
    has_emp = f["IJR_EMP_NUM"].is_not_null().to_numpy()
    a, b, c, d = _split(rng, idx, 4)
    c_emp, c_lig = c[has_emp[c]], c[~has_emp[c]]
    f = _set(f, a, "BEN_RES_DPT", pl.col("BEN_RES_DPT") + "0")
    f = _set(f, b, "PFS_PRE_NUM", pl.col("PFS_PRE_NUM").str.slice(0, 10))
    f = _set(f, c_emp, "IJR_EMP_NUM", pl.col("IJR_EMP_NUM").str.slice(0, 13))
    f = _set(f, np.r_[d, c_lig], "LIG_NUM", pl.lit("X" * 18) + pl.col("LIG_NUM"))

    dates = {i: "ARR_DEB_DTE" if deb[i] >= 0 else "PRE_PRE_DTD"
             for i in g("date_invalide", empty).tolist()}  # fmt: skip
    f = _texte(f, rng, g, empty, dates, "DCD_IND")

    a, b = _split(rng, g("date_hors_plage", empty), 2)
    b_ok = b[fin[b] > flx[b] + 1]
    a = np.sort(np.r_[a, b[fin[b] <= flx[b] + 1]])
    old = rng.integers(10227, 10956, a.size)  # 1998-01-01 .. 1999-12-31
    f = _set(f, a, "ARR_DEB_DTE", old)
    f = _set(f, b_ok, "PRE_PRE_DTD", pl.col("FLX_DIS_DTD") + pl.duration(days=1))

    a, b = _split(rng, g("fin_prescrite", empty), 2)
    f = _set(f, a, "PRE_FIN_DTE", pl.col("PRE_PRE_DTD") - pl.duration(days=3))
    f = _set(f, b, "PRE_FIN_DTE", pl.col("PRE_PRE_DTD") + pl.duration(days=1200))

    idx = g("nir_exclusif", empty)
    a, b = idx[has_nir[idx]], idx[~has_nir[idx]]
    f = _set(f, a, "BEN_NIR_PSA", pl.lit("P") + pl.col("LIG_NUM").str.zfill(16))
    f = _set(f, b, "BEN_NIR_PSA", None)
    f = _nir_alter(f, g("nir_format", empty), lambda x: np.array([s[:14] for s in x.tolist()]))
    f = _nir_alter(f, g("nir_cle", empty), lambda x: _bad_key(x, rng))
    f = _set(f, g("nir_sexe", empty), "BEN_SEX_COD", 3 - pl.col("BEN_SEX_COD"))
    f = _set(f, g("nir_annee", empty), "BEN_NAI_ANN", pl.col("BEN_NAI_ANN") + 1)

    idx = g("periode_ordre", empty)
    f = _set(f, idx, "EXE_SOI_DTD", dtf[idx]) if idx.size else f
    f = _set(f, idx, "EXE_SOI_DTF", dtd[idx]) if idx.size else f

    idx = g("periode_duree", empty)
    if idx.size:
        length = rng.integers(32, 41, idx.size)
        f = _set(f, idx, "EXE_SOI_DTD", dtf[idx] - length + 1)
        f = _set(f, idx, "PRS_ACT_QTE", length.astype(np.int32))
        f = _set(f, idx, "PRS_ACT_NBR", length.astype(np.int32))
        f = _set(f, idx, "BSE_REM_MNT", (pl.col("PRS_ACT_QTE") * pl.col("BSE_REM_PRU")).round(2))

    f = _set(f, g("debut_arret_ordre", empty), "ARR_DEB_DTE",
             pl.col("EXE_SOI_DTD") + pl.duration(days=1))  # fmt: skip
    idx = g("quantite_periode", empty)
    f = _set(f, idx, "PRS_ACT_QTE", pl.col("PRS_ACT_QTE") + 1)
    f = _set(f, idx, "BSE_REM_MNT", (pl.col("PRS_ACT_QTE") * pl.col("BSE_REM_PRU")).round(2))
    f = _set(f, g("denombrement_quantite", empty), "PRS_ACT_NBR", pl.col("PRS_ACT_QTE") + 1)
    f = _set(f, g("signe_montant", empty), "BSE_REM_MNT", -pl.col("BSE_REM_MNT"))
    idx = g("montant_coherent", empty)
    f = _set(
        f,
        idx,
        "BSE_REM_MNT",
        pl.col("BSE_REM_MNT") + pl.Series(np.round(5 + rng.random(n) * 45, 2)),
    )
    idx = g("prix_unitaire", empty)
    f = _set(f, idx, "BSE_REM_PRU", np.round(rng.uniform(251, 400, n), 2)[idx])
    f = _set(f, idx, "BSE_REM_MNT", (pl.col("PRS_ACT_QTE") * pl.col("BSE_REM_PRU")).round(2))

    parts = _split(rng, g("code_inconnu", empty), 8)
    f = _set(f, parts[0], "PRE_NAT", "X")
    f = _set(f, parts[1], "TPT_IND", "Z")
    f = _set(f, parts[2], "ALD_IND", "Z")
    f = _set(f, parts[3], "DCD_IND", "Z")
    f = _set(f, parts[4], "MTF_CAT", "XYZ")
    f = _set(f, parts[5], "RGO_ASU_NAT", 55)
    f = _set(f, parts[6], "PRS_NAT_REF", 6199)
    f = _set(f, parts[7], "ATT_NAT", 9)
    f = _set(f, g("organisme_inconnu", empty), "ORG_AFF_COD", organisme_inconnu)

    return _finish(f, chosen)


def injecter_actions(
    actions: pl.DataFrame,
    taux: float,
    rng: np.random.Generator,
    texte: bool,
    organisme_inconnu: str,
    elsm_inconnu: str,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Actions with ``taux`` of them carrying one contract defect each (see module doc)."""
    n = actions.height
    regles = tuple(r for r in REGLES_ACTIONS if texte or r not in REGLES_TEXTE)
    has_nir = actions["BEN_NIR"].is_not_null().to_numpy()
    eligible = {"nir_format": has_nir, "nir_cle": has_nir}
    chosen = _allocate(rng, n, taux, regles, eligible)
    f = actions
    g = chosen.get
    empty = np.zeros(0, dtype=np.int64)
    a, b = _split(rng, g("champ_obligatoire", empty), 2)
    f = _set(f, a, "ACT_ACTEUR", None)
    f = _set(f, b, "ACT_TYP", None)
    a, b = _split(rng, g("format_invalide", empty), 2)
    f = _set(f, a, "ACT_NUM", pl.lit("X" * 20) + pl.col("ACT_NUM"))
    f = _set(f, b, "BEN_RNG_GEM", 0)
    a, b = _split(rng, g("date_hors_plage", empty), 2)
    f = _set(f, a, "ACT_DTE", pl.col("FLX_DIS_DTD") + pl.duration(days=3))
    f = _set(f, b, "ACT_DTE", rng.integers(10227, 10956, b.size))
    idx = g("nir_exclusif", empty)
    a, b = idx[has_nir[idx]], idx[~has_nir[idx]]
    f = _set(
        f, a, "BEN_NIR_PSA", pl.lit("P") + pl.col("ACT_NUM").str.replace("-", "0").str.zfill(16)
    )
    f = _set(f, b, "BEN_NIR_PSA", None)
    f = _nir_alter(f, g("nir_format", empty), lambda x: np.array([s[:14] for s in x.tolist()]))
    f = _nir_alter(f, g("nir_cle", empty), lambda x: _bad_key(x, rng))
    a, b, c = _split(rng, g("code_inconnu", empty), 3)
    f = _set(f, a, "ACT_TYP", "VISITE_DOMICILE")
    f = _set(f, b, "ACT_RES", "ACCEPTE")
    f = _set(f, c, "ACT_ACTEUR", "DIRECTEUR")
    f = _set(f, g("elsm_inconnu", empty), "ELSM", elsm_inconnu)
    f = _set(f, g("organisme_inconnu", empty), "ORG_AFF_COD", organisme_inconnu)
    f = _texte(f, rng, g, empty, dict.fromkeys(g("date_invalide", empty).tolist(), "ACT_DTE"),
               "ACT_RES")  # fmt: skip
    return _finish(f, chosen)

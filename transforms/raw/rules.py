"""The quarantine rules of ``docs/regles.md`` as Polars expressions.

Input grain: one row per record (see :mod:`transforms.raw.parsing`) with one String column
per contract column. :func:`check_records` adds the typed values (``_v_<COL>``), one
Boolean column per rule (``r_<rule>``, never null) and ``rejete``. A value that fails to
parse gets ``format_invalide`` / ``date_invalide`` and the rules that depend on it are not
evaluated (its typed value is null); ``nombre_champs`` stops every other rule.
:func:`flag_doublons` adds ``doublon``; :func:`rejection_details` builds, for rejected rows,
the list of rules and the French detail message.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from dataclasses import dataclass

import polars as pl

from transforms.raw.schema import ColumnSpec, Kind, References, SourceSpec

MIN_DATE = dt.date(2000, 1, 1)
MAX_PERIOD_DAYS = 31
MONTANT_TOLERANCE_CENTS = 100
PRU_MAX_CENTS = 25_000
PRESCRIPTION_MAX = "3y"

_INT_RE = r"^[+-]?[0-9]{1,10}$"
_DEC_RE = r"^[+-]?[0-9]{1,10}([.,][0-9]{1,2})?$"
_DATE_RE = r"^([0-9]{2}/[0-9]{2}/[0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2})$"
# 13 characters (sex, year, month, département incl. 2A/2B, commune, order) + 2-digit key.
NIR_RE = r"^[12][0-9]{2}(0[1-9]|1[0-2]|[2-9][0-9])(2A|2B|[0-9]{2})[0-9]{6}[0-9]{2}$"


def v(name: str) -> str:
    """Name of the typed value column of input column ``name``."""
    return f"_v_{name}"


def rule_col(rule: str) -> str:
    return f"r_{rule}"


def _raw(name: str) -> pl.Expr:
    return pl.col(name)


def _parse_expr(c: ColumnSpec, raw: pl.Expr) -> pl.Expr:
    """Typed value of column ``c`` from its text (null when missing or unreadable).

    Int64 for integers (in their range), Date, Int64 cents for decimals, String for text
    (null when its length or pattern is wrong).
    """
    if c.kind is Kind.INT:
        value = pl.when(raw.str.contains(_INT_RE)).then(raw.cast(pl.Int64, strict=False))
        if c.int_min is not None:
            value = pl.when(value.is_between(c.int_min, c.int_max)).then(value)
        return value
    if c.kind is Kind.DEC:
        norm = raw.str.replace(",", ".", literal=True)
        cents = (norm.cast(pl.Float64, strict=False) * 100).round(0).cast(pl.Int64)
        return pl.when(raw.str.contains(_DEC_RE)).then(cents)
    if c.kind is Kind.DATE:
        iso = (
            pl.when(raw.str.contains("/", literal=True))
            .then(
                pl.concat_str(
                    raw.str.slice(6, 4), raw.str.slice(3, 2), raw.str.slice(0, 2), separator="-"
                )
            )
            .otherwise(raw)
        )
        return pl.when(raw.str.contains(_DATE_RE)).then(iso.str.to_date("%Y-%m-%d", strict=False))
    if c.kind is Kind.STR:
        n = raw.str.len_chars()
        bad = pl.lit(False)
        if c.max_len is not None:
            bad = bad | (n > c.max_len)
        if c.exact_len is not None:
            bad = bad | (n != c.exact_len)
        if c.regex is not None:
            bad = bad | ~raw.str.contains(c.regex)
        return pl.when(~bad).then(raw)
    return raw  # NIR: its own rules


DISTINCT_PARSE_MIN_ROWS = 20_000


def _few_values(c: ColumnSpec) -> bool:
    return c.kind in (Kind.INT, Kind.DATE) or c.low_cardinality


# Largest number of distinct texts a column's category mapping may hold before it starts
# afresh (a long-running process meeting many malformed values).
MAX_CATEGORIES = 1_000_000


@dataclass
class _ParsedCategories:
    """The texts of one column seen by this process, as a Polars category mapping (codes are
    stable, the mapping only grows), and their typed values, parsed once each."""

    categories: pl.Categories
    parsed: pl.Series
    # Polars frees a mapping no Series refers to (codes would then restart at 0): an empty
    # Series of this dtype keeps it alive as long as this state.
    keeper: pl.Series


_PARSED: dict[ColumnSpec, _ParsedCategories] = {}
_PARSED_LOCK = threading.Lock()


def _state(c: ColumnSpec) -> _ParsedCategories:
    state = _PARSED.get(c)
    if state is None or state.parsed.len() > MAX_CATEGORIES:
        categories = pl.Categories.random()
        state = _ParsedCategories(
            categories,
            pl.Series([], dtype=pl.Null),
            pl.Series([], dtype=pl.Categorical(categories)),
        )
        _PARSED[c] = state
    return state


def _new_texts(texts: pl.Series, code: pl.Series, st: _ParsedCategories) -> pl.Series | None:
    """The texts of ``texts`` (coded ``code`` in ``st``'s mapping) not parsed yet, by code;
    None when there are none.

    Codes are given in order of first sight: the new ones are the codes from
    ``st.parsed.len()`` on, taken from the chunk itself. Were some of them absent from the
    chunk (an earlier chunk coded, then failed before parsing), the mapping's whole list is
    read instead (a Python loop over every category: kept for that case).
    """
    done = st.parsed.len()
    fresh = code >= done
    if not fresh.any():
        return None
    new = pl.DataFrame({"code": code, "texte": texts}).filter(fresh).unique("code").sort("code")
    if new.height == new.get_column("code").max() - done + 1:
        return new.get_column("texte")
    return st.categories.to_series().slice(done)


def _parse_distinct_columns(frame: pl.DataFrame, columns: list[ColumnSpec]) -> list[pl.Series]:
    """Typed values of columns with few distinct texts (dates, integers, daily amounts):
    each column's texts are coded against its category mapping (one hash per row), the
    texts never met before by this process are parsed (all columns in one evaluation: the
    fixed cost of an evaluation is paid once per chunk) and typed values gathered by code."""
    with _PARSED_LOCK:
        states = [_state(c) for c in columns]
        codes = [
            frame.get_column(c.name).cast(pl.Categorical(st.categories)).to_physical()
            for c, st in zip(columns, states, strict=True)
        ]
        new = {}  # column → (its state, its texts not parsed yet, in code order)
        for c, st, code in zip(columns, states, codes, strict=True):
            texts = _new_texts(frame.get_column(c.name), code, st)
            if texts is not None:
                new[c] = (st, texts)
        if new:
            width = max(s.len() for _, s in new.values())
            padded = pl.DataFrame(
                {c.name: s.extend_constant(None, width - s.len()) for c, (_, s) in new.items()}
            )
            parsed = padded.select(_parse_expr(c, pl.col(c.name)).alias(c.name) for c in new)
            for c, (st, s) in new.items():
                typed = parsed.get_column(c.name).head(s.len())
                st.parsed = typed if st.parsed.len() == 0 else st.parsed.append(typed)
        return [
            st.parsed.gather(code).alias(v(c.name))
            for c, st, code in zip(columns, states, codes, strict=True)
        ]


def typed_values(frame: pl.DataFrame, spec: SourceSpec) -> pl.DataFrame:
    """Add ``_v_<COL>`` (typed value) and ``_f_<COL>`` (format_invalide) or ``_d_<COL>``
    (date_invalide: text present, no date) for every contract column.

    A ``_v_<COL>`` already there (typed while reading, see
    :func:`transforms.raw.parsing.read_plain_block`) is kept. On large chunks, columns with
    few distinct values are parsed per distinct text; small chunks parse everything in one
    pass (fixed costs dominate there).
    """
    large = frame.height >= DISTINCT_PARSE_MIN_ROWS
    todo = [c for c in spec.columns if v(c.name) not in frame.columns]  # read typed: kept
    by_distinct = [c for c in todo if large and _few_values(c)]
    direct = [c for c in todo if c not in by_distinct]
    frame = frame.with_columns(_parse_expr(c, pl.col(c.name)).alias(v(c.name)) for c in direct)
    if by_distinct:
        frame = frame.with_columns(_parse_distinct_columns(frame, by_distinct))
    flags = []
    for c in spec.columns:
        if c.kind is Kind.NIR:
            continue
        prefix = "_d_" if c.kind is Kind.DATE else "_f_"
        flags.append(
            (pl.col(c.name).is_not_null() & pl.col(v(c.name)).is_null()).alias(prefix + c.name)
        )
    return frame.with_columns(flags)


def _codes_expr(spec: SourceSpec, refs: References) -> list[tuple[str, pl.Expr]]:
    out = []
    for c in spec.columns:
        codes = (
            c.codes
            if c.codes is not None
            else (getattr(refs, c.reference) if c.reference else None)
        )
        if codes is None:
            continue
        values = sorted(codes)
        out.append((c.name, pl.col(v(c.name)).is_not_null() & ~pl.col(v(c.name)).is_in(values)))
    return out


def _flags(spec: SourceSpec, refs: References, n_fields: int) -> dict[str, pl.Expr]:
    """One Boolean expression per rule (before ``doublon``), over the typed frame."""
    names = set(spec.names)
    bad_count = pl.col("nb_champs") != n_fields
    f: dict[str, pl.Expr] = {"nombre_champs": bad_count}

    req = [c.name for c in spec.columns if c.required]
    f["champ_obligatoire"] = pl.any_horizontal([_raw(c).is_null() for c in req])
    f["format_invalide"] = pl.any_horizontal(
        [pl.col(f"_f_{c.name}") for c in spec.columns if c.kind in (Kind.INT, Kind.DEC, Kind.STR)]
    )
    dates = [c for c in spec.columns if c.kind is Kind.DATE]
    f["date_invalide"] = pl.any_horizontal([pl.col(f"_d_{c.name}") for c in dates])
    flx = pl.col(v("FLX_DIS_DTD"))
    f["date_hors_plage"] = pl.any_horizontal(
        [
            (pl.col(v(c.name)) < MIN_DATE) | (pl.col(v(c.name)) > flx)
            for c in dates
            if c.date_in_range
        ]
    )
    nir, psa = _raw("BEN_NIR"), _raw("BEN_NIR_PSA")
    f["nir_exclusif"] = nir.is_null() == psa.is_null()
    # _nir_* columns: see nir_columns (the 13 characters as a number, 2A/2B as 19/18).
    fmt_ok, n13 = pl.col("_nir_ok"), pl.col("_nir_n13")
    f["nir_format"] = nir.is_not_null() & ~fmt_ok
    f["nir_cle"] = fmt_ok & (pl.col("_nir_cle") != 97 - n13 % 97)
    if "nir_sexe" in spec.rules:
        sex = pl.col(v("BEN_SEX_COD"))
        f["nir_sexe"] = fmt_ok & sex.is_in([1, 2]) & (n13 // 10**12 != sex)
        f["nir_annee"] = fmt_ok & ((n13 // 10**10) % 100 != pl.col(v("BEN_NAI_ANN")) % 100)
    if "fin_prescrite" in spec.rules:
        pre, fin = pl.col(v("PRE_PRE_DTD")), pl.col(v("PRE_FIN_DTE"))
        f["fin_prescrite"] = (fin < pre) | (fin > pl.col("_pre_max"))
        dtd, dtf = pl.col(v("EXE_SOI_DTD")), pl.col(v("EXE_SOI_DTF"))
        days = (dtf - dtd).dt.total_days()
        nbr, qte = pl.col(v("PRS_ACT_NBR")), pl.col(v("PRS_ACT_QTE"))
        pru, mnt = pl.col(v("BSE_REM_PRU")), pl.col(v("BSE_REM_MNT"))
        f["periode_ordre"] = dtd > dtf
        f["periode_duree"] = days >= MAX_PERIOD_DAYS
        f["debut_arret_ordre"] = pl.col(v("ARR_DEB_DTE")) > dtd
        f["quantite_periode"] = (nbr > 0) & (qte != days + 1)
        f["denombrement_quantite"] = nbr.abs() > qte
        f["signe_montant"] = ((nbr > 0) & (mnt < 0)) | ((nbr < 0) & (mnt > 0))
        f["montant_coherent"] = (nbr != 0) & (
            (mnt.abs() - qte * pru).abs() > MONTANT_TOLERANCE_CENTS
        )
        f["prix_unitaire"] = (pru < 0) | (pru > PRU_MAX_CENTS)
    codes = _codes_expr(spec, refs)
    f["code_inconnu"] = pl.any_horizontal([e for _, e in codes])
    org = pl.col(v("ORG_AFF_COD"))
    f["organisme_inconnu"] = org.is_not_null() & ~org.is_in(sorted(refs.organismes))
    if "ELSM" in names:
        elsm = pl.col(v("ELSM"))
        f["elsm_inconnu"] = elsm.is_not_null() & ~elsm.is_in(sorted(refs.elsm))
    return {
        name: (e.fill_null(False) & ~bad_count) if name != "nombre_champs" else e
        for name, e in f.items()
    }


def ensure_columns(records: pl.DataFrame, spec: SourceSpec) -> pl.DataFrame:
    """Add the contract columns absent from the header, as null strings."""
    missing = [c.name for c in spec.columns if c.name not in records.columns]
    if not missing:
        return records
    return records.with_columns(pl.lit(None, dtype=pl.String).alias(m) for m in missing)


NIR_PARTS = ("_nir_ok", "_nir_n13", "_nir_cle", "_nir_num")


def nir_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``_nir_ok`` (BEN_NIR has the NIR form), and for those NIRs (null otherwise)
    ``_nir_n13`` (the 13 first characters as a number, Corsica's 2A / 2B read as 19 / 18,
    as the key computation wants), ``_nir_cle`` (the 2-digit key) and ``_nir_num``: the
    whole NIR as an exact integer (``_nir_n13`` × 100 + key, plus 10^15 for 2A and 2 × 10^15
    for 2B: distinct NIRs, distinct integers), which the pseudonymisation groups on. Sex and
    birth year are digits of ``_nir_n13``. Columns already there (computed while reading,
    :func:`transforms.raw.native.read_block`) are kept.

    Computed once per chunk on whole columns; only the few Corsican NIRs take the slower
    replacement, on their rows alone.
    """
    if NIR_PARTS[0] in frame.columns:
        return frame
    nir = frame.get_column(v("BEN_NIR"))
    fmt_ok = nir.str.contains(NIR_RE).fill_null(False)
    n13 = pl.select(pl.when(fmt_ok).then(nir.str.slice(0, 13).cast(pl.Int64, strict=False)))
    n13 = n13.to_series()
    key = pl.select(pl.when(fmt_ok).then(nir.str.slice(13, 2).cast(pl.Int64, strict=False)))
    key = key.to_series()
    number = n13 * 100 + key
    corsica = fmt_ok & n13.is_null()
    if corsica.any():
        # Once the format is checked, letters can only be the département 2A / 2B
        # (positions 6-7), so a plain replacement is exact there.
        idx = corsica.arg_true()
        cut = nir.gather(idx).str.slice(0, 13)
        fixed = (
            cut.str.replace("2A", "19", literal=True)
            .str.replace("2B", "18", literal=True)
            .cast(pl.Int64)
        )
        n13 = n13.scatter(idx, fixed)
        offset = 2 * 10**15 - cut.str.contains("2A", literal=True).cast(pl.Int64) * 10**15
        number = number.scatter(idx, fixed * 100 + key.gather(idx) + offset)
    return frame.with_columns(
        fmt_ok.alias("_nir_ok"),
        n13.alias("_nir_n13"),
        key.alias("_nir_cle"),
        number.alias("_nir_num"),
    )


def _prescription_limit(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``_pre_max``: PRE_PRE_DTD + 3 years (calendar), computed per distinct date."""
    pre = frame.get_column(v("PRE_PRE_DTD"))
    distinct = pre.drop_nulls().unique()
    limit = distinct.dt.offset_by(PRESCRIPTION_MAX)
    return frame.with_columns(
        pre.replace_strict(distinct, limit, default=None, return_dtype=pl.Date).alias("_pre_max")
    )


def check_records(
    records: pl.DataFrame, spec: SourceSpec, refs: References, n_fields: int
) -> pl.DataFrame:
    """Typed values and rule flags for each record.

    Adds ``_v_<COL>`` (typed value), ``_f_<COL>``/``_d_<COL>`` (per-column format / date
    flags), ``r_<rule>`` for every rule but ``encodage``, ``entete`` and ``doublon``, and
    ``rejete`` (some rule broken).
    """
    frame = nir_columns(typed_values(ensure_columns(records, spec), spec))
    if "fin_prescrite" in spec.rules:
        frame = _prescription_limit(frame)
    flags = _flags(spec, refs, n_fields)
    frame = frame.with_columns(e.alias(rule_col(name)) for name, e in flags.items())
    return frame.with_columns(rejete=pl.any_horizontal([pl.col(rule_col(name)) for name in flags]))


def _shared_keys(frame: pl.DataFrame, keys: list[str]) -> pl.Series:
    """Rows whose key (``keys`` columns) another row of ``frame`` has: equal keys have equal
    64-bit hashes, so the exact comparison runs only on rows whose hash is shared."""
    hashes = frame.select(keys).hash_rows(seed=0)
    candidates = hashes.is_duplicated()
    if not candidates.any():
        return candidates
    idx = candidates.arg_true()
    exact = frame.select(keys)[idx].select(pl.struct(keys).is_duplicated()).to_series()
    return pl.repeat(False, candidates.len(), dtype=pl.Boolean, eager=True).scatter(idx, exact)


SHARED_KEY = "_cle_partagee"


def mark_shared_keys(checked: pl.DataFrame, spec: SourceSpec) -> pl.DataFrame:
    """Add ``_cle_partagee``: the record has a full key that another record of the chunk
    has too. A pure function of the chunk, computed where the chunk is checked (in
    parallel); :func:`flag_doublons` computes it itself when absent."""
    keys = [v(k) for k in spec.key]
    has_key = pl.all_horizontal([pl.col(k).is_not_null() for k in keys])
    shared = _shared_keys(checked, keys) & checked.select(has_key).to_series()
    return checked.with_columns(shared.alias(SHARED_KEY))


def flag_doublons(checked: pl.DataFrame, spec: SourceSpec, existing: pl.DataFrame) -> pl.DataFrame:
    """Add ``r_doublon`` and update ``rejete``; rows keep their order.

    ``existing``: keys (typed: strings and a Date) already accepted in the warehouse. A record
    is a doublon when its key is there, or when an earlier record of ``checked`` (smaller
    ``ligne``) with the same key is accepted. The first clean record of a key is accepted.
    """
    keys = [v(k) for k in spec.key]
    has_key = pl.all_horizontal([pl.col(k).is_not_null() for k in keys])
    if existing.height:
        known_keys = (
            existing.rename({k: v(k) for k in spec.key}).unique().with_columns(_known=pl.lit(True))
        )
        # Joined on the key columns alone, then attached: the checked frame is wide.
        known = (
            checked.select(keys)
            .join(known_keys, on=keys, how="left", maintain_order="left")
            .get_column("_known")
            .fill_null(False)
        )
        frame = checked.with_columns(known)
    else:
        frame = checked.with_columns(_known=pl.lit(False))
    if SHARED_KEY not in frame.columns:
        frame = mark_shared_keys(frame, spec)
    shared = frame.get_column(SHARED_KEY)
    doublon = has_key & pl.col("_known")
    if shared.any():
        # Rows sharing their key with another row of the chunk: the first clean one (not
        # already known) is accepted, every later row with that key is a doublon.
        sub = frame.select("ligne", "rejete", "_known", *keys).filter(shared)
        first_clean = (
            sub.filter(~pl.col("rejete") & ~pl.col("_known"))
            .group_by(keys)
            .agg(pl.col("ligne").min().alias("_first"))
        )
        later = (
            sub.join(first_clean, on=keys, how="inner")
            .filter(pl.col("ligne") > pl.col("_first"))
            .get_column("ligne")
        )
        doublon = doublon | pl.col("ligne").is_in(later.implode())
    return (
        frame.with_columns(r_doublon=doublon.fill_null(False) & ~pl.col("r_nombre_champs"))
        .with_columns(rejete=pl.col("rejete") | pl.col("r_doublon"))
        .drop("_known", SHARED_KEY)
    )


def _fr_date(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime("%d/%m/%Y")


def _join(parts: list[pl.Expr], sep: str = ", ") -> pl.Expr:
    return pl.concat_list(parts).list.drop_nulls().list.join(sep)


def _format_messages(spec: SourceSpec) -> pl.Expr:
    parts = []
    for c in spec.columns:
        bad = pl.col(f"_f_{c.name}") if c.kind is not Kind.NIR and c.kind is not Kind.DATE else None
        if bad is None:
            continue
        raw = _raw(c.name)
        if c.kind is Kind.INT:
            what = (
                f"entier entre {c.int_min} et {c.int_max} attendu"
                if c.int_min is not None and c.int_max is not None and c.int_max < 10_000
                else "entier attendu"
            )
        elif c.kind is Kind.DEC:
            what = "décimal attendu (au plus 2 décimales)"
        elif c.exact_len is not None:
            what = f"{c.exact_len} caractères attendus"
        elif c.max_len is not None:
            what = f"{c.max_len} caractères au plus"
        else:
            what = c.format_label or "format attendu non respecté"
        parts.append(pl.when(bad).then(pl.format(f"{c.name} : « {{}} » ({what})", raw)))
    return _join(parts, " ; ")


@functools.lru_cache(maxsize=16)
def _messages(spec: SourceSpec, refs: References, n_fields: int) -> dict[str, pl.Expr]:
    """French detail message of each rule, for rows where it is broken (no clear NIR).
    Built once per contract and field count (callers read it, never change it)."""
    m: dict[str, pl.Expr] = {}
    nb = pl.col("nb_champs")
    m["nombre_champs"] = (
        pl.when(nb < 0)
        .then(pl.lit("guillemets non fermés ou mal placés : champs illisibles"))
        .otherwise(pl.format(f"{{}} champ(s) au lieu de {n_fields}", nb))
    )
    req = [c.name for c in spec.columns if c.required]
    m["champ_obligatoire"] = pl.format(
        "champ obligatoire vide : {}",
        _join([pl.when(_raw(c).is_null()).then(pl.lit(c)) for c in req]),
    )
    m["format_invalide"] = _format_messages(spec)
    dates = [c for c in spec.columns if c.kind is Kind.DATE]
    m["date_invalide"] = _join(
        [
            pl.when(pl.col(f"_d_{c.name}")).then(
                pl.format(
                    f"{c.name} : « {{}} » n'est pas une date (JJ/MM/AAAA ou AAAA-MM-JJ)",
                    _raw(c.name),
                )
            )
            for c in dates
        ],
        " ; ",
    )
    flx = pl.col(v("FLX_DIS_DTD"))
    m["date_hors_plage"] = _join(
        [
            pl.when(pl.col(v(c.name)) < MIN_DATE)
            .then(pl.format(f"{c.name} : {{}} avant le 01/01/2000", _fr_date(pl.col(v(c.name)))))
            .when(pl.col(v(c.name)) > flx)
            .then(
                pl.format(
                    f"{c.name} : {{}} après FLX_DIS_DTD {{}}",
                    _fr_date(pl.col(v(c.name))),
                    _fr_date(flx),
                )
            )
            for c in dates
            if c.date_in_range
        ],
        " ; ",
    )
    m["nir_exclusif"] = (
        pl.when(_raw("BEN_NIR").is_null())
        .then(pl.lit("ni BEN_NIR ni BEN_NIR_PSA"))
        .otherwise(pl.lit("BEN_NIR et BEN_NIR_PSA tous deux renseignés"))
    )
    m["nir_format"] = pl.format(
        "BEN_NIR : forme invalide ({} caractères ; 13 caractères et une clé de 2 chiffres attendus)",
        _raw("BEN_NIR").str.len_chars(),
    )
    n13 = pl.col("_nir_n13")  # see nir_columns: the rejected rows carry it
    m["nir_cle"] = pl.format(
        "BEN_NIR : clé {} attendue {}",
        _raw("BEN_NIR").str.slice(13, 2),
        (97 - n13 % 97).cast(pl.String).str.zfill(2),
    )
    if "nir_sexe" in spec.rules:
        m["nir_sexe"] = pl.format(
            "BEN_NIR : sexe {} mais BEN_SEX_COD {}", n13 // 10**12, _raw("BEN_SEX_COD")
        )
        m["nir_annee"] = pl.format(
            "BEN_NIR : année {} mais BEN_NAI_ANN {}",
            _raw("BEN_NIR").str.slice(1, 2),
            _raw("BEN_NAI_ANN"),
        )
    if "fin_prescrite" in spec.rules:
        pre, fin = pl.col(v("PRE_PRE_DTD")), pl.col(v("PRE_FIN_DTE"))
        m["fin_prescrite"] = (
            pl.when(fin < pre)
            .then(pl.format("PRE_FIN_DTE {} avant PRE_PRE_DTD {}", _fr_date(fin), _fr_date(pre)))
            .otherwise(
                pl.format(
                    "PRE_FIN_DTE {} plus de 3 ans après PRE_PRE_DTD {}",
                    _fr_date(fin),
                    _fr_date(pre),
                )
            )
        )
        dtd, dtf = pl.col(v("EXE_SOI_DTD")), pl.col(v("EXE_SOI_DTF"))
        days = (dtf - dtd).dt.total_days() + 1
        m["periode_ordre"] = pl.format(
            "EXE_SOI_DTD {} après EXE_SOI_DTF {}", _fr_date(dtd), _fr_date(dtf)
        )
        m["periode_duree"] = pl.format(f"période de {{}} jours ({MAX_PERIOD_DAYS} au plus)", days)
        m["debut_arret_ordre"] = pl.format(
            "ARR_DEB_DTE {} après EXE_SOI_DTD {}",
            _fr_date(pl.col(v("ARR_DEB_DTE"))),
            _fr_date(dtd),
        )
        m["quantite_periode"] = pl.format(
            "PRS_ACT_QTE {} pour une période de {} jours", _raw("PRS_ACT_QTE"), days
        )
        m["denombrement_quantite"] = pl.format(
            "|PRS_ACT_NBR| {} supérieur à PRS_ACT_QTE {}", _raw("PRS_ACT_NBR"), _raw("PRS_ACT_QTE")
        )
        m["signe_montant"] = pl.format(
            "BSE_REM_MNT {} de signe contraire à PRS_ACT_NBR {}",
            _raw("BSE_REM_MNT"),
            _raw("PRS_ACT_NBR"),
        )
        expected = pl.col(v("PRS_ACT_QTE")) * pl.col(v("BSE_REM_PRU"))
        m["montant_coherent"] = pl.format(
            "|BSE_REM_MNT| {} loin de PRS_ACT_QTE × BSE_REM_PRU = {} (écart de plus d'1 €)",
            _raw("BSE_REM_MNT"),
            (expected.cast(pl.Float64) / 100)
            .round(2)
            .cast(pl.String)
            .str.replace(".", ",", literal=True),
        )
        m["prix_unitaire"] = pl.format("BSE_REM_PRU {} hors de [0 ; 250]", _raw("BSE_REM_PRU"))
    codes = _codes_expr(spec, refs)
    m["code_inconnu"] = _join(
        [
            pl.when(e).then(pl.format(f"{name} : valeur « {{}} » hors liste", _raw(name)))
            for name, e in codes
        ],
        " ; ",
    )
    m["organisme_inconnu"] = pl.format(
        "ORG_AFF_COD {} absent du référentiel des organismes (elsm.csv)", _raw("ORG_AFF_COD")
    )
    if "elsm_inconnu" in spec.rules:
        m["elsm_inconnu"] = pl.format(
            "ELSM {} absent du référentiel des ELSM (elsm.csv)", _raw("ELSM")
        )
    key = ", ".join(spec.key)
    m["doublon"] = pl.lit(f"même ({key}) qu'une ligne déjà acceptée")
    return m


def rejection_details(
    rejected: pl.DataFrame, spec: SourceSpec, refs: References, n_fields: int
) -> pl.DataFrame:
    """For rejected rows: ``regles`` (List[String], in the order of docs/regles.md) and
    ``details`` (French, one clause per rule: « règle : message »).

    Each broken rule's message is evaluated on its own rows only (a chunk's few rejected
    lines break a handful of the two dozen rules; one expression over every rule and row
    cost more to plan than to run).
    """
    rules = [
        r for r in spec.rules if rule_col(r) in rejected.columns and rejected[rule_col(r)].any()
    ]
    if not rules:
        return rejected.with_columns(
            regles=pl.lit([], dtype=pl.List(pl.String)), details=pl.lit("", dtype=pl.String)
        )
    messages = _messages(spec, refs, n_fields)
    numbered = rejected.with_row_index("_i")
    clauses = pl.concat(
        [
            numbered.filter(pl.col(rule_col(r))).select(
                "_i",
                pl.lit(order, dtype=pl.UInt32).alias("_ordre"),
                pl.lit(r, dtype=pl.String).alias("regle"),
                pl.format(f"{r} : {{}}", messages[r]).alias("clause"),
            )
            for order, r in enumerate(rules)
        ]
    )
    per_row = (
        clauses.sort("_i", "_ordre")
        .group_by("_i", maintain_order=True)
        .agg(regles=pl.col("regle"), details=pl.col("clause").drop_nulls().str.join(" | "))
    )
    return (
        numbered.join(per_row, on="_i", how="left", maintain_order="left")
        .with_columns(
            pl.col("regles").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("details").fill_null(""),
        )
        .drop("_i")
    )

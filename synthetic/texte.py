"""Text rendering of extract lines in the contract's CSV dialect, for the lines that carry a
text-only defect (``nombre_champs``, ``date_invalide``).

Clean lines are written straight from their typed frame by the CSV writer (same dialect:
``;``, ``JJ/MM/AAAA``, decimal comma, empty field = null); these lines need to be strings
first so that a field can hold an impossible date or an extra separator.
"""

from __future__ import annotations

import polars as pl

# Impossible calendar dates (day, month), picked by the line's last digit.
_FAUSSES_DATES = ("31/04/", "30/02/", "31/06/", "31/09/", "31/11/")


def en_texte(frame: pl.DataFrame, colonnes: tuple[str, ...], id_col: str) -> pl.DataFrame:
    """All ``colonnes`` as strings in the contract's dialect, with the text defects applied.

    ``_cible`` names the date column to make impossible on ``date_invalide`` lines;
    ``nombre_champs`` lines get one extra field after the last column (to be written
    without quoting). One row in, one row out.
    """
    exprs = []
    for col in colonnes:
        dtype = frame.schema[col]
        if dtype == pl.Date:
            e = pl.col(col).dt.strftime("%d/%m/%Y")
        elif dtype.is_float():
            cents = (pl.col(col) * 100).round().cast(pl.Int64)
            e = (
                pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit(""))
                + (cents.abs() // 100).cast(pl.String)
                + ","
                + (cents.abs() % 100).cast(pl.String).str.zfill(2)
            )
        else:
            e = pl.col(col).cast(pl.String)
        if dtype == pl.Date:
            digit = pl.col(id_col).str.slice(-1).str.replace_all("[^0-9]", "0").cast(pl.Int32) % 5
            fausse = pl.lit(None, dtype=pl.String)
            for k, prefix in enumerate(_FAUSSES_DATES):
                fausse = pl.when(digit == k).then(pl.lit(prefix)).otherwise(fausse)
            e = (
                pl.when((pl.col("_defaut") == "date_invalide") & (pl.col("_cible") == col))
                .then(fausse + pl.col(col).dt.year().cast(pl.String))
                .otherwise(e)
            )
        if col == colonnes[-1]:
            e = (
                pl.when(pl.col("_defaut") == "nombre_champs")
                .then(e.fill_null("") + ";X")
                .otherwise(e)
            )
        exprs.append(e.alias(col))
    return frame.select(exprs)

"""Serialising export frames to bytes: French CSV, XLSX workbook, Parquet.

Pure (frames in, bytes out, no file written) and deterministic: the same frames give the
same bytes, so re-running a night gives byte-identical files. Text cells must already be
neutralised (:func:`transforms.exports.queues.neutralise`); the workbook also turns off
xlsxwriter's formula, URL and number guessing, so a text cell is always written as text.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date, datetime

import polars as pl

DATE_FORMAT_CSV = "%d/%m/%Y"
DATE_FORMAT_XLSX = "dd/mm/yyyy"
_MAX_WIDTH = 60


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """CSV for French spreadsheets: ``;``, UTF-8 with BOM, ``JJ/MM/AAAA``, decimal comma,
    CRLF line ends, header line; empty cells for nulls."""
    buf = io.BytesIO()
    frame.write_csv(
        buf,
        include_bom=True,
        separator=";",
        line_terminator="\r\n",
        date_format=DATE_FORMAT_CSV,
        decimal_comma=True,
        null_value="",
    )
    return buf.getvalue()


def _width(frame: pl.DataFrame, column: str) -> int:
    longest = frame.get_column(column).cast(pl.String).str.len_chars().max()
    return min(_MAX_WIDTH, max(len(column), int(longest or 0)) + 2)


def xlsx_bytes(sheets: Mapping[str, pl.DataFrame], created: date) -> bytes:
    """A workbook with one sheet per frame (in the mapping's order).

    Header row in bold, frozen, with a filter; dates are real date cells shown
    ``jj/mm/aaaa``; integers and decimals are number cells (``0`` and ``0,0`` in a French
    Excel); text is always text. The document's creation date is ``created`` (midnight UTC)
    so the bytes do not depend on the time of the run.
    """
    import xlsxwriter

    buf = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buf,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "remove_timezone": True,
        },
    )
    workbook.set_properties(
        {
            "title": "Orientation des dossiers RU",
            "created": datetime(created.year, created.month, created.day),
        }
    )
    header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    formats = {
        "date": workbook.add_format({"num_format": DATE_FORMAT_XLSX}),
        "int": workbook.add_format({"num_format": "0"}),
        "float": workbook.add_format({"num_format": "0.0"}),
    }
    for name, frame in sheets.items():
        sheet = workbook.add_worksheet(name)
        for j, (column, dtype) in enumerate(frame.schema.items()):
            sheet.write_string(0, j, column, header)
            sheet.set_column(j, j, _width(frame, column))
            if dtype == pl.Date:
                kind = "date"
            elif dtype.is_integer():
                kind = "int"
            elif dtype.is_float():
                kind = "float"
            else:
                kind = "text"
            for i, value in enumerate(frame.get_column(column).to_list(), start=1):
                if value is None:
                    continue
                if kind == "date":
                    sheet.write_datetime(
                        i, j, datetime(value.year, value.month, value.day), formats[kind]
                    )
                elif kind in ("int", "float"):
                    sheet.write_number(i, j, value, formats[kind])
                else:
                    sheet.write_string(i, j, str(value))
        sheet.freeze_panes(1, 0)
        if frame.width:
            sheet.autofilter(0, 0, max(frame.height, 1), frame.width - 1)
    workbook.close()
    return buf.getvalue()


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as Parquet (zstd, statistics), for the analysts."""
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd")
    return buf.getvalue()

"""Text-only defects of the CSV extracts, carried through typed frames by sentinels.

Two contract defects cannot live in a typed frame: a date that is not in the calendar
(``date_invalide``) and a line with one field too many (``nombre_champs``). The defect
injector writes them as sentinels that the CSV writer turns into text, so every line is
written in one pass from its typed frame:

- ``date_invalide``: the date column holds one of ``DATES_SENTINELLES`` (days in January 1901,
  a date no extract line can carry); :func:`remplacer_sentinelles` replaces its CSV text
  (``JJ/MM/AAAA``) by an impossible date such as ``31/04/2025``;
- ``nombre_champs``: the last column's text ends with ``;X`` (written without quoting), one
  extra field.
"""

from __future__ import annotations

from datetime import date

# Sentinel date -> impossible calendar date written in its place.
DATES_SENTINELLES: dict[date, str] = {
    date(1901, 1, 1): "31/04/2025",
    date(1901, 1, 2): "30/02/2024",
}
CHAMP_EN_TROP = ";X"


_REMPLACEMENTS = {
    sentinel.strftime("%d/%m/%Y").encode(): impossible.encode()
    for sentinel, impossible in DATES_SENTINELLES.items()
}


def remplacer_sentinelles(csv: bytes) -> bytes:
    """CSV bytes with each sentinel date (as ``JJ/MM/AAAA``) replaced by its impossible date."""
    if b"/01/1901" not in csv:
        return csv
    for sentinel, impossible in _REMPLACEMENTS.items():
        csv = csv.replace(sentinel, impossible)
    return csv

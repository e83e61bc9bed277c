"""A Great Expectations expectation for a column's type family on a pandas batch.

GX's own ``ExpectColumnValuesToBeInTypeList`` does not recognise pandas' extension dtypes
(``Int16``, ``boolean``, ``str``) that DuckDB's ``.df()`` returns with pandas 3, so the type
check compares families instead: texte, entier, decimal, date, booleen, liste.

Imported only by :func:`expectations.suites.build_suite` (it imports great_expectations).
"""

from __future__ import annotations

from typing import Any

from great_expectations.compatibility.pydantic import StrictStr
from great_expectations.expectations.expectation import BatchExpectation

FAMILIES = ("texte", "entier", "decimal", "date", "booleen", "liste")


def pandas_family(dtype: Any) -> str:
    """The family of a pandas dtype: ``Int16`` -> entier, ``str`` -> texte, ``<M8[us]`` -> date."""
    from pandas.api import types as pdt

    if pdt.is_bool_dtype(dtype):
        return "booleen"
    if pdt.is_integer_dtype(dtype):
        return "entier"
    if pdt.is_float_dtype(dtype):
        return "decimal"
    if pdt.is_datetime64_any_dtype(dtype):
        return "date"
    if pdt.is_object_dtype(dtype):
        return "objet"
    if pdt.is_string_dtype(dtype):
        return "texte"
    return str(dtype)


class ExpectColumnTypeFamily(BatchExpectation):
    """Expect the column's dtype to belong to ``family`` (texte, entier, decimal, date,
    booleen, liste). Lists come back from DuckDB as object columns; an all-null text column
    may too, so ``objet`` is accepted for ``texte`` and ``liste``."""

    column: StrictStr
    family: StrictStr

    metric_dependencies = ("table.column_types",)
    success_keys = ("column", "family")
    args_keys = ("column", "family")

    def _validate(self, metrics: dict, runtime_configuration=None, execution_engine=None):
        column = self._get_success_kwarg("column")
        family = self._get_success_kwarg("family")
        types = metrics.get("table.column_types") or []
        dtype = next((t["type"] for t in types if t["name"] == column), None)
        if dtype is None:
            return {"success": False, "result": {"observed_value": "colonne absente"}}
        observed = pandas_family(dtype)
        ok = observed == family or (observed == "objet" and family in ("texte", "liste"))
        return {"success": ok, "result": {"observed_value": f"{observed} ({dtype})"}}

"""A Great Expectations expectation for a column's type family on a pandas batch.

GX's own ``ExpectColumnValuesToBeInTypeList`` does not recognise pandas' extension dtypes
(``Int16``, ``boolean``, ``str``) that DuckDB's ``.df()`` returns with pandas 3, so the type
check compares families instead: texte, entier, decimal, date, booleen, liste.

Imported only by :func:`expectations.suites.build_suite` (it imports great_expectations).
"""

from __future__ import annotations

from typing import Any

from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer

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


def _sentence(text: str, runtime_configuration: dict | None) -> list:
    """A Data Docs line: the rule's French detail (``meta.detail``)."""
    styling = (runtime_configuration or {}).get("styling")
    return [
        RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={"template": text, "params": {}, "styling": styling},
        )
    ]


class ExpectContractColumnsToExist(BatchExpectation):
    """Expect every column of the contract to be in the batch (extra columns are allowed:
    the slice frame adds computed rule columns). Observed: the missing columns, in French."""

    columns: list[str]

    metric_dependencies = ("table.columns",)
    success_keys = ("columns",)
    args_keys = ("columns",)

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls, configuration=None, result=None, runtime_configuration=None, **kwargs
    ):
        columns = configuration.kwargs.get("columns", []) if configuration else []
        return _sentence(
            f"Colonnes du contrat présentes : {', '.join(columns)}.", runtime_configuration
        )

    def _validate(self, metrics: dict, runtime_configuration=None, execution_engine=None):
        actual = set(metrics.get("table.columns") or [])
        missing = [c for c in self._get_success_kwarg("columns") if c not in actual]
        observed = "absente(s) : " + ", ".join(missing) if missing else "toutes présentes"
        return {"success": not missing, "result": {"observed_value": observed}}


class ExpectColumnTypeFamilies(BatchExpectation):
    """Expect each column's dtype to belong to its family ({column: family}); a missing
    column is left to :class:`ExpectContractColumnsToExist`. Lists come back from DuckDB as
    object columns, so ``objet`` is accepted for ``texte`` and ``liste``. Observed: the
    columns of another family, in French."""

    families: dict[str, str]

    metric_dependencies = ("table.column_types",)
    success_keys = ("families",)
    args_keys = ("families",)

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls, configuration=None, result=None, runtime_configuration=None, **kwargs
    ):
        families = configuration.kwargs.get("families", {}) if configuration else {}
        text = ", ".join(f"{c} {f}" for c, f in families.items())
        return _sentence(f"Famille de type de chaque colonne : {text}.", runtime_configuration)

    def _validate(self, metrics: dict, runtime_configuration=None, execution_engine=None):
        dtypes = {t["name"]: t["type"] for t in metrics.get("table.column_types") or []}
        wrong = []
        for column, family in self._get_success_kwarg("families").items():
            if column not in dtypes:
                continue
            observed = pandas_family(dtypes[column])
            if observed != family and not (observed == "objet" and family in ("texte", "liste")):
                wrong.append(f"{column} : {observed} ({dtypes[column]}) au lieu de {family}")
        observed = "; ".join(wrong) if wrong else "conformes"
        return {"success": not wrong, "result": {"observed_value": observed}}

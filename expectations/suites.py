"""Data checks generated from a table contract: the rules, the slice query, the GX suite.

Nothing here is written by hand per table: :func:`rules` reads a :class:`Contract` and lists
the checks (column present, type family, not null, accepted values, bounds, regex, key
uniqueness, row invariants) with their severity; :func:`slice_query` is the one DuckDB query
that pulls a slice of the table with each row invariant evaluated as a boolean column;
:func:`build_suite` turns the rules into a Great Expectations 1.x ``ExpectationSuite``;
:func:`describe` renders them as French Markdown for ``docs/controles.md``.

Great Expectations is imported only inside :func:`build_suite` (≈ 3–4 s import).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from expectations.contract import Column, Contract, all_contracts

if TYPE_CHECKING:
    import great_expectations as gx

# Rule kinds, in the order they are checked and reported.
KINDS = (
    "colonnes",
    "types",
    "obligatoire",
    "valeurs_acceptees",
    "bornes",
    "format",
    "cle_unique",
    "invariant",
)

# Contract type -> type family of the column in the pandas frame DuckDB returns.
# DECIMAL comes back as float64 and DATE as datetime64, hence families rather than types.
TYPE_FAMILIES = {
    "VARCHAR": "texte",
    "DATE": "date",
    "TIMESTAMP": "date",
    "BOOLEAN": "booleen",
    "SMALLINT": "entier",
    "INTEGER": "entier",
    "BIGINT": "entier",
    "DOUBLE": "decimal",
    "VARCHAR[]": "liste",
    "DATE[]": "liste",
}

# Prefix of the computed boolean columns that hold row invariants and the key flag.
RULE_COLUMN_PREFIX = "regle__"
KEY_FLAG_COLUMN = f"{RULE_COLUMN_PREFIX}cle_unique"
# Bounded integer columns are also pulled as DOUBLE under this prefix: GX compares bounds
# vectorised only on int64/float64 columns, element by element (≈ 1 s per million) otherwise.
NUMERIC_COPY_PREFIX = "valeur__"
EXAMPLES = 5


@dataclass(frozen=True)
class Rule:
    """One generated check.

    ``name`` is stable (``obligatoire.ORG_AFF_COD``, ``cle_unique``, an invariant's name) and
    is what messages, JSON results and Data Docs show; ``detail`` is the French condition;
    ``masked`` withholds example values (identifying or medical column).
    """

    name: str
    kind: str
    severity: str
    columns: tuple[str, ...]
    detail: str
    masked: bool = False
    value_set: tuple | None = None
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    family: str | None = None
    expression: str | None = None


def type_family(column_type: str) -> str:
    """The family of a contract type (``DECIMAL(12,2)`` -> ``decimal``)."""
    if column_type.startswith("DECIMAL"):
        return "decimal"
    return TYPE_FAMILIES[column_type]


def numeric_column(name: str) -> str:
    """The DOUBLE copy of bounded integer column ``name`` in the slice frame."""
    return f"{NUMERIC_COPY_PREFIX}{name}"


def invariant_column(name: str) -> str:
    """The computed boolean column holding invariant ``name`` in the slice frame."""
    return f"{RULE_COLUMN_PREFIX}{name}"


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bounds_detail(col: Column) -> str:
    if col.min is not None and col.max is not None:
        return f"{_fmt(col.min)} ≤ {col.name} ≤ {_fmt(col.max)}"
    if col.min is not None:
        return f"{col.name} ≥ {_fmt(col.min)}"
    return f"{col.name} ≤ {_fmt(col.max)}"


def rules(contract: Contract) -> tuple[Rule, ...]:
    """Every check of ``contract``, one :class:`Rule` per check, in reporting order.

    Column presence and types are structural, one rule each for the table, always ``fail``
    (``family`` of ``types_colonnes`` lists the columns' families in order); value rules (not null,
    accepted values, bounds, regex) take the column's severity; key uniqueness takes
    ``key_severity``; invariants their own. A null operand makes an invariant pass: nulls
    are the business of ``obligatoire``.
    """
    masked = set(contract.masked_columns)
    out: list[Rule] = []
    by_kind: dict[str, list[Rule]] = {k: [] for k in KINDS}
    # Structural rules: one expectation each for the whole table (GX's fixed cost is per
    # expectation, ≈ 20 ms; two rules instead of two per column).
    by_kind["colonnes"].append(
        Rule(
            "colonnes_presentes",
            "colonnes",
            "fail",
            tuple(contract.column_names),
            f"les {len(contract.columns)} colonnes du contrat existent",
        )
    )
    by_kind["types"].append(
        Rule(
            "types_colonnes",
            "types",
            "fail",
            tuple(contract.column_names),
            "chaque colonne a la famille de type de son contrat",
            family=",".join(type_family(c.type) for c in contract.columns),
        )
    )
    for col in contract.columns:
        hide = col.name in masked
        family = type_family(col.type)
        if col.required:
            by_kind["obligatoire"].append(
                Rule(
                    f"obligatoire.{col.name}",
                    "obligatoire",
                    col.severity,
                    (col.name,),
                    f"{col.name} renseigné",
                    masked=hide,
                )
            )
        if col.accepted_values is not None:
            values = ", ".join(_fmt(v) for v in col.accepted_values)
            by_kind["valeurs_acceptees"].append(
                Rule(
                    f"valeurs_acceptees.{col.name}",
                    "valeurs_acceptees",
                    col.severity,
                    (col.name,),
                    f"{col.name} dans {{{values}}}",
                    masked=hide,
                    value_set=tuple(col.accepted_values),
                )
            )
        if col.min is not None or col.max is not None:
            by_kind["bornes"].append(
                Rule(
                    f"bornes.{col.name}",
                    "bornes",
                    col.severity,
                    (col.name,),
                    _bounds_detail(col),
                    masked=hide,
                    min=col.min,
                    max=col.max,
                    family=family,
                )
            )
        if col.regex is not None:
            by_kind["format"].append(
                Rule(
                    f"format.{col.name}",
                    "format",
                    col.severity,
                    (col.name,),
                    f"{col.name} respecte {col.regex}",
                    masked=hide,
                    regex=col.regex,
                )
            )
    if contract.key:
        by_kind["cle_unique"].append(
            Rule(
                "cle_unique",
                "cle_unique",
                contract.key_severity,
                tuple(contract.key),
                f"clé ({', '.join(contract.key)}) unique",
                masked=any(k in masked for k in contract.key),
            )
        )
    for inv in contract.invariants:
        by_kind["invariant"].append(
            Rule(
                inv.name,
                "invariant",
                inv.severity,
                invariant_columns(inv.expression),
                inv.expression,
                expression=inv.expression,
            )
        )
    for kind in KINDS:
        out.extend(by_kind[kind])
    return tuple(out)


@cache
def invariant_columns(expression: str) -> tuple[str, ...]:
    """The columns an invariant's SQL expression reads (parsed with sqlglot)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(expression, read="duckdb")
    return tuple(sorted({c.name for c in tree.find_all(exp.Column)}))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def slice_query(
    contract: Contract,
    table: str,
    present: list[str] | tuple[str, ...],
    where: str | None = None,
    *,
    key_flag: bool = False,
) -> str:
    """The SQL that pulls the checked slice of ``table``: one row per row of the slice.

    Columns: the contract's columns present in the table (``present``), a DOUBLE copy
    ``valeur__<col>`` of each bounded integer column (for GX's vectorised bounds), one boolean
    column ``regle__<invariant>`` per invariant whose columns are all present (true when the
    row satisfies it or an operand is null), then, with ``key_flag``, ``regle__cle_unique``
    (false when another row of the slice has the same key), computed over the whole slice by
    DuckDB so that the frame can be validated in chunks (rows then come in no set order).

    Identifiers come from the contract (validated names); invariant expressions are
    versioned contract text; ``where`` is fixed caller text whose values are bound
    parameters. No value is formatted into the SQL.
    """
    have = set(present)
    cols = [_q(c) for c in contract.column_names if c in have]
    for col in contract.columns:
        bounded = col.min is not None or col.max is not None
        if bounded and col.name in have and type_family(col.type) == "entier":
            cols.append(f"try_cast({_q(col.name)} as double) as {_q(numeric_column(col.name))}")
    for inv in contract.invariants:
        if set(invariant_columns(inv.expression)) <= have:
            cols.append(f"coalesce(({inv.expression}), true) as {_q(invariant_column(inv.name))}")
    source = _q(table) + (f" where ({where})" if where else "")
    if not (key_flag and contract.key and set(contract.key) <= have):
        return f"select {', '.join(cols)} from {source}"
    # Keys seen twice, found by an aggregate (small), then flagged by a streaming join: a
    # window over the slice would hold the whole slice in memory, defeating the chunks.
    aliases = [f"cle__{i}" for i in range(len(contract.key))]
    picked = ", ".join(f"{_q(k)} as {a}" for k, a in zip(contract.key, aliases, strict=True))
    on = " and ".join(
        f"tranche.{_q(k)} is not distinct from doublons.{a}"
        for k, a in zip(contract.key, aliases, strict=True)
    )
    cols.append(f"doublons.{aliases[0]} is null as {_q(KEY_FLAG_COLUMN)}")
    return (
        f"with tranche as not materialized (select * from {source}), "
        f"doublons as (select {picked} from tranche group by all having count(*) > 1) "
        f"select {', '.join(cols)} from tranche left join doublons on {on}"
    )


def example_columns(contract: Contract, present: list[str] | tuple[str, ...]) -> list[str]:
    """Columns that locate a failing row in examples: the key, without identifying columns."""
    masked = set(contract.masked_columns)
    return [k for k in contract.key if k in set(present) and k not in masked]


def build_suite(
    contract: Contract, *, suite_name: str | None = None, key_flag: bool = False
) -> gx.ExpectationSuite:
    """The Great Expectations suite of ``contract``: one expectation per :class:`Rule`.

    Each expectation carries ``meta = {regle, severite, detail}``. Invariants are checked on
    their computed boolean column, bounds of integer columns on their DOUBLE copy; with
    ``key_flag`` key uniqueness is checked on ``regle__cle_unique`` (chunked validation)
    instead of ``ExpectCompoundColumnsToBeUnique``. How much a result shows (counts, row
    locators, never values) is set for the whole run by the caller.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from expectations._gx_types import ExpectColumnTypeFamilies, ExpectContractColumnsToExist

    suite = gx.ExpectationSuite(name=suite_name or contract.table)
    for rule in rules(contract):
        meta = {"regle": rule.name, "severite": rule.severity, "detail": rule.detail}
        common = {"meta": meta}
        col = rule.columns[0]
        if rule.kind == "colonnes":
            exp = ExpectContractColumnsToExist(columns=list(rule.columns), **common)
        elif rule.kind == "types":
            families = dict(zip(rule.columns, rule.family.split(","), strict=True))
            exp = ExpectColumnTypeFamilies(families=families, **common)
        elif rule.kind == "obligatoire":
            exp = gxe.ExpectColumnValuesToNotBeNull(column=col, **common)
        elif rule.kind == "valeurs_acceptees":
            exp = gxe.ExpectColumnValuesToBeInSet(
                column=col, value_set=list(rule.value_set), **common
            )
        elif rule.kind == "bornes":
            target = numeric_column(col) if rule.family == "entier" else col
            exp = gxe.ExpectColumnValuesToBeBetween(
                column=target, min_value=rule.min, max_value=rule.max, **common
            )
        elif rule.kind == "format":
            exp = gxe.ExpectColumnValuesToMatchRegex(column=col, regex=rule.regex, **common)
        elif rule.kind == "cle_unique" and key_flag:
            exp = gxe.ExpectColumnValuesToBeInSet(
                column=KEY_FLAG_COLUMN, value_set=[True], **common
            )
        elif rule.kind == "cle_unique" and len(rule.columns) == 1:
            exp = gxe.ExpectColumnValuesToBeUnique(column=col, **common)
        elif rule.kind == "cle_unique":
            exp = gxe.ExpectCompoundColumnsToBeUnique(column_list=list(rule.columns), **common)
        else:
            exp = gxe.ExpectColumnValuesToBeInSet(
                column=invariant_column(rule.name), value_set=[True], **common
            )
        suite.add_expectation(exp)
    return suite


_SEVERITY_FR = {"fail": "bloquante", "warn": "avertissement"}
_KIND_FR = {
    "colonnes": "colonnes présentes",
    "types": "types",
    "obligatoire": "obligatoire",
    "valeurs_acceptees": "valeurs acceptées",
    "bornes": "bornes",
    "format": "format",
    "cle_unique": "clé unique",
    "invariant": "invariant",
}


def describe(contract: Contract) -> str:
    """French Markdown: what is checked on ``contract``'s table and at which severity.

    Column presence and types are summarised in one line; every other rule is one table row.
    """
    lines = [
        f"## `{contract.table}`",
        "",
        f"{contract.grain[:1].upper()}{contract.grain[1:]} ; clé ({', '.join(contract.key)}).",
        "",
        f"Les {len(contract.columns)} colonnes du contrat présentes et de la bonne famille de "
        "type (texte, entier, decimal, date, booleen, liste) : règles `colonnes_presentes` et "
        "`types_colonnes`, bloquantes.",
        "",
        "| règle | nature | condition | sévérité |",
        "|---|---|---|---|",
    ]
    for rule in rules(contract):
        if rule.kind in ("colonnes", "types"):
            continue
        detail = rule.detail.replace("|", "\\|")
        note = " (exemples masqués)" if rule.masked else ""
        lines.append(
            f"| `{rule.name}` | {_KIND_FR[rule.kind]} | `{detail}`{note} | "
            f"{_SEVERITY_FR[rule.severity]} |"
        )
    return "\n".join(lines) + "\n"


def describe_all(contracts: list[Contract] | None = None) -> str:
    """``docs/controles.md``: :func:`describe` for every contract, with a French preamble."""
    contracts = all_contracts() if contracts is None else contracts
    head = (
        "# Contrôles des données\n\n"
        "Page générée par `expectations.suites.describe_all()` à partir des contrats "
        "`expectations/contracts/*.yml` : ne pas la modifier à la main "
        "(`uv run python -m expectations.suites > docs/controles.md`).\n\n"
        "Une règle *bloquante* arrête le flux (`ChecksFailed`) ; un *avertissement* est "
        "journalisé et reporté dans le résultat du contrôle. Un invariant dont un opérande est "
        "vide est satisfait (le vide relève de la règle `obligatoire`). Les exemples des "
        "règles portant sur une colonne identifiante ou médicale ne montrent aucune valeur.\n"
    )
    return head + "".join("\n" + describe(c) for c in contracts)


if __name__ == "__main__":  # pragma: no cover - doc generation entry point
    import sys

    sys.stdout.write(describe_all())

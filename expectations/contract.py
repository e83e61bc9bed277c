"""Table contracts: one YAML file per table under ``expectations/contracts/``.

A contract says what one row is (grain), its key, its columns (type, required, accepted
values, bounds, regex, medical flag) and row invariants (SQL boolean expressions over one
row, with a severity). The table's DDL and its Great Expectations suite are derived from it;
nothing is written twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).parent / "contracts"
SEVERITIES = ("fail", "warn")
_TYPE = re.compile(
    r"^(VARCHAR|DATE|TIMESTAMP|BOOLEAN|SMALLINT|INTEGER|BIGINT|DOUBLE|DECIMAL\(\d+,\d+\)|"
    r"VARCHAR\[\]|DATE\[\])$"
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Columns that identify a person whatever the contract says: their values never appear in
# check results, Data Docs or logs.
IDENTIFYING_NAMES = ("assure_id", "BEN_NIR", "BEN_NIR_PSA", "BEN_IDT_ANO")


class ContractError(ValueError):
    """A contract file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    description: str = ""
    accepted_values: tuple | None = None
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    medical: bool = False
    severity: str = "fail"
    identifying: bool = False


@dataclass(frozen=True)
class Invariant:
    name: str
    expression: str
    severity: str = "fail"
    description: str = ""


@dataclass(frozen=True)
class Contract:
    table: str
    layer: str
    description: str
    grain: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    invariants: tuple[Invariant, ...] = field(default_factory=tuple)
    key_severity: str = "fail"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def medical_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.medical]

    @property
    def masked_columns(self) -> list[str]:
        """Columns whose values are never shown in check examples: identifying or medical."""
        return [
            c.name
            for c in self.columns
            if c.identifying or c.medical or c.name in IDENTIFYING_NAMES
        ]

    def ddl(self, table: str | None = None) -> str:
        """``create table if not exists`` for this contract (types and NOT NULL only).

        Uniqueness of the key is a data check, not a constraint: DuckDB constraints make bulk
        replaces slow and the check reports the offending numbers instead of failing blind.
        """
        name = table or self.table
        if not _IDENT.match(name):
            raise ContractError(f"nom de table invalide : {name!r}")
        cols = ",\n  ".join(
            f'"{c.name}" {c.type}{" NOT NULL" if c.required else ""}' for c in self.columns
        )
        return f'create table if not exists "{name}" (\n  {cols}\n)'


def _err(path: Path, msg: str) -> ContractError:
    return ContractError(f"{path.name} : {msg}")


def parse_contract(raw: dict, path: Path) -> Contract:
    """Validate a contract's YAML content into a :class:`Contract`."""
    for key in ("table", "grain", "key", "columns"):
        if key not in raw:
            raise _err(path, f"entrée obligatoire manquante : {key}")
    columns = []
    seen = set()
    for i, col in enumerate(raw["columns"]):
        name = col.get("name")
        if not name or not _IDENT.match(str(name)):
            raise _err(path, f"colonne n°{i + 1} : nom invalide {name!r}")
        if name in seen:
            raise _err(path, f"colonne {name} : définie deux fois")
        seen.add(name)
        ctype = str(col.get("type", "")).upper().replace(" ", "")
        if not _TYPE.match(ctype):
            raise _err(path, f"colonne {name} : type inconnu {col.get('type')!r}")
        unknown = set(col) - set(Column.__dataclass_fields__)
        if unknown:
            raise _err(path, f"colonne {name} : entrée(s) inconnue(s) {sorted(unknown)}")
        severity = col.get("severity", "fail")
        if severity not in SEVERITIES:
            raise _err(path, f"colonne {name} : sévérité {severity!r} (fail ou warn)")
        accepted = col.get("accepted_values")
        columns.append(
            Column(
                name=name,
                type=ctype,
                required=bool(col.get("required", False)),
                description=str(col.get("description", "")),
                accepted_values=tuple(accepted) if accepted is not None else None,
                min=col.get("min"),
                max=col.get("max"),
                regex=col.get("regex"),
                medical=bool(col.get("medical", False)),
                severity=severity,
                identifying=bool(col.get("identifying", False)),
            )
        )
    key = tuple(raw["key"])
    for k in key:
        if k not in seen:
            raise _err(path, f"clé : colonne inconnue {k}")
    invariants = []
    for inv in raw.get("invariants", []) or []:
        if not inv.get("name") or not inv.get("expression"):
            raise _err(path, f"invariant incomplet : {inv}")
        if inv.get("severity", "fail") not in SEVERITIES:
            raise _err(path, f"invariant {inv['name']} : sévérité {inv.get('severity')!r}")
        invariants.append(
            Invariant(
                name=inv["name"],
                expression=str(inv["expression"]),
                severity=inv.get("severity", "fail"),
                description=str(inv.get("description", "")),
            )
        )
    return Contract(
        table=raw["table"],
        layer=raw.get("layer", ""),
        description=str(raw.get("description", "")).strip(),
        grain=raw["grain"],
        key=key,
        columns=tuple(columns),
        invariants=tuple(invariants),
        key_severity=raw.get("key_severity", "fail"),
    )


@cache
def load_contract(table: str) -> Contract:
    """The contract of ``table`` from ``expectations/contracts/<table>.yml``."""
    path = CONTRACTS_DIR / f"{table}.yml"
    if not path.exists():
        raise ContractError(f"pas de contrat pour la table {table!r} ({path})")
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    contract = parse_contract(raw, path)
    if contract.table != table:
        raise _err(path, f"table {contract.table!r} déclarée dans le fichier de {table!r}")
    return contract


def all_contracts() -> list[Contract]:
    return [load_contract(p.stem) for p in sorted(CONTRACTS_DIR.glob("*.yml"))]

"""The RU catalogue: codes, exclusions and repères, validated once into typed objects.

The catalogue is versioned configuration (``config/catalogue_ru.yml``). Conditions are written
in a small, safe language: restricted SQL boolean expressions over the fields of the
``arrets`` table (plus ``score`` and ``repere_jours``), parsed with sqlglot and checked node by
node against a whitelist, then type-checked by DuckDB on an empty table of the known schema.
Only the re-generated SQL of a checked tree is ever evaluated; threshold parameters
(``$action_recente_jours``) are bound values, never pasted into the text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

ACTEURS = ("TECH", "CSAM", "ISM", "MC")
MTF_CATS = ("PSY", "RHU", "TRA", "ONC", "CAR", "INF", "GRO", "AUT")
MOTIFS_EXCLUSION = ("deces", "action_recente", "en_attente")

# The `arrets` interface of docs/architecture.md (issue 3), with the DuckDB type each field is
# checked against. tests/test_catalogue.py compares it with the arrets contract.
ARRETS_FIELDS: dict[str, str] = {
    "as_of": "DATE",
    "arret_id": "VARCHAR",
    "assure_id": "VARCHAR",
    "ORG_AFF_COD": "VARCHAR",
    "elsm": "VARCHAR",
    "drsm": "VARCHAR",
    "ARR_NUM": "VARCHAR",
    "risque": "VARCHAR",
    "debut_arret": "DATE",
    "fin_prescrite": "DATE",
    "dernier_jour_paye": "DATE",
    "jours_ij": "INTEGER",
    "montant_ij": "DOUBLE",
    "en_cours": "BOOLEAN",
    "duree_jours": "INTEGER",
    "nb_prolongations": "INTEGER",
    "prescripteur_initial": "VARCHAR",
    "PSP_SPE_COD": "INTEGER",
    "prescripteur_atypique": "BOOLEAN",
    "ratio_pairs_prescripteur": "DOUBLE",
    "prolongation_autre_prescripteur": "BOOLEAN",
    "tpt_en_cours": "BOOLEAN",
    "duree_tpt_jours": "INTEGER",
    "ald": "BOOLEAN",
    "mtf_cat": "VARCHAR",
    "deces": "BOOLEAN",
    "IJR_EMP_NUM": "VARCHAR",
    "BSE_REM_PRU": "DOUBLE",
    "sexe": "INTEGER",
    "age": "INTEGER",
    "ij_3ans": "INTEGER",
    "nb_arrets_12m": "INTEGER",
    "nb_arrets_courts_6m": "INTEGER",
    "derniere_action_dte": "DATE",
    "jours_depuis_derniere_action": "INTEGER",
    "action_mc": "BOOLEAN",
    "action_pdp": "BOOLEAN",
}
# Fields a code condition may use: the arrêt, its model score and its medical repère.
CODE_FIELDS: dict[str, str] = {**ARRETS_FIELDS, "score": "DOUBLE", "repere_jours": "INTEGER"}
# Exclusions also see the routing ledger (latest effective routing of the arrêt before D).
EXCLUSION_FIELDS: dict[str, str] = {
    **CODE_FIELDS,
    "derniere_routage_dte": "DATE",
    "jours_depuis_routage": "INTEGER",
}
# Bound parameters an exclusion may use: the [ciblage] thresholds of config/settings.toml.
EXCLUSION_PARAMETERS: dict[str, str] = {
    "action_recente_jours": "INTEGER",
    "en_attente_jours": "INTEGER",
}

_FUNCTIONS = {
    exp.Coalesce: "coalesce",
    exp.Least: "least",
    exp.Greatest: "greatest",
    exp.Abs: "abs",
}
_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Between,
    exp.In,
    exp.Is,
    exp.Null,
    exp.Boolean,
    exp.Literal,
    exp.Column,
    exp.Identifier,
    exp.Placeholder,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Neg,
    *_FUNCTIONS,
)


class CatalogueError(ValueError):
    """The catalogue is invalid; the message names the file and the code or entry."""


@dataclass(frozen=True)
class Condition:
    """A checked boolean expression: its source text, its SQL, the fields and parameters used."""

    texte: str
    sql: str
    champs: frozenset[str]
    parametres: frozenset[str]


@dataclass(frozen=True)
class CodeRU:
    code: str
    rang: int
    libelle: str
    condition: Condition
    acteur: str
    acteur_repli: str
    valide_du: dt.date | None = None
    valide_au: dt.date | None = None

    def valide_le(self, day: dt.date) -> bool:
        """True when the code is in force on ``day`` (both bounds included)."""
        return (self.valide_du is None or self.valide_du <= day) and (
            self.valide_au is None or day <= self.valide_au
        )

    @property
    def utilise_score(self) -> bool:
        return "score" in self.condition.champs


@dataclass(frozen=True)
class Exclusion:
    motif: str
    libelle: str
    condition: Condition


@dataclass(frozen=True)
class Catalogue:
    """The validated catalogue. ``codes`` are sorted by rank."""

    codes: tuple[CodeRU, ...]
    exclusions: tuple[Exclusion, ...]
    reperes: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def codes_valides(self, day: dt.date) -> tuple[CodeRU, ...]:
        return tuple(c for c in self.codes if c.valide_le(day))

    def code(self, code: str) -> CodeRU:
        for c in self.codes:
            if c.code == code:
                return c
        raise KeyError(code)


def check_expression(
    text: str, fields: dict[str, str], parameters: dict[str, str], where: str
) -> Condition:
    """Parse ``text`` and check it is a whitelisted boolean expression over ``fields``.

    ``where`` prefixes every error message (file and code). Raises :class:`CatalogueError`.
    """
    if not isinstance(text, str) or not text.strip():
        raise CatalogueError(f"{where} : condition vide")
    try:
        tree = sqlglot.parse_one(text, dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        first = str(exc).splitlines()[0]
        raise CatalogueError(f"{where} : condition illisible « {text} » ({first})") from exc
    if tree is None:
        raise CatalogueError(f"{where} : condition vide")
    champs: set[str] = set()
    params: set[str] = set()
    for node in tree.walk():
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or not isinstance(node.this, exp.Identifier):
                raise CatalogueError(
                    f"{where} : « {node.sql()} » : seuls les noms de champs simples sont permis"
                )
            name = node.name
            if name not in fields:
                raise CatalogueError(
                    f"{where} : champ inconnu « {name} » dans la condition « {text} »"
                )
            champs.add(name)
        elif isinstance(node, exp.Placeholder):
            name = node.name
            if name not in parameters:
                known = ", ".join(f"${p}" for p in parameters) or "aucun"
                raise CatalogueError(
                    f"{where} : paramètre inconnu « ${name} » (paramètres permis : {known})"
                )
            params.add(name)
        elif isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
            raise CatalogueError(f"{where} : sous-requête interdite dans « {text} »")
        elif not isinstance(node, _ALLOWED_NODES):
            if isinstance(node, exp.Func):
                allowed = ", ".join(sorted(_FUNCTIONS.values()))
                name = node.sql_name() if hasattr(node, "sql_name") else type(node).__name__
                raise CatalogueError(
                    f"{where} : fonction non permise « {name.lower()} » dans « {text} » "
                    f"(fonctions permises : {allowed})"
                )
            raise CatalogueError(
                f"{where} : construction non permise « {node.sql(dialect='duckdb')} » "
                f"({type(node).__name__}) dans « {text} »"
            )
    sql = tree.sql(dialect="duckdb")
    _check_boolean(sql, fields, parameters, params, where, text)
    return Condition(texte=text, sql=sql, champs=frozenset(champs), parametres=frozenset(params))


def _check_boolean(
    sql: str,
    fields: dict[str, str],
    parameters: dict[str, str],
    used: set[str],
    where: str,
    text: str,
) -> None:
    """Bind the expression on an empty table of the known schema; it must be BOOLEAN."""
    import duckdb

    con = duckdb.connect()
    try:
        cols = ", ".join(f'"{name}" {dtype}' for name, dtype in fields.items())
        con.execute(f"create table t ({cols})")
        values = {p: _sample_value(parameters[p]) for p in used}
        try:
            rel = con.execute(f"select ({sql}) as c from t", values)
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise CatalogueError(f"{where} : condition invalide « {text} » ({first})") from exc
        dtype = str(rel.description[0][1]).upper() if rel.description else ""
        if dtype not in ("BOOLEAN", "BOOL"):
            raise CatalogueError(
                f"{where} : la condition « {text} » n'est pas une condition vrai/faux "
                f"(elle donne une valeur de type {dtype.lower() or 'inconnu'})"
            )
    finally:
        con.close()


def _sample_value(dtype: str):
    return {"INTEGER": 0, "DOUBLE": 0.0, "VARCHAR": ""}.get(dtype, 0)


def _date(value, where: str, key: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise CatalogueError(
            f"{where} : date invalide pour {key} : {value!r} (format AAAA-MM-JJ attendu)"
        ) from exc


_CODE_KEYS = {
    "code",
    "rang",
    "libelle",
    "condition",
    "acteur",
    "acteur_repli",
    "valide_du",
    "valide_au",
}
_REQUIRED_CODE_KEYS = ("code", "rang", "libelle", "condition", "acteur", "acteur_repli")


def _parse_code(entry, i: int, name: str) -> CodeRU:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{name} : codes, entrée n°{i} : un code doit être une table de clés")
    code = entry.get("code")
    where = f"{name} : code {code}" if code else f"{name} : codes, entrée n°{i}"
    if not isinstance(code, str) or not code.strip():
        raise CatalogueError(f"{where} : clé « code » manquante ou vide")
    unknown = set(entry) - _CODE_KEYS
    if unknown:
        raise CatalogueError(f"{where} : clé(s) inconnue(s) : {', '.join(sorted(unknown))}")
    for key in _REQUIRED_CODE_KEYS:
        if entry.get(key) in (None, ""):
            raise CatalogueError(f"{where} : clé « {key} » manquante")
    rang = entry["rang"]
    if isinstance(rang, bool) or not isinstance(rang, int) or rang < 1:
        raise CatalogueError(f"{where} : rang invalide {rang!r} (entier ≥ 1 attendu)")
    for key in ("acteur", "acteur_repli"):
        if entry[key] not in ACTEURS:
            raise CatalogueError(
                f"{where} : acteur inconnu « {entry[key]} » pour {key} "
                f"(acteurs permis : {', '.join(ACTEURS)})"
            )
    if entry["acteur"] == entry["acteur_repli"]:
        raise CatalogueError(f"{where} : l'acteur de repli doit différer de l'acteur")
    du = _date(entry.get("valide_du"), where, "valide_du")
    au = _date(entry.get("valide_au"), where, "valide_au")
    if du and au and au < du:
        raise CatalogueError(
            f"{where} : dates de validité invalides (valide_au {au} avant valide_du {du})"
        )
    condition = check_expression(str(entry["condition"]), CODE_FIELDS, {}, where)
    return CodeRU(
        code=code.strip(),
        rang=rang,
        libelle=str(entry["libelle"]).strip(),
        condition=condition,
        acteur=entry["acteur"],
        acteur_repli=entry["acteur_repli"],
        valide_du=du,
        valide_au=au,
    )


def parse_catalogue(raw, path: Path | str) -> Catalogue:
    """Validate the YAML content of a catalogue file into a :class:`Catalogue`."""
    name = Path(path).name
    if not isinstance(raw, dict):
        raise CatalogueError(
            f"{name} : le catalogue doit contenir les sections codes, exclusions, reperes"
        )
    unknown = set(raw) - {"codes", "exclusions", "reperes"}
    if unknown:
        raise CatalogueError(f"{name} : section(s) inconnue(s) : {', '.join(sorted(unknown))}")
    entries = raw.get("codes")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{name} : section « codes » manquante ou vide")
    codes: list[CodeRU] = []
    seen_codes: dict[str, int] = {}
    seen_ranks: dict[int, str] = {}
    for i, entry in enumerate(entries, start=1):
        code = _parse_code(entry, i, name)
        if code.code in seen_codes:
            raise CatalogueError(
                f"{name} : code {code.code} : code en double (entrées n°{seen_codes[code.code]} et n°{i})"
            )
        if code.rang in seen_ranks:
            raise CatalogueError(
                f"{name} : code {code.code} : rang {code.rang} en double (déjà pris par {seen_ranks[code.rang]})"
            )
        seen_codes[code.code] = i
        seen_ranks[code.rang] = code.code
        codes.append(code)

    exclusions: list[Exclusion] = []
    for i, entry in enumerate(raw.get("exclusions") or [], start=1):
        if not isinstance(entry, dict):
            raise CatalogueError(f"{name} : exclusions, entrée n°{i} : table de clés attendue")
        motif = entry.get("motif")
        where = f"{name} : exclusion {motif}" if motif else f"{name} : exclusions, entrée n°{i}"
        unknown = set(entry) - {"motif", "libelle", "condition"}
        if unknown:
            raise CatalogueError(f"{where} : clé(s) inconnue(s) : {', '.join(sorted(unknown))}")
        if motif not in MOTIFS_EXCLUSION:
            raise CatalogueError(
                f"{where} : motif d'exclusion inconnu {motif!r} (motifs permis : {', '.join(MOTIFS_EXCLUSION)})"
            )
        if any(e.motif == motif for e in exclusions):
            raise CatalogueError(f"{where} : motif d'exclusion en double")
        condition = check_expression(
            str(entry.get("condition") or ""), EXCLUSION_FIELDS, EXCLUSION_PARAMETERS, where
        )
        exclusions.append(
            Exclusion(motif=motif, libelle=str(entry.get("libelle", motif)), condition=condition)
        )

    reperes_raw = raw.get("reperes") or {}
    if not isinstance(reperes_raw, dict):
        raise CatalogueError(f"{name} : section « reperes » : table catégorie → jours attendue")
    reperes: dict[str, int] = {}
    for cat, days in reperes_raw.items():
        if cat not in MTF_CATS:
            raise CatalogueError(
                f"{name} : repère de la catégorie inconnue « {cat} » (catégories : {', '.join(MTF_CATS)})"
            )
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise CatalogueError(
                f"{name} : repère {cat} invalide {days!r} (nombre de jours ≥ 1 attendu)"
            )
        reperes[cat] = days
    return Catalogue(
        codes=tuple(sorted(codes, key=lambda c: c.rang)),
        exclusions=tuple(exclusions),
        reperes=reperes,
        source=str(path),
    )

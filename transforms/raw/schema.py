"""The two input contracts as column specs (``../shared/contract/*.md``, ``docs/regles.md``).

A spec says, for one input column, how its text is read (kind), whether it is required,
its length or range constraints (``format_invalide``), its listed values (``code_inconnu``)
and its default when absent. The reference lists (IR_ASU_V, IR_NAT_V, elsm.csv) are passed
in as :class:`References`, read by the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    STR = "str"
    INT = "int"
    DEC = "dec"
    DATE = "date"
    NIR = "nir"


@dataclass(frozen=True)
class ColumnSpec:
    """One input column. Lengths are in characters; ``codes`` is the list of accepted values."""

    name: str
    kind: Kind
    required: bool = False
    max_len: int | None = None
    exact_len: int | None = None
    regex: str | None = None
    format_label: str | None = None
    int_min: int | None = None
    int_max: int | None = None
    codes: tuple | None = None
    reference: str | None = None  # name of a References attribute holding the codes
    default: str | None = None
    date_in_range: bool = True  # checked by date_hors_plage (not PRE_FIN_DTE)
    low_cardinality: bool = False  # parse distinct values only (dates and ints always are)


@dataclass(frozen=True)
class SourceSpec:
    """An extract: its name prefix, columns, key and the rules that apply to it."""

    source: str
    table: str
    prefix: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def header_required(self) -> list[str]:
        """Columns that must be in the header (BEN_NIR / BEN_NIR_PSA: at least one)."""
        return [c.name for c in self.columns if c.required]


@dataclass(frozen=True)
class References:
    """Reference code lists, read from ``config/reference`` by the flow."""

    organismes: frozenset[str] = field(default_factory=frozenset)  # elsm.csv code_organisme
    elsm: frozenset[str] = field(default_factory=frozenset)  # elsm.csv elsm
    asu_nat: frozenset[int] = field(default_factory=frozenset)  # IR_ASU_V ASU_NAT
    nat_ref: frozenset[int] = field(default_factory=frozenset)  # IR_NAT_V PRS_NAT


INT16 = (-32768, 32767)
INT32 = (-2147483648, 2147483647)

_IJ_COLUMNS = (
    ColumnSpec("LIG_NUM", Kind.STR, required=True, max_len=30),
    ColumnSpec("FLX_DIS_DTD", Kind.DATE, required=True),
    ColumnSpec(
        "ORG_AFF_COD",
        Kind.STR,
        required=True,
        regex=r"^[0-9]{3}$",
        format_label="3 chiffres",
        low_cardinality=True,
    ),
    ColumnSpec("BEN_NIR", Kind.NIR),
    ColumnSpec("BEN_NIR_PSA", Kind.STR),
    ColumnSpec("BEN_RNG_GEM", Kind.INT, int_min=1, int_max=9, default="1"),
    ColumnSpec(
        "BEN_SEX_COD", Kind.INT, required=True, codes=(1, 2), int_min=INT16[0], int_max=INT16[1]
    ),
    ColumnSpec("BEN_NAI_ANN", Kind.INT, required=True, int_min=1900, int_max=2100),
    ColumnSpec("BEN_RES_DPT", Kind.STR, required=True, exact_len=3, low_cardinality=True),
    ColumnSpec(
        "RGO_ASU_NAT",
        Kind.INT,
        required=True,
        reference="asu_nat",
        int_min=INT16[0],
        int_max=INT16[1],
    ),
    ColumnSpec("ATT_NAT", Kind.INT, codes=(1, 2, 3), int_min=INT16[0], int_max=INT16[1]),
    ColumnSpec(
        "PRS_NAT_REF",
        Kind.INT,
        required=True,
        reference="nat_ref",
        int_min=INT32[0],
        int_max=INT32[1],
    ),
    ColumnSpec("ARR_NUM", Kind.STR, max_len=20),
    ColumnSpec("ARR_DEB_DTE", Kind.DATE),
    ColumnSpec("PRE_NAT", Kind.STR, required=True, codes=("I", "P", "R")),
    ColumnSpec("PRE_PRE_DTD", Kind.DATE, required=True),
    ColumnSpec("PRE_FIN_DTE", Kind.DATE, required=True, date_in_range=False),
    ColumnSpec("PFS_PRE_NUM", Kind.STR, required=True, exact_len=11),
    ColumnSpec("PSP_SPE_COD", Kind.INT, int_min=INT16[0], int_max=INT16[1]),
    ColumnSpec("PRS_MTT_NUM", Kind.STR, exact_len=11),
    ColumnSpec("IJR_EMP_NUM", Kind.STR, exact_len=14),
    ColumnSpec("EXE_SOI_DTD", Kind.DATE, required=True),
    ColumnSpec("EXE_SOI_DTF", Kind.DATE, required=True),
    ColumnSpec("PRS_ACT_NBR", Kind.INT, required=True, int_min=INT32[0], int_max=INT32[1]),
    ColumnSpec("PRS_ACT_QTE", Kind.INT, required=True, int_min=INT32[0], int_max=INT32[1]),
    ColumnSpec("BSE_REM_PRU", Kind.DEC, required=True, low_cardinality=True),
    ColumnSpec("BSE_REM_MNT", Kind.DEC, required=True),
    ColumnSpec("TPT_IND", Kind.STR, codes=("O", "N"), default="N"),
    ColumnSpec("ALD_IND", Kind.STR, codes=("O", "N"), default="N"),
    ColumnSpec("MTF_CAT", Kind.STR, codes=("PSY", "RHU", "TRA", "ONC", "CAR", "INF", "GRO", "AUT")),
    ColumnSpec("DCD_IND", Kind.STR, codes=("O", "N"), default="N"),
)

IJ_RULES = (
    "encodage",
    "entete",
    "nombre_champs",
    "champ_obligatoire",
    "format_invalide",
    "date_invalide",
    "date_hors_plage",
    "fin_prescrite",
    "nir_exclusif",
    "nir_format",
    "nir_cle",
    "nir_sexe",
    "nir_annee",
    "periode_ordre",
    "periode_duree",
    "debut_arret_ordre",
    "quantite_periode",
    "denombrement_quantite",
    "signe_montant",
    "montant_coherent",
    "prix_unitaire",
    "code_inconnu",
    "organisme_inconnu",
    "doublon",
)

_ACTIONS_COLUMNS = (
    ColumnSpec("ACT_NUM", Kind.STR, required=True, max_len=30),
    ColumnSpec("FLX_DIS_DTD", Kind.DATE, required=True),
    ColumnSpec("ELSM", Kind.STR, required=True),
    ColumnSpec("DOSSIER_ID", Kind.STR),
    ColumnSpec(
        "ORG_AFF_COD", Kind.STR, required=True, regex=r"^[0-9]{3}$", format_label="3 chiffres"
    ),
    ColumnSpec("BEN_NIR", Kind.NIR),
    ColumnSpec("BEN_NIR_PSA", Kind.STR),
    ColumnSpec("BEN_RNG_GEM", Kind.INT, int_min=1, int_max=9, default="1"),
    ColumnSpec("ARR_NUM", Kind.STR),
    ColumnSpec("ACT_DTE", Kind.DATE, required=True),
    ColumnSpec("ACT_ACTEUR", Kind.STR, required=True, codes=("TECH", "CSAM", "ISM", "MC")),
    ColumnSpec(
        "ACT_TYP",
        Kind.STR,
        required=True,
        codes=(
            "ETUDE",
            "COURRIER_CLOE",
            "COURRIER_PDP",
            "APPEL",
            "INVITATION",
            "CONVOCATION",
            "AVIS_SUR_PIECES",
            "ECHANGE_CONFRATERNEL",
            "EMS",
            "SIGNALEMENT_SSOC",
            "SIGNALEMENT_SST",
            "RDV_LIAISON",
        ),
    ),
    ColumnSpec(
        "ACT_RES",
        Kind.STR,
        codes=(
            "NON_HONORE",
            "ARRET_JUSTIFIE",
            "REPRISE_FIXEE",
            "TPT_ACCORDE",
            "TPT_REFUSE",
            "ORIENTATION_INVALIDITE",
            "CONSOLIDATION",
            "PDP_ENGAGEE",
            "SANS_SUITE",
        ),
    ),
)

ACTIONS_RULES = (
    "encodage",
    "entete",
    "nombre_champs",
    "champ_obligatoire",
    "format_invalide",
    "date_invalide",
    "date_hors_plage",
    "nir_exclusif",
    "nir_format",
    "nir_cle",
    "code_inconnu",
    "elsm_inconnu",
    "organisme_inconnu",
    "doublon",
)

IJ_PAIEMENTS = SourceSpec(
    source="ij_paiements",
    table="lignes_ij",
    prefix="ij_paiements_",
    columns=_IJ_COLUMNS,
    key=("ORG_AFF_COD", "LIG_NUM", "FLX_DIS_DTD"),
    rules=IJ_RULES,
)

ACTIONS = SourceSpec(
    source="actions",
    table="actions",
    prefix="actions_",
    columns=_ACTIONS_COLUMNS,
    key=("ELSM", "ACT_NUM", "FLX_DIS_DTD"),
    rules=ACTIONS_RULES,
)

SOURCES = (IJ_PAIEMENTS, ACTIONS)
NIR_COLUMNS = ("BEN_NIR", "BEN_NIR_PSA")

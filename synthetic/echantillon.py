"""The generator's entry point: parameters, then chunks of typed frames with their defects.

``generer(params, reference)`` yields one ``LotFinal`` per chunk of assurés (lines and
actions with the contract columns, ``_elsm`` for routing and ``_defaut``/``_cible`` for the
defects). It reads nothing and writes nothing: ``flows/sample.py`` writes the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from synthetic.defauts import injecter_actions, injecter_ij
from synthetic.generateur import generer_lot
from synthetic.population import build_monde, elsm_from_reference

TAILLE_LOT = 50_000  # assurés per chunk: about 600 000 payment lines, a few hundred MB


@dataclass(frozen=True)
class Parametres:
    """What to generate. ``texte``: the output is CSV (text-only defects possible)."""

    n_assures: int
    debut: date
    fin: date
    elsm: tuple[str, ...]
    graine: int = 0
    taux_defauts: float = 0.0
    poids: tuple[float, ...] | None = None
    texte: bool = True
    taille_lot: int = TAILLE_LOT

    def __post_init__(self):
        if self.n_assures < 1:
            raise ValueError("le nombre d'assurés doit être au moins 1")
        if self.fin <= self.debut:
            raise ValueError("la date de fin doit suivre la date de début")
        if self.debut < date(2002, 1, 1):
            raise ValueError("la date de début doit être postérieure au 01/01/2002")
        if not 0 <= self.taux_defauts <= 0.5:
            raise ValueError("le taux de défauts doit être entre 0 et 0,5")
        if self.poids is not None and len(self.poids) != len(self.elsm):
            raise ValueError("il faut autant de poids que d'ELSM")

    @property
    def n_lots(self) -> int:
        return -(-self.n_assures // self.taille_lot)


@dataclass(frozen=True)
class LotFinal:
    lignes: pl.DataFrame
    actions: pl.DataFrame
    n_assures: int
    n_arrets: int
    defauts_ij: dict[str, int] = field(default_factory=dict)
    defauts_actions: dict[str, int] = field(default_factory=dict)


def code_absent(connus: set[str], candidats: list[str]) -> str:
    """First candidate code absent from the reference (for ``*_inconnu`` defects)."""
    for c in candidats:
        if c not in connus:
            return c
    raise ValueError("aucun code libre pour simuler un organisme ou un ELSM inconnu")


def generer(params: Parametres, reference: pl.DataFrame) -> Iterator[LotFinal]:
    """Chunks of the synthetic extracts, in order. ``reference`` is ``elsm.csv`` as a frame
    (string columns code_organisme, departement, elsm, drsm)."""
    elsm = elsm_from_reference(reference, list(params.elsm))
    monde = build_monde(elsm, params.n_assures, params.graine,
                        list(params.poids) if params.poids else None)  # fmt: skip
    org_inconnu = code_absent(set(reference["code_organisme"]), ["999", "998", "000", "990"])
    elsm_inconnu = code_absent(set(reference["elsm"]), ["99Z", "00X", "ZZ"])
    compteurs = np.zeros(600, dtype=np.int64)
    for lot in range(params.n_lots):
        first = lot * params.taille_lot
        n = min(params.taille_lot, params.n_assures - first)
        brut, compteurs = generer_lot(
            monde, params.debut, params.fin, params.graine, lot, first, n, compteurs
        )
        rng = np.random.default_rng([params.graine, 3, lot])
        lignes, d_ij = injecter_ij(brut.lignes.with_columns(pl.col("ORG_AFF_COD").alias("_caisse")), params.taux_defauts, rng, params.texte,
                                   org_inconnu)  # fmt: skip
        actions, d_act = injecter_actions(
            brut.actions, params.taux_defauts, rng, params.texte, org_inconnu, elsm_inconnu
        )
        yield LotFinal(lignes, actions, brut.n_assures, brut.n_arrets, d_ij, d_act)

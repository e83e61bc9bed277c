"""The generator's fixed world: ELSM and caisses, prescribers and employers per ELSM.

Built once per run from the seed (independent of the chunking), as numpy arrays indexed by
a global prescriber / employer number. Nothing here is a real person or company:
- RPPS numbers are ``199`` + a 7-digit serial + a Luhn digit (11 digits);
- SIRET numbers are ``99`` + an 11-digit serial + a Luhn digit (14 digits, Luhn-valid as
  real SIRETs are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from synthetic.outils import luhn_digit

# Employer sectors (internal to the generator, not a contract column) and their effect on
# the chance that an arrêt becomes long (log-odds).
SECTEURS = (
    "BTP",
    "AGROALIMENTAIRE",
    "SANTE_MEDICOSOCIAL",
    "COMMERCE",
    "SERVICES",
    "TRANSPORT",
    "ADMINISTRATION",
    "INTERIM",
)
SECTEUR_POIDS = (0.10, 0.07, 0.14, 0.17, 0.25, 0.08, 0.12, 0.07)
SECTEUR_EFFET = np.array([0.7, 0.55, 0.55, 0.1, -0.4, 0.3, -0.15, 0.25])

# Prescriber specialties (IR_SPE_V): 1 médecine générale, 33 psychiatrie, 14 rhumatologie,
# 41 chirurgie orthopédique et traumatologie, 7 gynécologie obstétrique.
SPE_MG, SPE_PSY, SPE_RHUMATO, SPE_ORTHO, SPE_GYNECO = 1, 33, 14, 41, 7

PATIENTS_PAR_MG = 150  # assurés with IJ per general practitioner (médecin traitant)
SALARIES_PAR_EMPLOYEUR = 25


class ReferenceError(ValueError):
    """An ELSM asked for is not in the reference table."""


@dataclass(frozen=True)
class Elsm:
    code: str
    drsm: str
    departement: str  # 3 characters, e.g. "031"
    caisses: tuple[str, ...]


def elsm_from_reference(reference: pl.DataFrame, codes: list[str]) -> list[Elsm]:
    """The ELSM asked for, with their caisses, from the ``elsm.csv`` reference frame
    (columns code_organisme, departement, elsm, drsm)."""
    known = set(reference["elsm"].to_list())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ReferenceError(
            f"ELSM inconnu(s) dans config/reference/elsm.csv : {', '.join(unknown)}"
        )
    out = []
    for code in codes:
        rows = reference.filter(pl.col("elsm") == code).sort("code_organisme")
        out.append(
            Elsm(
                code=code,
                drsm=rows["drsm"][0],
                departement=rows["departement"][0],
                caisses=tuple(rows["code_organisme"].to_list()),
            )
        )
    return out


@dataclass(frozen=True)
class Monde:
    """Prescribers and employers of every ELSM, indexed globally.

    Prescribers: ``pre_num`` (RPPS text), ``pre_spe`` (PSP_SPE_COD), ``pre_elsm``,
    ``pre_atypique`` (prescribes much longer arrêts than its peers). Per ELSM the GP indices
    are ``mg[e]`` with médecin-traitant weights ``mg_poids[e]``, specialists ``spe[e][code]``.
    Employers: ``emp_siret``, ``emp_secteur`` (index in SECTEURS), per ELSM ``emp[e]`` and
    ``emp_poids[e]``.
    """

    elsm: list[Elsm]
    poids_elsm: np.ndarray
    pre_num: np.ndarray
    pre_spe: np.ndarray
    pre_atypique: np.ndarray
    mg: list[np.ndarray]
    mg_poids: list[np.ndarray]
    spe: list[dict[int, np.ndarray]]
    emp_siret: np.ndarray
    emp_secteur: np.ndarray
    emp: list[np.ndarray]
    emp_poids: list[np.ndarray]
    taux_pdp: np.ndarray  # share of long arrêts that get a PDP action, per ELSM


def build_monde(
    elsm: list[Elsm], n_assures: int, graine: int, poids: list[float] | None = None
) -> Monde:
    """Draw the prescribers and employers of each ELSM, sized on its share of assurés."""
    rng = np.random.default_rng([graine, 1])
    if poids is None:
        poids = [0.6**i for i in range(len(elsm))]  # first ELSM listed is the largest
    w = np.asarray(poids, dtype=float)
    w = w / w.sum()
    spe_list, atyp, mg, mg_poids, spe = [], [], [], [], []
    emp_sect, emp, emp_poids = [], [], []
    n_pre = 0
    n_emp = 0
    for e in range(len(elsm)):
        expected = max(1.0, n_assures * w[e])
        n_mg = max(6, round(expected / PATIENTS_PAR_MG))
        counts = {
            SPE_MG: n_mg,
            SPE_PSY: max(2, n_mg // 8),
            SPE_RHUMATO: max(1, n_mg // 12),
            SPE_ORTHO: max(1, n_mg // 12),
            SPE_GYNECO: max(1, n_mg // 10),
        }
        by_spe = {}
        for code, count in counts.items():
            idx = np.arange(n_pre, n_pre + count)
            by_spe[code] = idx
            spe_list.append(np.full(count, code))
            flags = np.zeros(count, dtype=bool)
            if code == SPE_MG:
                n_atyp = max(1, round(0.06 * count))
                flags[rng.choice(count, n_atyp, replace=False)] = True
            atyp.append(flags)
            n_pre += count
        mg.append(by_spe[SPE_MG])
        # Practice sizes vary: lognormal weights for the choice of médecin traitant.
        # Atypical prescribers have large practices: their pattern is visible (≥ 20 patients).
        mg_poids.append(rng.lognormal(0.0, 0.35, n_mg) * np.where(atyp[-len(counts)], 2.0, 1.0))
        spe.append(by_spe)
        n_e = max(10, round(expected / SALARIES_PAR_EMPLOYEUR))
        emp.append(np.arange(n_emp, n_emp + n_e))
        emp_sect.append(rng.choice(len(SECTEURS), n_e, p=np.asarray(SECTEUR_POIDS)))
        emp_poids.append(rng.pareto(1.3, n_e) + 1.0)  # a few big employers
        n_emp += n_e
    serial = np.arange(n_pre, dtype=np.int64) + 1
    payload = 199 * 10**7 + serial
    pre_num = (payload * 10 + luhn_digit(payload, 10)).astype(str)
    emp_serial = 99 * 10**11 + np.arange(n_emp, dtype=np.int64) * 7 + 10001
    emp_siret = (emp_serial * 10 + luhn_digit(emp_serial, 13)).astype(str)
    return Monde(
        elsm=elsm,
        poids_elsm=w,
        pre_num=pre_num,
        pre_spe=np.concatenate(spe_list),
        pre_atypique=np.concatenate(atyp),
        mg=mg,
        mg_poids=mg_poids,
        spe=spe,
        emp_siret=emp_siret,
        emp_secteur=np.concatenate(emp_sect),
        emp=emp,
        emp_poids=emp_poids,
        taux_pdp=rng.uniform(0.5, 0.8, len(elsm)),
    )

"""Weekly routing capacities (``config/capacites.csv``), validated once at the edge.

The file has one line per ELSM and actor: ``elsm;acteur;dossiers_par_semaine`` (the number
of dossiers that actor's queue in that ELSM can take per ISO week). It is versioned
configuration: a pilot edits it, the loader refuses it whole, naming the file and every bad
line, when an ELSM is not in ``config/reference/elsm.csv``, an actor is unknown, a number is
not a non-negative integer, or an (ELSM, actor) pair appears twice. An ELSM absent from the
file has no capacity: routing sends all its dossiers to the backlog and warns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from flows.settings import ConfigError

ACTEURS = ("TECH", "CSAM", "ISM", "MC")
HEADER = ("elsm", "acteur", "dossiers_par_semaine")


@dataclass(frozen=True)
class Capacites:
    """Weekly capacity per (ELSM, actor), in dossiers per ISO week."""

    par_file: dict[tuple[str, str], int]
    source: Path

    @property
    def elsms(self) -> set[str]:
        return {elsm for elsm, _ in self.par_file}

    def rows(self) -> list[dict]:
        """One dict per line (``elsm``, ``acteur``, ``dossiers_par_semaine``), file order."""
        return [
            {"elsm": elsm, "acteur": acteur, "dossiers_par_semaine": n}
            for (elsm, acteur), n in self.par_file.items()
        ]


def known_elsms(reference: Path) -> set[str]:
    """ELSM codes of the reference table ``elsm.csv`` (column ``elsm``)."""
    try:
        with reference.open(encoding="utf-8", newline="") as fh:
            return {row["elsm"].strip() for row in csv.DictReader(fh, delimiter=";")}
    except FileNotFoundError as exc:
        raise ConfigError(f"référentiel des ELSM introuvable : {reference}") from exc
    except KeyError as exc:
        raise ConfigError(f"{reference} : colonne « elsm » manquante") from exc


def parse_capacites(text: str, source: Path, elsms: set[str]) -> Capacites:
    """Validate the text of a capacity file into :class:`Capacites`.

    Blank lines are ignored. Every error is collected; the :class:`ConfigError` lists them
    all, one per line, each as ``<file>, ligne <n> : <problem>``.
    """
    name = source.name
    lines = text.lstrip("\ufeff").splitlines()
    errors: list[str] = []
    if not lines or tuple(f.strip() for f in lines[0].split(";")) != HEADER:
        raise ConfigError(
            f"{name}, ligne 1 : en-tête attendu « {';'.join(HEADER)} » "
            f"(lu : « {lines[0] if lines else ''} »)"
        )
    par_file: dict[tuple[str, str], int] = {}
    first_seen: dict[tuple[str, str], int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{name}, ligne {number}"
        fields = [f.strip() for f in line.split(";")]
        if len(fields) != len(HEADER):
            errors.append(f"{where} : {len(fields)} champ(s) au lieu de 3 ({line!r})")
            continue
        elsm, acteur, nombre = fields
        ok = True
        if elsm not in elsms:
            errors.append(f"{where} : ELSM inconnu « {elsm} » (absent du référentiel elsm.csv)")
            ok = False
        if acteur not in ACTEURS:
            errors.append(f"{where} : acteur inconnu « {acteur} » (attendu : {', '.join(ACTEURS)})")
            ok = False
        if not nombre.isdigit() or not nombre.isascii():
            errors.append(
                f"{where} : dossiers_par_semaine doit être un entier positif ou nul "
                f"(lu : « {nombre} »)"
            )
            ok = False
        if not ok:
            continue
        key = (elsm, acteur)
        if key in first_seen:
            errors.append(
                f"{where} : doublon de la ligne {first_seen[key]} (ELSM {elsm}, acteur {acteur})"
            )
            continue
        first_seen[key] = number
        par_file[key] = int(nombre)
    if errors:
        raise ConfigError("fichier de capacités invalide :\n" + "\n".join(errors))
    return Capacites(par_file=par_file, source=source)


def load_capacites(path: Path, reference: Path) -> Capacites:
    """Read and validate the capacity file against the ELSM reference table."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"fichier de capacités introuvable : {path}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name} : le fichier doit être encodé en UTF-8 ({exc})") from exc
    return parse_capacites(text, path, known_elsms(reference))

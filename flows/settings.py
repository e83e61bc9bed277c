"""Settings: where the data lives and the pipeline's thresholds, validated once at the edge.

The thresholds come from ``config/settings.toml`` (versioned data). The data folder comes from
the ``--data`` option, else the ``RU_DATA`` environment variable, else the settings file.
Secrets (the pseudonymisation key) come only from the environment.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = Path(os.environ.get("RU_CONFIG", REPO_ROOT / "config"))
REFERENCE_DIR = CONFIG_DIR / "reference"
SAMPLE_DIR = REPO_ROOT / "data" / "sample"

PSEUDO_KEY_ENV = "RU_CLE_PSEUDO"
DATA_ENV = "RU_DATA"
# The demo key is public: `ru demo` uses it on synthetic data only, and says so.
DEMO_PSEUDO_KEY = "cle-de-demonstration-ru-ij-ne-pas-utiliser-en-production"


class ConfigError(ValueError):
    """A configuration file is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class Perimetre:
    rgo_asu_nat: tuple[int, ...]
    prs_nat_ref: tuple[int, ...]


@dataclass(frozen=True)
class ArretsParams:
    ecart_max_jours: int
    fenetre_historique_jours: int
    fenetre_ij_3ans_jours: int
    fenetre_arrets_12m_jours: int
    fenetre_arrets_courts_jours: int
    duree_arret_court_max_jours: int


@dataclass(frozen=True)
class PrescripteursParams:
    fenetre_jours: int
    patients_min: int
    ratio_atypique: float


@dataclass(frozen=True)
class CiblageParams:
    action_recente_jours: int
    en_attente_jours: int


@dataclass(frozen=True)
class Settings:
    """Typed thresholds of ``config/settings.toml``."""

    dossier_donnees: Path
    perimetre: Perimetre
    arrets: ArretsParams
    prescripteurs: PrescripteursParams
    ciblage: CiblageParams
    source: Path = field(default=CONFIG_DIR / "settings.toml")


def _section(raw: dict, name: str, path: Path) -> dict:
    if name not in raw or not isinstance(raw[name], dict):
        raise ConfigError(f"{path} : section [{name}] manquante")
    return raw[name]


def _build(cls, section: dict, name: str, path: Path):
    expected = set(cls.__dataclass_fields__)
    unknown = set(section) - expected
    missing = expected - set(section)
    if unknown:
        raise ConfigError(f"{path} : [{name}] clé(s) inconnue(s) : {', '.join(sorted(unknown))}")
    if missing:
        raise ConfigError(f"{path} : [{name}] clé(s) manquante(s) : {', '.join(sorted(missing))}")
    values = {}
    for key, f in cls.__dataclass_fields__.items():
        value = section[key]
        if f.type in ("int", "float") and (isinstance(value, bool) or value < 0):
            raise ConfigError(f"{path} : [{name}] {key} doit être un nombre positif ({value!r})")
        if f.type.startswith("tuple"):
            value = tuple(int(v) for v in value)
        values[key] = value
    return cls(**values)


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the settings file (default ``config/settings.toml``)."""
    path = path or CONFIG_DIR / "settings.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"fichier de paramètres introuvable : {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} : TOML invalide ({exc})") from exc
    donnees = _section(raw, "donnees", path)
    return Settings(
        dossier_donnees=Path(donnees.get("dossier", "data/local")),
        perimetre=_build(Perimetre, _section(raw, "perimetre", path), "perimetre", path),
        arrets=_build(ArretsParams, _section(raw, "arrets", path), "arrets", path),
        prescripteurs=_build(
            PrescripteursParams, _section(raw, "prescripteurs", path), "prescripteurs", path
        ),
        ciblage=_build(CiblageParams, _section(raw, "ciblage", path), "ciblage", path),
        source=path,
    )


@dataclass(frozen=True)
class DataPaths:
    """The layout of a data folder. Every command works inside one of these."""

    root: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def identite(self) -> Path:
        """Separate identity store: the only place with clear NIRs."""
        return self.root / "identite" / "identite.duckdb"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def checks(self) -> Path:
        return self.root / "controles"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def rapports(self) -> Path:
        return self.root / "rapports"

    @property
    def modeles(self) -> Path:
        return self.root / "modeles"

    @property
    def runs(self) -> Path:
        return self.root / "executions"

    @property
    def landing(self) -> Path:
        return self.root / "arrivee"

    def ensure(self) -> DataPaths:
        self.root.mkdir(parents=True, exist_ok=True)
        return self


def resolve_data_dir(option: Path | None, settings: Settings | None = None) -> DataPaths:
    """The data folder (absolute): ``--data``, else ``RU_DATA``, else the settings file's value,
    relative paths taken from the current directory."""
    # Absolute from here on: libraries given sub-folders (GX Data Docs, Prefect's home) need it.
    if option is not None:
        return DataPaths(Path(option).resolve())
    env = os.environ.get(DATA_ENV)
    if env:
        return DataPaths(Path(env).resolve())
    settings = settings or load_settings()
    return DataPaths(settings.dossier_donnees.resolve())


def pseudo_key(allow_demo: bool = False) -> tuple[bytes, bool]:
    """The HMAC key for NIR pseudonymisation and whether it is the public demo key.

    Refuses to run without ``RU_CLE_PSEUDO`` unless ``allow_demo`` (``ru demo`` only).
    """
    value = os.environ.get(PSEUDO_KEY_ENV)
    if value:
        return value.encode("utf-8"), False
    if allow_demo:
        return DEMO_PSEUDO_KEY.encode("utf-8"), True
    raise ConfigError(
        f"la variable d'environnement {PSEUDO_KEY_ENV} n'est pas définie : elle porte la clé "
        "secrète de pseudonymisation des NIR. Définissez-la (par exemple "
        f"`export {PSEUDO_KEY_ENV}=$(cat /chemin/vers/cle)`) ; seule `ru demo` utilise une clé "
        "de démonstration."
    )

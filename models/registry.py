"""Model artifacts on disk: one folder per version, a pointer to the promoted one.

Layout under ``DataPaths.modeles / "chronicite"``::

    <version>/model.skops      the fitted pipeline, saved with skops (never pickle)
    <version>/metadata.json    features and types, window, snapshot dates, metrics, versions
    <version>/carte_modele.md  the French model card
    promu.json                 {"version": …, "promu_le": …, "motif": …}

Loading checks that the artifact holds only the scikit-learn and numpy types this project
saves (skops refuses anything else) and that the metadata belongs to it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_NAME = "chronicite"
POINTER = "promu.json"
ARTIFACT = "model.skops"
METADATA = "metadata.json"
CARD = "carte_modele.md"
# The types the chronicity pipeline is made of; skops loads nothing else.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.float64",
        "numpy.int64",
        "numpy.random.mtrand.RandomState",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._encoders.OrdinalEncoder",
        "sklearn.utils._bunch.Bunch",
        "builtins.slice",
        "collections.OrderedDict",
        # ColumnTransformer keeps its passthrough validation as partial(check_array, …).
        "functools.partial",
        "sklearn.utils.validation.check_array",
    }
)


class ModelError(RuntimeError):
    """A model artifact is missing, refused or inconsistent; the message says which."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: Any
    metadata: dict
    path: Path


def model_root(modeles: Path) -> Path:
    return Path(modeles) / MODEL_NAME


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def save_version(modeles: Path, version: str, pipeline: Any, metadata: dict, card: str) -> Path:
    """Write a version folder (replacing one of the same name, e.g. a re-run of the same
    date on the same data). Written to a temporary folder first, then renamed."""
    import skops.io as sio

    root = model_root(modeles)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    tmp = root / f".{version}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    sio.dump(pipeline, tmp / ARTIFACT)
    (tmp / METADATA).write_text(
        json.dumps(metadata, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )
    (tmp / CARD).write_text(card, encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    return final


def promote(modeles: Path, version: str, motif: str, when: str) -> None:
    """Point ``promu.json`` at ``version``."""
    root = model_root(modeles)
    if not (root / version / ARTIFACT).exists():
        raise ModelError(f"version de modèle inconnue : {version}")
    _write_atomic(
        root / POINTER,
        json.dumps(
            {"version": version, "promu_le": when, "motif": motif}, ensure_ascii=False, indent=2
        ),
    )


def promoted_version(modeles: Path) -> str | None:
    """The promoted version, or None when no model has been promoted yet."""
    pointer = model_root(modeles) / POINTER
    if not pointer.exists():
        return None
    try:
        return str(json.loads(pointer.read_text(encoding="utf-8"))["version"])
    except (ValueError, KeyError) as exc:
        raise ModelError(f"{pointer} illisible : {exc}") from exc


def load_version(modeles: Path, version: str) -> LoadedModel:
    """Load a version's pipeline and metadata; refuse an artifact with unexpected types."""
    import skops.io as sio

    folder = model_root(modeles) / version
    artifact = folder / ARTIFACT
    if not artifact.exists() or not (folder / METADATA).exists():
        raise ModelError(f"modèle {version} incomplet ou absent : {folder}")
    metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
    if metadata.get("version") != version:
        raise ModelError(f"{folder / METADATA} : décrit la version {metadata.get('version')!r}")
    untrusted = sio.get_untrusted_types(file=artifact)
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise ModelError(
            f"{artifact} : types non reconnus dans l'artefact, chargement refusé : {', '.join(refused)}"
        )
    pipeline = sio.load(artifact, trusted=list(untrusted))
    steps = [name for name, _ in getattr(pipeline, "steps", [])]
    if type(pipeline).__name__ != "Pipeline" or steps != ["encodage", "modele"]:
        raise ModelError(
            f"{artifact} : n'est pas un pipeline de chronicité (encodage + modèle) : "
            f"{type(pipeline).__name__} {steps}"
        )
    return LoadedModel(version=version, pipeline=pipeline, metadata=metadata, path=folder)


def load_promoted(modeles: Path) -> LoadedModel | None:
    """The promoted model, or None when none has been promoted."""
    version = promoted_version(modeles)
    if version is None:
        return None
    return load_version(modeles, version)

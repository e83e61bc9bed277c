"""``ru export``: the per-ELSM routing files of a night (spec §6).

For each ELSM routed at D, the folder ``exports/<AAAA-MM-JJ>/<elsm>/`` holds one CSV per
queue (``routage_<elsm>_<AAAAMMJJ>_<acteur>.csv``) and one for the backlog (``…_attente.csv``),
a workbook (``routage_<elsm>_<AAAAMMJJ>.xlsx``, one sheet per queue and one for the backlog),
the analysts' Parquet (``routage_<elsm>_<AAAAMMJJ>.parquet``: no clear NIR, no medical
column) and ``manifest.json``. The clear NIR is read from the identity store here and
nowhere else.

The folder is written whole into a hidden sibling, then swapped in by renaming: a crash
leaves the previous folder as it was; a re-run replaces it whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli_common import AsOfOption, DataOption, fail
from flows.console import out
from flows.settings import CONFIG_DIR, REFERENCE_DIR, ConfigError, DataPaths, resolve_data_dir
from flows.warehouse import WarehouseError, default_as_of, step_done, warehouse

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger("ru.export")

SHEET_NAMES = {"TECH": "TECH", "CSAM": "CSAM", "ISM": "ISM", "MC": "MC", "attente": "En attente"}


@dataclass
class ExportSummary:
    """What one export wrote."""

    as_of: date
    dossier: str
    elsm: list[str] = field(default_factory=list)
    fichiers: int = 0
    lignes_par_file: dict[str, int] = field(default_factory=dict)
    nir_manquants: int = 0
    duree_s: float = 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def _pipeline_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ru-ij")
    except PackageNotFoundError:
        return "inconnue"


def _model_version(paths: DataPaths) -> str | None:
    """The promoted chronicity model's version (``modeles/chronicite/promu.json``), if any.

    It is the model ``ru target`` scored with, unless a model was promoted in between.
    """
    from models.registry import promoted_version

    return promoted_version(paths.modeles)


def _labels() -> dict[str, str]:
    """Code → label from the RU catalogue (``config/catalogue_ru.yml``, ``ru target``'s loader)."""
    from flows.target import load_catalogue

    return {c.code: c.libelle for c in load_catalogue().codes}


def _known_elsms() -> set[str]:
    from flows.capacites import known_elsms

    return known_elsms(REFERENCE_DIR / "elsm.csv")


def _capacity_elsms() -> set[str]:
    from flows.capacites import load_capacites

    return load_capacites(CONFIG_DIR / "capacites.csv", REFERENCE_DIR / "elsm.csv").elsms


def _read_inputs(
    paths: DataPaths, as_of: date, elsm: str | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The night's ledger rows, their arrêts at D and the code's actors (ciblage) at D."""
    from flows.route import has_table

    where = "as_of = $as_of" + (" and elsm = $elsm" if elsm else "")
    params: dict = {"as_of": as_of} | ({"elsm": elsm} if elsm else {})
    with warehouse(paths, read_only=True) as con:
        for table, step in (("routage", "route"), ("arrets", "build"), ("ciblage", "target")):
            if not has_table(con, table):
                raise WarehouseError(f"table {table} absente : lancez d'abord `ru {step}`.")
        if not step_done(con, "orientation", as_of):
            raise WarehouseError(
                f"aucune orientation au {as_of:%d/%m/%Y} : lancez d'abord "
                f"`ru route --as-of {as_of}`."
            )
        routage = con.sql(
            f"select * from routage where {where} order by elsm, acteur, rang_file",
            params=params,
        ).pl()
        night = f"select arret_id from routage where {where}"
        arrets = con.sql(
            f"select * from arrets where as_of = $as_of and arret_id in ({night})",
            params=params,
        ).pl()
        ciblage = con.sql(
            "select arret_id, acteur, acteur_repli from ciblage "
            f"where as_of = $as_of and arret_id in ({night})",
            params=params,
        ).pl()
    return routage, arrets, ciblage


def _read_nir(paths: DataPaths, assure_ids: pl.Series) -> pl.DataFrame:
    """Clear NIR and rang gémellaire of the given assurés, from the identity store."""
    import polars as pl

    empty = pl.DataFrame(
        schema={"assure_id": pl.String, "BEN_NIR": pl.String, "BEN_RNG_GEM": pl.Int16}
    )
    if not paths.identite.exists():
        log.warning(
            "magasin d'identité absent (%s) : les exports n'auront pas de NIR", paths.identite
        )
        return empty
    from flows.warehouse import identity_store

    wanted = pl.DataFrame({"assure_id": assure_ids.unique().sort()})
    with identity_store(paths, read_only=True) as con:
        con.register("voulus", wanted)
        return con.sql(
            "select i.assure_id, i.BEN_NIR, i.BEN_RNG_GEM from identite as i "
            "join voulus using (assure_id) order by i.assure_id, i.premiere_vue"
        ).pl()


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _render_elsm(dossiers_elsm: pl.DataFrame, elsm: str, as_of: date) -> dict[str, bytes]:
    """File name → bytes of one ELSM's folder (manifest excluded), in a fixed order."""
    from transforms.exports import render
    from transforms.exports.queues import analyst_frame, file_name, queue_frames

    frames = queue_frames(dossiers_elsm)
    files = {file_name(elsm, as_of, q, "csv"): render.csv_bytes(f) for q, f in frames.items()}
    files[file_name(elsm, as_of, "", "xlsx")] = render.xlsx_bytes(
        {SHEET_NAMES[q]: f for q, f in frames.items()}, as_of
    )
    files[file_name(elsm, as_of, "", "parquet")] = render.parquet_bytes(
        analyst_frame(dossiers_elsm)
    )
    return files


def _recover(target: Path) -> None:
    """Undo what an interrupted swap left: restore ``.old`` if the folder is missing, drop
    half-written temporary folders."""
    parent = target.parent
    if not parent.exists():
        return
    olds = sorted(parent.glob(f".{target.name}.old-*"))
    if olds and not target.exists():
        olds[-1].rename(target)
        log.warning("dossier %s restauré depuis une exportation interrompue", target)
    for leftover in [*parent.glob(f".{target.name}.old-*"), *parent.glob(f".{target.name}.tmp-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def _write_folder(target: Path, files: dict[str, bytes], manifest: dict) -> None:
    """Write ``files`` and ``manifest.json`` into ``target``, replacing it whole, atomically
    for readers: everything goes to a temporary sibling, which is then renamed over."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    tmp.mkdir()
    try:
        entries = []
        for name, data in files.items():
            _write_file(tmp / name, data)
            lines = manifest["lignes"].get(name)
            entries.append(
                {"nom": name, "lignes": lines, "octets": len(data), "sha256": _sha256(data)}
            )
        body = {**{k: v for k, v in manifest.items() if k != "lignes"}, "fichiers": entries}
        _write_file(
            tmp / "manifest.json",
            (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        )
        if target.exists():
            target.rename(old)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_at(paths: DataPaths, as_of: date, elsm: str | None = None) -> ExportSummary:
    """Write the export folders of the night ``as_of`` (all ELSMs, or only ``elsm``).

    Without ``elsm``: one folder per ELSM of the night's ledger or of the capacity file
    (empty files when it has no dossier), and the folders of other ELSMs are removed, so
    ``exports/<D>/`` mirrors the ledger.
    """
    import polars as pl

    from transforms.exports.queues import QUEUES, dossiers, file_name

    started = time.perf_counter()
    if elsm is not None and elsm not in _known_elsms():
        raise ConfigError(f"ELSM inconnu : {elsm} (absent de config/reference/elsm.csv)")
    routage, arrets, ciblage = _read_inputs(paths, as_of, elsm)
    identite = _read_nir(paths, routage.get_column("assure_id"))
    table = dossiers(routage, arrets, identite, ciblage, _labels())
    if elsm is not None:
        elsms = [elsm]
    else:
        # Every ELSM with a capacity gets its folder, with empty files on a night without
        # dossiers: "nothing for you tonight" rather than a missing folder.
        elsms = sorted(set(table.get_column("elsm").to_list()) | _capacity_elsms())
    day_dir = paths.exports / f"{as_of:%Y-%m-%d}"
    common = {
        "date_arrete": as_of.isoformat(),
        "semaine_iso": routage.get_column("semaine_iso").first() if routage.height else None,
        "version_pipeline": _pipeline_version(),
        "version_modele": _model_version(paths),
    }
    summary = ExportSummary(as_of=as_of, dossier=str(day_dir), elsm=elsms)
    missing = table.filter(pl.col("nir").is_null())
    summary.nir_manquants = missing.height
    if missing.height:
        log.warning(
            "%d dossier(s) sans NIR dans le magasin d'identité (assuré pseudonymisé à la "
            "source ?) : colonne NIR vide",
            missing.height,
        )
    for code in elsms:
        part = table.filter(pl.col("elsm") == code)
        files = _render_elsm(part, code, as_of)
        counts = part.group_by("file").len()
        per_queue = dict(zip(counts.get_column("file"), counts.get_column("len"), strict=True))
        lignes = {file_name(code, as_of, q, "csv"): per_queue.get(q, 0) for q in QUEUES}
        lignes[file_name(code, as_of, "", "xlsx")] = part.height
        lignes[file_name(code, as_of, "", "parquet")] = part.height
        manifest = {
            "elsm": code,
            **common,
            "dossiers": {q: per_queue.get(q, 0) for q in QUEUES},
            "genere_le": datetime.now(UTC).isoformat(timespec="seconds"),
            "lignes": lignes,
        }
        _write_folder(day_dir / code, files, manifest)
        summary.fichiers += len(files) + 1
        for q in QUEUES:
            summary.lignes_par_file[q] = summary.lignes_par_file.get(q, 0) + per_queue.get(q, 0)
    if elsm is None and day_dir.exists():
        for stale in day_dir.iterdir():
            if stale.is_dir() and not stale.name.startswith(".") and stale.name not in elsms:
                shutil.rmtree(stale)
                log.info("dossier %s retiré : plus aucune orientation pour cet ELSM", stale)
    summary.duree_s = round(time.perf_counter() - started, 3)
    return summary


def export_cmd(
    as_of: AsOfOption = None,
    elsm: Annotated[
        str | None,
        typer.Option("--elsm", help="N'exporter que cet ELSM (code de config/reference/elsm.csv)."),
    ] = None,
    data: DataOption = None,
) -> None:
    """Écrit les fichiers d'orientation de la nuit D, un dossier par ELSM.

    exports/<AAAA-MM-JJ>/<elsm>/ : un CSV par file (TECH, CSAM, ISM, MC) et un pour
    l'attente, un classeur XLSX (un onglet par file), un Parquet pour les analystes et
    manifest.json. Les colonnes médicales ne figurent que dans les fichiers ISM et MC.
    Relancer remplace le dossier en entier.
    """
    from transforms.catalogue import CatalogueError

    paths = resolve_data_dir(data)
    try:
        if as_of is None:
            with warehouse(paths, read_only=True) as con:
                day = default_as_of(con)
        else:
            day = as_of.date()
        summary = export_at(paths, day, elsm)
    except (CatalogueError, ConfigError, WarehouseError) as exc:
        fail(str(exc))
    out.print(
        f"Exports du {summary.as_of:%d/%m/%Y} : {len(summary.elsm)} ELSM "
        f"({', '.join(summary.elsm)}), {summary.fichiers} fichier(s) dans {summary.dossier}"
    )
    for queue, n in summary.lignes_par_file.items():
        out.print(f"  {queue:<8} {n}")
    if summary.nir_manquants:
        out.print(f"[yellow]Attention :[/] {summary.nir_manquants} dossier(s) sans NIR.")

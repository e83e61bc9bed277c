"""``ru sample``: write synthetic nightly extracts (IJ payments and actions) to a folder.

Generation is pure (``synthetic/``); this module only routes each chunk's lines to their
files and writes them: one file per night and per caisse (per ELSM for actions) for the last
``nuits`` days, monthly history files before, named as the contracts say
(``ij_paiements_<AAAAMMJJ>_<code_organisme>.csv[.gz]|.parquet``,
``actions_<AAAAMMJJ>_<elsm>.csv|.parquet``; the date is the max FLX_DIS_DTD of the file's
lines). Next to them: ``defauts.json`` (defects injected, per extract and rule) and
``generation.json`` (parameters and counts).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli_common import fail
from flows.settings import REFERENCE_DIR

if TYPE_CHECKING:
    import polars as pl

    from synthetic.echantillon import Parametres

log = logging.getLogger("ru.sample")

PREFIXES = ("ij_paiements_", "actions_")
MANIFESTE_DEFAUTS = "defauts.json"
MANIFESTE_GENERATION = "generation.json"


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"


class Compression(StrEnum):
    aucun = "aucun"
    historique = "historique"
    tout = "tout"


class Encodage(StrEnum):
    cp1252 = "cp1252"
    utf8 = "utf-8"
    utf8_bom = "utf-8-sig"


@dataclass
class SampleSummary:
    """What ``generate_sample`` wrote: counts, files, defects per rule, duration."""

    dossier: str
    assures: int = 0
    arrets: int = 0
    lignes_ij: int = 0
    actions: int = 0
    fichiers: list[str] = field(default_factory=list)
    defauts: dict[str, dict[str, int]] = field(default_factory=dict)
    duree_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_reference(path: Path = REFERENCE_DIR / "elsm.csv") -> pl.DataFrame:
    """``elsm.csv`` (``;``, CRLF) with every column as text."""
    import polars as pl

    return pl.read_csv(path, separator=";", infer_schema=False)


@dataclass
class _File:
    kind: str  # "ij_paiements" | "actions"
    code: str  # caisse or ELSM
    nightly_day: date | None  # None for a monthly history file
    part: Path
    raw: Any = None  # the open .part file (CSV), or None
    handle: Any = None  # what rows are written to: the file, a GzipFile or a ParquetWriter
    max_day: date | None = None
    rows: int = 0


class _Writer:
    """Open output files, appended to chunk after chunk, renamed when closed."""

    def __init__(self, out: Path, fmt: Format, gz: Compression, encodage: Encodage, texte_cols):
        self.out = out
        self.fmt = fmt
        self.gz = gz
        self.encodage = encodage
        self.cols = texte_cols  # {"ij_paiements": (...), "actions": (...)}
        self.files: dict[tuple[str, str, str], _File] = {}

    def _compress(self, nightly: bool) -> bool:
        if self.fmt is Format.parquet:
            return False
        return self.gz is Compression.tout or (self.gz is Compression.historique and not nightly)

    def _open(self, kind: str, code: str, period: str, nightly_day: date | None) -> _File:
        key = (kind, code, period)
        f = self.files.get(key)
        if f is None:
            f = _File(kind, code, nightly_day, self.out / f".{kind}_{period}_{code}.part")
            if self.fmt is Format.csv:
                f.raw = f.handle = f.part.open("wb")
                if self._compress(nightly_day is not None):
                    # no name and no time in the gzip header: same bytes on every run
                    f.handle = gzip.GzipFile(filename="", mode="wb", fileobj=f.raw, mtime=0)
            self.files[key] = f
        return f

    def write(self, kind: str, frame: pl.DataFrame, code_col: str, cutoff: date) -> None:
        """Append a chunk's rows to their files (by code, and by night or month).

        Rows go in frame order; each run of consecutive rows bound for the same file is
        written as one zero-copy slice (the generator sorts rows by code and date, so runs
        are long; any order stays correct).
        """
        import numpy as np

        if frame.height == 0:
            return
        days = frame["FLX_DIS_DTD"].to_numpy().astype("datetime64[D]")
        nightly = days >= np.datetime64(cutoff, "D")
        months = days.astype("datetime64[M]")
        period = np.where(nightly, days.astype(np.int64), months.astype(np.int64) + 10**6)
        codes = frame[code_col]
        new_code = (codes != codes.shift(1)).fill_null(True).to_numpy()
        starts = np.flatnonzero(new_code | np.r_[True, period[1:] != period[:-1]])
        ends = np.r_[starts[1:], frame.height]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            code = codes[start]
            if nightly[start]:
                day = days[start].astype(object)
                key = f"{day:%Y%m%d}"
            else:
                day = None
                key = str(months[start]).replace("-", "")
            f = self._open(kind, code, key, day)
            run = frame.slice(start, end - start)
            top = days[start:end].max().astype(object)
            f.max_day = top if f.max_day is None or top > f.max_day else f.max_day
            self._append(f, run)
            f.rows += run.height

    def _append(self, f: _File, group: pl.DataFrame) -> None:
        from synthetic.texte import remplacer_sentinelles

        cols = self.cols[f.kind]
        if self.fmt is Format.parquet:
            import pyarrow.parquet as pq

            table = group.select(cols).to_arrow()
            if f.handle is None:
                f.handle = pq.ParquetWriter(str(f.part), table.schema, compression="zstd")
            f.handle.write_table(table)
            return
        buf = io.BytesIO()
        if f.rows == 0 and self.encodage is Encodage.utf8_bom:
            buf.write("\ufeff".encode())
        # No field contains ';' or '"' except the extra field of a nombre_champs defect,
        # which must stay unquoted: no quoting at all.
        group.select(cols).write_csv(
            buf,
            separator=";",
            line_terminator="\r\n" if self.encodage is Encodage.cp1252 else "\n",
            include_header=f.rows == 0,
            date_format="%d/%m/%Y",
            decimal_comma=True,
            float_precision=2,
            null_value="",
            quote_style="never",
        )
        data = remplacer_sentinelles(buf.getvalue())
        if self.encodage is Encodage.cp1252 and not data.isascii():
            data = data.decode("utf-8").encode("cp1252")
        f.handle.write(data)

    def close(self) -> list[Path]:
        """Close every file and give it its final name (date = max FLX_DIS_DTD)."""
        final = []
        for f in self.files.values():
            f.handle.close()
            if f.raw is not None and f.raw is not f.handle:
                f.raw.close()
            if self.fmt is Format.parquet:
                ext = ".parquet"
            else:
                ext = ".csv.gz" if self._compress(f.nightly_day is not None) else ".csv"
            day = f.nightly_day or f.max_day
            path = self.out / f"{f.kind}_{day:%Y%m%d}_{f.code}{ext}"
            f.part.replace(path)
            final.append(path)
        return sorted(final)


def existing_outputs(out: Path) -> list[Path]:
    """Extract files and manifests of an earlier run in ``out``."""
    if not out.is_dir():
        return []
    return sorted(
        p
        for p in out.iterdir()
        if p.name.startswith(PREFIXES)
        or p.name in (MANIFESTE_DEFAUTS, MANIFESTE_GENERATION)
        or (p.name.startswith(".") and p.name.endswith(".part"))
    )


def generate_sample(
    out: Path,
    params: Parametres,
    *,
    fmt: Format = Format.csv,
    nuits: int = 28,
    compression: Compression = Compression.aucun,
    encodage: Encodage = Encodage.cp1252,
    ecraser: bool = False,
    reference: pl.DataFrame | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SampleSummary:
    """Generate the synthetic extracts of ``params`` into ``out``.

    Raises ``FileExistsError`` when ``out`` already holds extracts and ``ecraser`` is false.
    ``on_progress(n)`` is called with the number of assurés done after each chunk.
    """
    from datetime import timedelta

    from synthetic.defauts import REGLES_ACTIONS, REGLES_IJ, REGLES_TEXTE
    from synthetic.echantillon import generer
    from synthetic.generateur import COLONNES_ACTIONS, COLONNES_IJ
    from synthetic.population import elsm_from_reference

    t0 = time.perf_counter()
    reference = reference if reference is not None else read_reference()
    elsm_from_reference(reference, list(params.elsm))  # unknown ELSM: fail before writing
    old = existing_outputs(out)
    if old and not ecraser:
        raise FileExistsError(
            f"{out} contient déjà {len(old)} fichier(s) d'extraction ou manifeste(s) "
            "(relancer avec --ecraser pour les remplacer)"
        )
    for p in old:
        p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out, fmt, compression, encodage,
                     {"ij_paiements": COLONNES_IJ, "actions": COLONNES_ACTIONS})  # fmt: skip
    cutoff = params.fin - timedelta(days=nuits - 1) if nuits > 0 else date.max
    summary = SampleSummary(dossier=str(out))
    texte = fmt is Format.csv
    defauts = {
        "ij_paiements": {r: 0 for r in REGLES_IJ if texte or r not in REGLES_TEXTE},
        "actions": {r: 0 for r in REGLES_ACTIONS if texte or r not in REGLES_TEXTE},
    }
    try:
        for lot in generer(params, reference):
            writer.write("ij_paiements", lot.lignes, "_caisse", cutoff)
            writer.write("actions", lot.actions, "_elsm", cutoff)
            summary.assures += lot.n_assures
            summary.arrets += lot.n_arrets
            summary.lignes_ij += lot.lignes.height
            summary.actions += lot.actions.height
            for k, v in lot.defauts_ij.items():
                defauts["ij_paiements"][k] += v
            for k, v in lot.defauts_actions.items():
                defauts["actions"][k] += v
            if on_progress is not None:
                on_progress(lot.n_assures)
    finally:
        files = writer.close()
    summary.fichiers = [p.name for p in files]
    summary.defauts = defauts
    (out / MANIFESTE_DEFAUTS).write_text(
        json.dumps(defauts, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    generation = {
        "parametres": {
            "assures": params.n_assures,
            "debut": params.debut.isoformat(),
            "fin": params.fin.isoformat(),
            "elsm": list(params.elsm),
            "graine": params.graine,
            "taux_defauts": params.taux_defauts,
            "format": fmt.value,
            "nuits": nuits,
            "gzip": compression.value,
            "encodage": encodage.value,
        },
        "assures": summary.assures,
        "arrets": summary.arrets,
        "lignes_ij": summary.lignes_ij,
        "actions": summary.actions,
        "fichiers": len(files),
    }
    (out / MANIFESTE_GENERATION).write_text(
        json.dumps(generation, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    summary.duree_s = round(time.perf_counter() - t0, 3)
    return summary


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} : date invalide « {text} » (format attendu AAAA-MM-JJ)")


def sample(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "--sortie",
            help="Dossier où écrire les fichiers (créé au besoin), par exemple le dossier d'arrivée du flux nocturne.",
            show_default=False,
        ),
    ],
    assures: Annotated[
        int,
        typer.Option(
            "--assures",
            help="Nombre d'assurés à générer (environ 10 lignes de paiement chacun sur 3 ans).",
        ),
    ] = 3000,
    start: Annotated[
        str, typer.Option("--start", "--debut", help="Premier jour des extractions (AAAA-MM-JJ).")
    ] = "2023-11-01",
    end: Annotated[
        str,
        typer.Option(
            "--end",
            "--fin",
            help="Dernier jour des extractions (AAAA-MM-JJ) : la date de la dernière nuit.",
        ),
    ] = "2026-10-31",
    elsm: Annotated[
        str,
        typer.Option(
            "--elsm",
            help="ELSM à couvrir, séparés par des virgules, du plus grand au plus petit (codes de config/reference/elsm.csv).",
        ),
    ] = "31,64B,82",
    seed: Annotated[
        int,
        typer.Option(
            "--seed", "--graine", help="Graine : même graine et mêmes options, mêmes octets."
        ),
    ] = 0,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            help="csv (dialecte du contrat : « ; », virgule décimale, JJ/MM/AAAA) ou parquet.",
        ),
    ] = Format.csv,
    defects: Annotated[
        float,
        typer.Option(
            "--defects",
            "--defauts",
            help="Part des lignes portant chacune exactement un défaut de contrat (ex. 0.02) ; le détail par règle est écrit dans defauts.json.",
        ),
    ] = 0.0,
    nuits: Annotated[
        int,
        typer.Option(
            "--nuits",
            help="Les N dernières nuits sont livrées en un fichier par nuit et par caisse (par ELSM pour les actions) ; les lignes plus anciennes en fichiers mensuels d'historique. 0 : tout en mensuel.",
        ),
    ] = 28,
    gz: Annotated[
        Compression,
        typer.Option(
            "--gzip",
            help="Compresser en .csv.gz : aucun fichier, l'historique mensuel seulement, ou tout.",
        ),
    ] = Compression.aucun,
    encodage: Annotated[
        Encodage,
        typer.Option(
            "--encodage",
            help="Encodage des CSV (cp1252 avec fins de ligne CRLF, comme un export Windows ; utf-8 ; utf-8-sig avec BOM).",
        ),
    ] = Encodage.cp1252,
    poids: Annotated[
        str | None,
        typer.Option(
            "--poids",
            help="Poids relatifs des ELSM, dans l'ordre de --elsm (ex. 5,3,1). Par défaut : chaque ELSM pèse 0,6 fois le précédent.",
            show_default=False,
        ),
    ] = None,
    ecraser: Annotated[
        bool,
        typer.Option(
            "--ecraser", help="Remplacer les extractions déjà présentes dans le dossier de sortie."
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Résumé lisible par une machine sur la sortie standard.")
    ] = False,
) -> None:
    """Génère des extractions synthétiques de paiements d'IJ et d'actions (aucune personne réelle).

    Les fichiers suivent les contrats (nom, colonnes, dialecte) : un fichier par nuit et par
    caisse pour les dernières nuits, des fichiers mensuels d'historique avant. Les NIR sont
    pris dans une plage que l'INSEE n'attribue pas (né à l'étranger, pays 990–999). Avec
    --defects, une part des lignes enfreint chacune une règle de docs/regles.md, et
    defauts.json dit combien par règle : l'ingestion doit en mettre autant en quarantaine.

    Exemple : ru sample --assures 6000 --start 2023-11-01 --end 2026-10-31 --elsm 31,64B,82
    --seed 20261031 --defects 0.02 --nuits 28 --gzip historique --out data/sample
    """
    import sys

    from flows.console import out as stdout
    from flows.console import progress
    from synthetic.echantillon import Parametres
    from synthetic.population import ReferenceError

    try:
        weights = tuple(float(x.replace(",", ".")) for x in poids.split(",")) if poids else None
    except ValueError:
        fail(f"--poids : liste de nombres attendue (ex. 5,3,1), reçu « {poids} »")
    codes = tuple(c.strip() for c in elsm.split(",") if c.strip())
    if not codes:
        fail("--elsm : au moins un code ELSM est attendu (ex. 31,64B,82)")
    if nuits < 0:
        fail("--nuits doit être positif ou nul")
    try:
        params = Parametres(
            n_assures=assures,
            debut=_date(start, "--start"),
            fin=_date(end, "--end"),
            elsm=codes,
            graine=seed,
            taux_defauts=defects,
            poids=weights,
            texte=fmt is Format.csv,
        )
    except ValueError as exc:
        fail(str(exc))
    try:
        with progress("Génération des extractions synthétiques", total=assures) as step:
            summary = generate_sample(
                out, params, fmt=fmt, nuits=nuits, compression=gz, encodage=encodage,
                ecraser=ecraser, on_progress=step.advance,
            )  # fmt: skip
    except (FileExistsError, ReferenceError, ValueError) as exc:
        fail(str(exc))
    if json_output:
        sys.stdout.write(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    n_def = {k: sum(v.values()) for k, v in summary.defauts.items()}
    stdout.print(
        f"{summary.assures} assurés, {summary.arrets} arrêts, {summary.lignes_ij} lignes de "
        f"paiement ({n_def['ij_paiements']} avec défaut), {summary.actions} actions "
        f"({n_def['actions']} avec défaut), {len(summary.fichiers)} fichiers dans {out} "
        f"({summary.duree_s:.1f} s)"
    )

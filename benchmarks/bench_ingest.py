"""Benchmark of ``ru ingest`` on one large ``ij_paiements`` extract (prints figures).

    uv run python benchmarks/bench_ingest.py --lignes 5000000

Step 1 (once, cached in --travail): ``ru sample``'s generator writes monthly extracts for
about lignes/10 assurés (Windows-1252, CRLF, decimal comma, 1 % defects: the contract's
default dialect); their lines are concatenated into one file
``ij_paiements_20261031_000.csv`` of the requested size.
Step 2: the block reader's compiled kernels are compiled once (cached on disk, as after the
first ``ru ingest`` of an install). Step 3: a child process ingests that file into an empty
data folder (chunks of --bloc-mo
MB) and reports wall time, lines per second end to end (sha256, parsing, rules, HMAC,
Parquet lake, quarantine and identity store), its CPU time (all threads) and the lines per
CPU-second, the load average, time per stage and its peak memory (max RSS). The machine may
be shared: the CPU-based figure is the one to compare between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

EXTRACT = "ij_paiements_20261031_000.csv"


def make_extract(work: Path, lines: int, seed: int) -> Path:
    """Generate (once) a single extract of about ``lines`` payment lines."""
    target = work / EXTRACT
    marker = work / f"{EXTRACT}.lignes"
    if target.exists() and marker.exists() and int(marker.read_text()) >= lines:
        return target
    from flows.sample import Encodage, Format, generate_sample
    from synthetic.echantillon import Parametres

    gen = work / "generation"
    shutil.rmtree(gen, ignore_errors=True)
    t0 = time.perf_counter()
    params = Parametres(
        n_assures=max(lines // 9, 1000),
        debut=date(2023, 11, 1),
        fin=date(2026, 10, 31),
        elsm=("31", "64B", "82"),
        graine=20261031,
        taux_defauts=0.01,
    )
    generate_sample(gen, params, fmt=Format.csv, nuits=0, encodage=Encodage.cp1252)
    print(f"génération : {time.perf_counter() - t0:.0f} s", flush=True)
    written = 0
    header: bytes | None = None
    with (work / f"{EXTRACT}.tmp").open("wb") as out:
        for part in sorted(gen.glob("ij_paiements_*.csv")):
            with part.open("rb") as fh:
                head = fh.readline()
                if header is None:
                    header = head
                    out.write(head)
                elif head != header:
                    raise SystemExit(f"en-têtes différents : {part.name}")
                for line in fh:
                    if written >= lines:
                        break
                    out.write(line)
                    written += 1
    (work / f"{EXTRACT}.tmp").replace(target)
    marker.write_text(str(written))
    shutil.rmtree(gen, ignore_errors=True)
    return target


def measure(extract: Path, data: Path, chunk_bytes: int) -> dict:
    """Ingest ``extract`` into a fresh ``data`` folder (run in a child process)."""
    import duckdb  # noqa: F401 - imported before the clock starts: a run pays it once
    import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from flows.ingest import ingest_paths
    from flows.settings import DataPaths

    shutil.rmtree(data, ignore_errors=True)
    timings: Counter[str] = Counter()
    t0 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    summary = ingest_paths(
        DataPaths(data),
        [extract],
        b"cle-de-banc-d-essai",
        chunk_bytes=chunk_bytes,
        timings=timings,
    )
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = cpu1.ru_utime - cpu0.ru_utime, cpu1.ru_stime - cpu0.ru_stime
    cpu = user + system
    (f,) = summary.fichiers
    return {
        "lignes_lues": f.lignes_lues,
        "lignes_acceptees": f.lignes_acceptees,
        "lignes_quarantaine": f.lignes_quarantaine,
        "statut": f.statut,
        "taille_mo": round(f.taille_octets / 2**20, 1),
        "duree_s": round(wall, 2),
        "lignes_par_s": round(f.lignes_lues / wall),
        "cpu_s": round(cpu, 1),
        "cpu_utilisateur_s": round(user, 1),
        "cpu_systeme_s": round(system, 1),
        "defauts_de_page": cpu1.ru_minflt - cpu0.ru_minflt,
        "lignes_par_s_cpu": round(f.lignes_lues / cpu),
        "bloc_mo": round(chunk_bytes / 2**20),
        "charge_moyenne": os.getloadavg(),
        "etapes_s": {k: round(v, 2) for k, v in sorted(timings.items(), key=lambda kv: -kv[1])},
        "memoire_max_gio": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def compile_kernels() -> None:
    """Compile the numba kernels (block reader, sorted runs) in a process of their own, once
    per install: they are cached on disk, and the measured run loads them (its start pays
    the loading, ~0.4 s, not the compiling, ~5 s)."""
    code = (
        "from transforms.raw.native import read_block, typed_columns, count_newlines\n"
        "from transforms.raw.schema import SOURCES\n"
        "for spec in SOURCES:\n"
        "    names = [c.name for c in spec.columns]\n"
        "    read_block((';'.join(['1'] * len(names)) + '\\n').encode(), names,"
        " typed_columns(spec))\n"
        "count_newlines(b'\\n')\n"
        "import numpy as np\n"
        "from transforms.raw.sorted_runs import SortedRuns\n"
        "for dtype in (np.uint64, np.int64):\n"
        "    runs = SortedRuns()\n"
        "    runs.add(np.array([1], dtype), np.array([0]))\n"
        "    runs.lookup(np.array([1], dtype))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    from flows.ingest import CHUNK_BYTES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lignes", type=int, default=5_000_000)
    parser.add_argument("--travail", type=Path, default=Path("/tmp/ru_bench_ingest"))
    parser.add_argument(
        "--bloc-mo",
        type=int,
        default=CHUNK_BYTES // 2**20,
        help="taille des blocs lus (Mo ; défaut : celle de ru ingest)",
    )
    parser.add_argument("--mesure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    extract = args.travail / EXTRACT
    if args.mesure:
        from flows.allocators import tune

        tune()  # as ``ru`` does when it starts
        chunk = args.bloc_mo * 2**20
        print(json.dumps(measure(extract, args.travail / "donnees", chunk)))
        return
    args.travail.mkdir(parents=True, exist_ok=True)
    extract = make_extract(args.travail, args.lignes, seed=20261031)
    compile_kernels()
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--mesure",
            "--travail",
            str(args.travail),
            "--bloc-mo",
            str(args.bloc_mo),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"extrait : {extract} ({figures['taille_mo']} Mo, {figures['lignes_lues']:,} lignes)")
    print(
        f"ingestion de bout en bout : {figures['duree_s']} s, "
        f"{figures['lignes_par_s']:,} lignes/s, mémoire max {figures['memoire_max_gio']} Gio"
    )
    print(
        f"acceptées {figures['lignes_acceptees']:,}, quarantaine {figures['lignes_quarantaine']:,}"
    )
    load = ", ".join(f"{x:.1f}" for x in figures["charge_moyenne"])
    print(
        f"temps CPU du processus : {figures['cpu_s']} s (sur {os.cpu_count()} cœurs ; "
        f"utilisateur {figures['cpu_utilisateur_s']} s, système {figures['cpu_systeme_s']} s, "
        f"{figures['defauts_de_page']:,} défauts de page), "
        f"soit {figures['lignes_par_s_cpu']:,} lignes par seconde de CPU ; "
        f"charge moyenne de la machine à la fin : {load} ; blocs de {figures['bloc_mo']} Mo"
    )
    print("temps par étape (s) :")
    for step, seconds in figures["etapes_s"].items():
        print(f"  {step:<30} {seconds:>8.2f}")


if __name__ == "__main__":
    main()

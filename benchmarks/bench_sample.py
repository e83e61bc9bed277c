"""Benchmark of ``ru sample``: about 10 million payment lines, wall time, CPU, peak memory.

    uv run python benchmarks/bench_sample.py                 # ~10 M lines into data/bench/sample
    uv run python benchmarks/bench_sample.py --assures 100000 --format parquet

Prints lines per second, wall and CPU time and the peak resident memory of the process
(``resource.getrusage``). The output folder is replaced at each run (data/bench is ignored by
git). Not a test: run it by hand, on a quiet machine for meaningful figures.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flows.sample import Compression, Format, generate_sample  # noqa: E402
from synthetic.echantillon import Parametres  # noqa: E402

# About 14 payment lines per assuré over 3 years with these six ELSM (measured): 715 000
# assurés give about 10 M lines.
ASSURES_10M = 715_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assures", type=int, default=ASSURES_10M)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--defects", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "bench" / "sample")
    args = parser.parse_args()

    if args.out.exists():
        shutil.rmtree(args.out)
    fmt = Format(args.format)
    params = Parametres(
        n_assures=args.assures,
        debut=date(2023, 11, 1),
        fin=date(2026, 10, 31),
        elsm=("31", "64B", "82", "09", "11", "12"),
        graine=1,
        taux_defauts=args.defects,
        texte=fmt is Format.csv,
    )
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    summary = generate_sample(args.out, params, fmt=fmt, nuits=28, compression=Compression.aucun)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"assurés             {summary.assures:>14,}".replace(",", " "))
    print(f"lignes de paiement  {summary.lignes_ij:>14,}".replace(",", " "))
    print(f"actions             {summary.actions:>14,}".replace(",", " "))
    print(f"fichiers            {len(summary.fichiers):>14}")
    print(f"taille sur disque   {size / 1e9:>12.2f} Go")
    print(f"durée (horloge)     {wall:>12.1f} s")
    print(f"temps CPU           {cpu:>12.1f} s")
    print(f"lignes par seconde  {summary.lignes_ij / wall:>14,.0f}".replace(",", " "))
    print(f"mémoire maximale    {usage.ru_maxrss / 1024:>12.0f} Mo")


if __name__ == "__main__":
    main()

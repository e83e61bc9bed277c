"""Cost of the data checks on lignes_ij slices of 1 M and 5 M rows (prints figures).

    uv run python benchmarks/bench_checks.py [--lignes 1000000 5000000] [--dossier /tmp/x]

For each size, a synthetic ``lignes_ij`` table (valid except 3 rows breaking
``denombrement_borne``, so every rule runs to completion) is written once to a DuckDB file;
then each measurement runs in its own process, so that its peak memory is its own:

- the slice pulled into pandas: DuckDB ``.df()``, Polars ``.pl().to_pandas()``, and
  DuckDB -> Arrow -> pandas (``flows.checks.slice_frame``, the one used);
- the check in one block (query + GX on the whole frame) and then the Data Docs build;
- the check in chunks of ``CHUNK_ROWS`` rows (DuckDB finds duplicate keys over the whole
  slice).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from expectations.contract import load_contract  # noqa: E402
from expectations.suites import rules, slice_query  # noqa: E402
from flows import checks  # noqa: E402
from flows.settings import DataPaths  # noqa: E402

STEPS = ("df", "polars", "arrow", "bloc", "tranches")

FILL = """
insert into lignes_ij
select
    'L' || i::varchar                                   as LIG_NUM,
    date '2026-11-01' + (i % 20)::int                    as FLX_DIS_DTD,
    lpad(((i % 3) + 11)::varchar, 3, '0')                as ORG_AFF_COD,
    md5(i::varchar)                                      as assure_id,
    1                                                    as BEN_RNG_GEM,
    1 + (i % 2)                                          as BEN_SEX_COD,
    1950 + (i % 50)                                      as BEN_NAI_ANN,
    '0' || (1 + i % 9)::varchar                          as BEN_RES_DPT,
    10                                                   as RGO_ASU_NAT,
    case when i % 4 = 0 then null else 1 end             as ATT_NAT,
    6110                                                 as PRS_NAT_REF,
    'A' || (i // 5)::varchar                             as ARR_NUM,
    date '2026-06-01' + (i % 90)::int                    as ARR_DEB_DTE,
    'P'                                                  as PRE_NAT,
    date '2026-06-01' + (i % 90)::int                    as PRE_PRE_DTD,
    date '2026-06-20' + (i % 90)::int                    as PRE_FIN_DTE,
    'PS' || (i % 5000)::varchar                          as PFS_PRE_NUM,
    1                                                    as PSP_SPE_COD,
    null                                                 as PRS_MTT_NUM,
    'E' || (i % 9000)::varchar                           as IJR_EMP_NUM,
    date '2026-09-01' + (i % 60)::int                    as EXE_SOI_DTD,
    date '2026-09-10' + (i % 60)::int                    as EXE_SOI_DTF,
    case when i < 3 then 12 else 10 end                  as PRS_ACT_NBR,
    10                                                   as PRS_ACT_QTE,
    42.5                                                 as BSE_REM_PRU,
    425.0                                                as BSE_REM_MNT,
    'N' as TPT_IND, 'N' as ALD_IND,
    case when i % 7 = 0 then null else 'RHU' end         as MTF_CAT,
    'N'                                                  as DCD_IND,
    'sha' || (i // 100000)::varchar                      as ingestion_id,
    'ij_' || (i // 100000)::varchar || '.csv'            as fichier,
    2 + (i % 100000)                                     as ligne
from range($n) t(i)
"""


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _cpu(fn):
    """(result, wall seconds, CPU seconds of all this process's threads)."""
    c = time.process_time()
    out, wall = _timed(fn)
    return out, wall, time.process_time() - c


def step(name: str, db: Path, size: int) -> None:
    """One measurement, in this process; prints one or two lines."""
    contract = load_contract("lignes_ij")
    con = duckdb.connect(str(db), read_only=True)
    sql = slice_query(contract, "lignes_ij", contract.column_names)
    if name in ("df", "polars", "arrow"):
        import pandas  # noqa: F401  (imports not timed)
        import polars  # noqa: F401
        import pyarrow  # noqa: F401

        pulls = {
            "df": lambda q: con.execute(q).df(),
            "polars": lambda q: con.sql(q).pl().to_pandas(),
            "arrow": lambda q: checks.slice_frame(con, q),
        }
        pulls[name](sql + " limit 100")  # warm-up: first-call costs
        pull = lambda: pulls[name](sql)  # noqa: E731
        label = {
            "df": "DuckDB .df()",
            "polars": "Polars .pl().to_pandas()",
            "arrow": "DuckDB Arrow (retenu)",
        }[name]
        _, t, cpu = _cpu(pull)
        print(
            f"  tranche -> pandas, {label:26s} {t:6.2f} s   CPU {cpu:6.2f} s   "
            f"pic {_peak_mib():6.0f} Mio"
        )
        return
    paths = DataPaths(db.parent / f"donnees_{size}_{name}")
    session, t_ctx = _timed(lambda: checks.ChecksSession(paths))
    session.check(con, "lignes_ij", where='"ligne" < 10', label="chauffe")  # GX lazy imports
    max_rows = size + 1 if name == "bloc" else 1
    report, t, cpu = _cpu(lambda: session.check(con, "lignes_ij", label=name, max_rows=max_rows))
    chunk = f"tranches de {checks._n(checks.CHUNK_ROWS)}"
    what = "contrôle en un bloc" if name == "bloc" else f"contrôle par {chunk}"
    print(
        f"  {what:45s} {t:6.2f} s   CPU {cpu:6.2f} s   pic {_peak_mib():6.0f} Mio  "
        f"({report.chunks} tranche(s), "
        f"règles en échec : {', '.join(r.rule for r in report.failures)}; "
        f"contexte GX {t_ctx:.1f} s)"
    )
    if name == "bloc":
        _, t_docs, cpu = _cpu(session.build_docs)
        print(f"  {'Data Docs (validations + index)':45s} {t_docs:6.2f} s   CPU {cpu:6.2f} s")


def bench(size: int, folder: Path) -> None:
    contract = load_contract("lignes_ij")
    db = folder / f"bench_{size}.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute(contract.ddl())
    _, t_fill = _timed(lambda: con.execute(FILL, {"n": size}))
    con.close()
    print(f"\n== lignes_ij, {checks._n(size)} lignes, {len(rules(contract))} règles")
    print(f"  {'remplissage DuckDB':45s} {t_fill:6.2f} s")
    for name in STEPS:
        subprocess.run(
            [sys.executable, __file__, "--etape", name, "--base", str(db), "--lignes", str(size)],
            check=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lignes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--dossier", type=Path, default=None)
    parser.add_argument("--etape", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.etape:
        step(args.etape, args.base, args.lignes[0])
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dossier or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for size in args.lignes:
            bench(size, folder)


if __name__ == "__main__":
    main()

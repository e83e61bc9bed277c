"""Cost of the data checks on lignes_ij slices of 1 M and 5 M rows (prints figures).

    uv run python benchmarks/bench_checks.py [--lignes 1000000 5000000] [--dossier /tmp/x]

Measures, for each size: pulling the slice into pandas (DuckDB ``.df()`` vs Polars
``.pl()`` then ``to_pandas()``), the GX validation of the whole frame, the chunked path
(DuckDB computes key uniqueness, GX validates 2 M-row chunks), the Data Docs build, and the
process's peak memory. The table is synthetic, valid except 3 rows breaking
``denombrement_borne``, so every rule runs to completion.
"""

from __future__ import annotations

import argparse
import resource
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


def bench(size: int, folder: Path) -> None:
    contract = load_contract("lignes_ij")
    db = folder / f"bench_{size}.duckdb"
    con = duckdb.connect(str(db))
    con.execute(contract.ddl())
    _, t_fill = _timed(lambda: con.execute(FILL, {"n": size}))
    present = contract.column_names
    sql = slice_query(contract, "lignes_ij", present)
    print(f"\n== lignes_ij, {checks._n(size)} lignes, {len(rules(contract))} règles")
    print(f"  remplissage DuckDB                 {t_fill:6.2f} s")

    frame, t_df = _timed(lambda: con.execute(sql).df())
    del frame
    import polars as pl  # noqa: F401  (imported before timing)

    frame, t_pl = _timed(lambda: con.sql(sql).pl().to_pandas())
    del frame
    print(f"  tranche -> pandas, DuckDB .df()    {t_df:6.2f} s")
    print(f"  tranche -> pandas, Polars          {t_pl:6.2f} s")

    paths = DataPaths(folder / f"donnees_{size}")
    session, t_ctx = _timed(lambda: checks.ChecksSession(paths))
    print(f"  contexte GX (import compris)       {t_ctx:6.2f} s")
    # Warm-up on a tiny slice: the first validation pays GX's lazy imports.
    session.check(con, "lignes_ij", where='"ligne" < 10', label="chauffe")
    report, t_chunks = _timed(
        lambda: session.check(
            con, "lignes_ij", label="tranches", max_rows=1, chunk_rows=checks.CHUNK_ROWS
        )
    )
    print(
        f"  contrôle par tranches de 2 M        {t_chunks:6.2f} s  "
        f"({report.chunks} tranche(s), {len(report.failures)} règle(s) en échec, "
        f"pic mémoire {_peak_mib():.0f} Mio)"
    )
    report, t_one = _timed(lambda: session.check(con, "lignes_ij", label="bloc", max_rows=size + 1))
    print(
        f"  contrôle en un bloc (requête+GX)    {t_one:6.2f} s  "
        f"({len(report.failures)} règle(s) en échec, pic mémoire {_peak_mib():.0f} Mio)"
    )
    _, t_docs = _timed(session.build_docs)
    print(f"  Data Docs (3 validations + index)  {t_docs:6.2f} s")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lignes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--dossier", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dossier or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for size in args.lignes:
            bench(size, folder)


if __name__ == "__main__":
    main()

"""Time the four indicator models on a synthetic warehouse of national size per DRSM.

Builds, in an in-memory DuckDB, `arrets` at D (N arrêts over 100 ELSM), `actions` (2 per
arrêt, a third with several versions) and a routing ledger of one year (500 dossiers per
night), then times ``compute_indicators``. Prints the figures; not a test.

    uv run python benchmarks/bench_indicateurs.py [N_ARRETS]
"""

from __future__ import annotations

import sys
import time
from datetime import date

import duckdb

from flows.indicators import compute_indicators

AS_OF = date(2026, 3, 31)


def build(con: duckdb.DuckDBPyConnection, n: int) -> None:
    con.execute(
        """
        create table arrets as
        select $d::date as as_of, 'A' || i as arret_id, 'U' || (i // 2) as assure_id,
            lpad(((i % 100) + 1)::varchar, 2, '0') as elsm,
            case when i % 3 = 0 then null else 'N' || i end as ARR_NUM,
            case when i % 10 = 0 then 'ATMP' else 'MAL' end as risque,
            $d::date - (i % 700)::int as debut_arret,
            $d::date - (i % 700)::int + (i % 400)::int as fin_prescrite,
            $d::date - (i % 700)::int + (i % 380)::int as dernier_jour_paye,
            ((i * 7) % 900)::int as jours_ij, i % 5 < 2 as en_cours,
            i % 4 = 0 as action_pdp
        from range($n) t(i)
        """,
        {"d": AS_OF, "n": n},
    )
    con.execute(
        """
        create table actions as
        select lpad(((i % 100) + 1)::varchar, 2, '0') as ELSM, 'X' || i || '-' || k as ACT_NUM,
            $d::date - (i % 600)::int + (k * 20)::int as ACT_DTE,
            $d::date - (i % 600)::int + (k * 20 + v)::int as FLX_DIS_DTD,
            case when i % 7 = 0 then 'R' || (i // 7) end as DOSSIER_ID,
            'U' || (i // 2) as assure_id, case when i % 3 = 0 then null else 'N' || i end as ARR_NUM,
            case k when 0 then 'ETUDE' else 'COURRIER_CLOE' end as ACT_TYP,
            case when (i + k) % 5 = 0 then 'NON_HONORE' when v = 1 then 'ARRET_JUSTIFIE' end
                as ACT_RES
        from range($n) t(i), range(2) s(k), range(2) w(v)
        where v = 0 or i % 3 = 0
        """,
        {"d": AS_OF, "n": n},
    )
    con.execute("delete from actions where FLX_DIS_DTD > $d", {"d": AS_OF})
    con.execute(
        """
        create table routage as
        select 'R' || i as dossier_id, $d::date - (i // 500)::int as as_of,
            strftime($d::date - (i // 500)::int, '%G-W%V') as semaine_iso,
            lpad(((i % 100) + 1)::varchar, 2, '0') as elsm, 'A' || (i * 3) as arret_id,
            'U' || (i * 3 // 2) as assure_id, 'RU0' || (i % 9 + 1) as code_ru,
            case when i % 6 = 0 then null else ['TECH', 'CSAM', 'ISM', 'MC'][i % 4 + 1] end
                as acteur,
            case when i % 6 = 0 then 'non_affecte' else 'affecte' end as statut
        from range(500 * 365) t(i)
        """,
        {"d": AS_OF},
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    con = duckdb.connect()
    t0 = time.perf_counter()
    build(con, n)
    sizes = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0]
             for t in ("arrets", "actions", "routage")}  # fmt: skip
    print(f"données : {sizes} ({time.perf_counter() - t0:.1f} s)")
    capacites = [
        {"elsm": f"{e:02d}", "acteur": a, "dossiers_par_semaine": 40}
        for e in range(1, 101)
        for a in ("TECH", "CSAM", "ISM", "MC")
    ]
    t0 = time.perf_counter()
    results = compute_indicators(con, AS_OF, capacites)
    elapsed = time.perf_counter() - t0
    rows = {name: table.num_rows for name, table in results.items()}
    print(f"indicateurs : {rows} en {elapsed:.1f} s")


if __name__ == "__main__":
    main()

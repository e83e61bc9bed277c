"""Benchmark of ``ru build``: wall time and peak memory of the build at D for N payment lines.

    uv run python benchmarks/bench_build.py --lignes 10000000 --dossier /tmp/bench10
    uv run python benchmarks/bench_build.py --lignes 30000000 --dossier /tmp/bench30

Step 1 generates the lines straight into the lake files behind ``lignes_ij`` and ``actions``
of a fresh warehouse (``flows.ingest.add_lake_file``; not timed as part of the build). The
generator is a temporary one, local to this benchmark, written in DuckDB SQL so that 30 M lines take about a minute: the project's generator
(``ru sample``) and ingestion were not ready when this benchmark was written, and going
through CSV files would measure ingestion, not the build. Its shape follows spec §8: about
3.5 lines per arrêt, 3 arrêts per assuré over three years, 70 % of arrêts numbered, 2 %
cancellations, 3 % second-employer lines, 1 % corrected lines, 3 % maternité lines (out of
scope), actions on 5 % of the arrêts.

Step 2 runs ``flows.build.build_at`` in a child process and reports its wall time and peak
resident memory (``ru_maxrss`` of the child), then times the prescriber peer medians in
Polars (the shipped model) against the same computation in DuckDB SQL.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

D = date(2026, 3, 31)

GENERATE_ARRETS = """
create or replace temp table bench_arrets as
with organismes as (
    select list(code_organisme order by code_organisme) as codes from ref_elsm
),
base as (
    select
        a,
        a // 3 as assure,
        date '2023-01-01' + cast(hash(a, 1) % 1180 as integer) as debut,
        hash(a, 2) % 100 as u,
        hash(a, 3) % 10 < 7 as numerote,
        hash(a, 4) % 100 as r,
        hash(a, 5) % 20000 as pre
    from range($n_arrets) t(a)
)
select
    a,
    md5('assure-' || assure) as assure_id,
    codes[1 + cast(hash(assure, 9) % len(codes) as integer)] as org,
    debut,
    case when u < 50 then 1 when u < 75 then 2 when u < 88 then 4 when u < 96 then 10
         else 30 end as n_periodes,
    case when numerote then 'A' || a end as arr_num,
    case when r < 85 then 10 when r < 97 then 40 else 30 end as rgo,
    case when r < 97 then 6111 else 6121 end as prs_nat,
    'P' || lpad(cast(pre as varchar), 10, '0') as prescripteur,
    [1, 1, 1, 1, 33, 41][1 + cast(pre % 6 as integer)] as spe,
    'M' || lpad(cast(hash(assure, 6) % 20000 as varchar), 10, '0') as medecin_traitant,
    lpad(cast(hash(assure, 7) % 100000 as varchar), 14, '0') as siret,
    hash(a, 8) % 100 < 10 as ald,
    ['PSY', 'RHU', 'TRA', 'ONC', 'CAR', 'INF', 'GRO', 'AUT'][1 + cast(hash(a, 10) % 8 as integer)]
        as mtf,
    1 + cast(hash(assure, 11) % 2 as integer) as sexe,
    1960 + cast(hash(assure, 12) % 45 as integer) as naissance,
    hash(a, 13) % 1000 = 0 as deces
from base, organismes
"""

GENERATE_LIGNES = """
with periodes as (
    select b.*, cast(unnest(range(n_periodes)) as integer) as p
    from bench_arrets b
),
lignes as (
    select
        cast(a * 64 + p as varchar) as LIG_NUM,
        org as ORG_AFF_COD,
        assure_id,
        1 as BEN_RNG_GEM,
        sexe as BEN_SEX_COD,
        naissance as BEN_NAI_ANN,
        '031' as BEN_RES_DPT,
        rgo as RGO_ASU_NAT,
        case when rgo = 40 then 1 end as ATT_NAT,
        prs_nat as PRS_NAT_REF,
        arr_num as ARR_NUM,
        case when arr_num is not null then debut end as ARR_DEB_DTE,
        case when p < 2 then 'I' else 'P' end as PRE_NAT,
        debut + 28 * (p // 2) as PRE_PRE_DTD,
        debut + 28 * (p // 2) + 27 as PRE_FIN_DTE,
        case when p >= 2 and hash(a, p, 14) % 10 = 0 then medecin_traitant
             when p >= 2 and hash(a, p, 14) % 10 = 1 then 'P0000099999'
             else prescripteur end as PFS_PRE_NUM,
        spe as PSP_SPE_COD,
        medecin_traitant as PRS_MTT_NUM,
        siret as IJR_EMP_NUM,
        debut + 14 * p as EXE_SOI_DTD,
        debut + 14 * p + 13 as EXE_SOI_DTF,
        14 as PRS_ACT_NBR,
        14 as PRS_ACT_QTE,
        41.47 as BSE_REM_PRU,
        580.58 as BSE_REM_MNT,
        case when n_periodes >= 10 and p >= n_periodes - 3 then 'O' else 'N' end as TPT_IND,
        case when ald then 'O' else 'N' end as ALD_IND,
        mtf as MTF_CAT,
        case when deces and p = n_periodes - 1 then 'O' else 'N' end as DCD_IND,
        debut + 14 * p + 13 + 2 + cast(hash(a, p, 15) % 5 as integer) as FLX_DIS_DTD,
        hash(a, p, 16) % 100 as v
    from periodes
),
annulations as (
    select * replace (LIG_NUM || 'A' as LIG_NUM, -14 as PRS_ACT_NBR,
                      -580.58 as BSE_REM_MNT, FLX_DIS_DTD + 7 as FLX_DIS_DTD,
                      cast(null as varchar) as ARR_NUM)
    from lignes where v < 2
),
second_employeur as (
    select * replace (LIG_NUM || 'M' as LIG_NUM, 0 as PRS_ACT_NBR, 210.0 as BSE_REM_MNT,
                      '99999999900099' as IJR_EMP_NUM)
    from lignes where v between 2 and 4
),
corrections as (
    select * replace (FLX_DIS_DTD + 10 as FLX_DIS_DTD, 13 as PRS_ACT_NBR,
                      539.11 as BSE_REM_MNT)
    from lignes where v = 5
),
toutes as (
    select * from lignes
    union all select * from annulations
    union all select * from second_employeur
    union all select * from corrections
)
select * exclude (v), 'bench' as ingestion_id, 'bench.csv' as fichier, 2 as ligne
from toutes
"""

GENERATE_ACTIONS = """
select
    'ACT' || a as ACT_NUM,
    debut + 20 as FLX_DIS_DTD,
    '31' as ELSM,
    cast(null as varchar) as DOSSIER_ID,
    org as ORG_AFF_COD,
    assure_id,
    1 as BEN_RNG_GEM,
    case when hash(a, 20) % 2 = 0 then arr_num end as ARR_NUM,
    debut + 15 as ACT_DTE,
    ['TECH', 'CSAM', 'ISM', 'MC'][1 + cast(hash(a, 21) % 4 as integer)] as ACT_ACTEUR,
    ['ETUDE', 'COURRIER_PDP', 'APPEL', 'CONVOCATION'][1 + cast(hash(a, 22) % 4 as integer)]
        as ACT_TYP,
    cast(null as varchar) as ACT_RES,
    'bench' as ingestion_id,
    'bench.csv' as fichier,
    2 as ligne
from bench_arrets
where hash(a, 19) % 100 < 5
"""

PRESCRIPTEURS_SQL = """
with recents as (
    select prescripteur_initial as PFS_PRE_NUM, assure_id, jours_ij, PSP_SPE_COD, drsm
    from arrets
    where as_of = $as_of and risque = 'MAL'
      and debut_arret between $as_of - $fenetre and $as_of
),
volumes as (
    select PFS_PRE_NUM, count(distinct assure_id) as patients, sum(jours_ij) as jours_ij,
           mode(PSP_SPE_COD) as PSP_SPE_COD, mode(drsm) as drsm
    from recents group by all
),
ratios as (
    select *, jours_ij / patients as jours_par_patient from volumes
),
medianes as (
    select PSP_SPE_COD, drsm, median(jours_par_patient) as mediane_pairs
    from ratios where patients >= $patients_min group by all
)
select r.*, m.mediane_pairs, r.jours_par_patient / m.mediane_pairs as ratio_pairs
from ratios r left join medianes m using (PSP_SPE_COD, drsm)
"""


def generate(folder: Path, n_lignes: int) -> dict:
    """A fresh warehouse under ``folder`` with about ``n_lignes`` payment lines."""
    import duckdb

    from flows.build import load_ref_elsm
    from flows.ingest import add_lake_file, ensure_tables
    from flows.settings import DataPaths

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("set preserve_insertion_order = false")
    paths = DataPaths(folder)
    ensure_tables(con, paths)  # lignes_ij / actions: views over the lake
    ref = load_ref_elsm()
    con.register("ref_elsm", ref)
    # 3.52 periods per arrêt on average, 1.06 lines per period (cancellations, employers)
    n_arrets = int(n_lignes / (3.52 * 1.06))
    con.execute(GENERATE_ARRETS, {"n_arrets": n_arrets})
    add_lake_file(con, paths, "lignes_ij", GENERATE_LIGNES, fichier="bench_lignes.csv")
    add_lake_file(con, paths, "actions", GENERATE_ACTIONS, fichier="bench_actions.csv")
    counts = {
        t: con.execute(f"select count(*) from {t}").fetchall()[0][0]
        for t in ("lignes_ij", "actions")
    }
    con.close()
    counts["generation_s"] = round(time.perf_counter() - start, 1)
    return counts


def measure_build(folder: Path, memory_limit: str, checks: bool) -> dict:
    """Child process: build at D, then time the prescriber medians in Polars and in SQL."""
    import duckdb

    from flows.build import build_at, build_params
    from flows.settings import DataPaths, load_settings
    from transforms.marts.prescripteurs import prescripteurs

    settings = load_settings()
    paths = DataPaths(folder)
    start = time.perf_counter()
    summary = build_at(paths, D, settings, checks=checks, memory_limit=memory_limit)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    build_peak_gib = usage.ru_maxrss / 1024**2
    build_cpu_s = usage.ru_utime + usage.ru_stime
    params = build_params(D, settings)
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    t0 = time.perf_counter()
    frame = con.table("arrets").filter(f"as_of = date '{D.isoformat()}'").pl()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    polars_rows = prescripteurs(frame.lazy(), **params.values()).collect().height
    t_polars = time.perf_counter() - t0
    t0 = time.perf_counter()
    sql_rows = len(
        con.execute(
            PRESCRIPTEURS_SQL,
            {
                "as_of": D,
                "fenetre": params.fenetre_prescripteurs_jours,
                "patients_min": params.patients_min,
            },
        ).fetchall()
    )
    t_sql = time.perf_counter() - t0
    con.close()
    return {
        "build_s": round(wall, 1),
        "build_pic_memoire_gio": round(build_peak_gib, 2),
        "build_cpu_s": round(build_cpu_s, 1),
        "resume": summary.as_dict(),
        "prescripteurs_polars_s": round(t_polars, 2),
        "prescripteurs_sql_s": round(t_sql, 2),
        "arrow_vers_polars_s": round(t_load, 2),
        "prescripteurs": [polars_rows, sql_rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lignes", type=int, default=10_000_000)
    parser.add_argument("--dossier", type=Path, required=True)
    parser.add_argument("--memoire", default="6GB", help="memory_limit de DuckDB")
    parser.add_argument("--controles", action="store_true", help="avec les contrôles GX")
    parser.add_argument("--sans-generation", action="store_true")
    parser.add_argument("--mesure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mesure:
        result = measure_build(args.dossier, args.memoire, args.controles)
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return
    if not args.sans_generation:
        generated = generate(args.dossier, args.lignes)
        sys.stdout.write(f"génération : {json.dumps(generated)}\n")
    sys.stdout.flush()
    start = time.perf_counter()
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--mesure",
            "--dossier",
            str(args.dossier),
            "--memoire",
            args.memoire,
            *(["--controles"] if args.controles else []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if child.returncode != 0:
        sys.stderr.write(child.stderr)
        raise SystemExit(child.returncode)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    result = json.loads(child.stdout.strip().splitlines()[-1])
    sys.stdout.write(
        f"build à D={D} : {result['build_s']} s, pic mémoire {result['build_pic_memoire_gio']} "
        f"Gio, temps CPU {result['build_cpu_s']} s (charge de la machine : "
        f"{os.getloadavg()[0]:.1f}) ; processus complet avec la comparaison Polars/SQL : "
        f"{wall:.1f} s, pic {peak_kib / 1024**2:.2f} Gio, CPU {cpu:.0f} s\n"
    )
    sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()

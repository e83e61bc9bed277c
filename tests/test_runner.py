"""The model runner: dependency order, bound parameters, scratch catalog, no writes."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest
from test_arrets import REF_ELSM, D, ligne, params, warehouse

from transforms.runner import (
    ModelError,
    arrets_at,
    arrets_snapshots,
    load_model,
    plan,
    run_models,
    scratch,
)


def _write(folder, layer: str, name: str, sql: str) -> None:
    (folder / layer).mkdir(parents=True, exist_ok=True)
    (folder / layer / f"{name}.sql").write_text(sql, encoding="utf-8")


def test_models_run_in_dependency_order_with_their_own_parameters(tmp_path):
    _write(
        tmp_path,
        "marts",
        "m_total",
        "with a as (select * from int_double) select sum(v) + $bonus as total from a",
    )
    _write(
        tmp_path,
        "intermediate",
        "int_double",
        "with b as (select * from stg_base) select v * $facteur as v from b",
    )
    _write(tmp_path, "staging", "stg_base", "select v from source where v <= $plafond")
    load_model.cache_clear()
    order = [m.name for m in plan(["m_total"], tmp_path)]
    assert order == ["stg_base", "int_double", "m_total"]
    model = load_model("int_double", tmp_path)
    assert (model.layer, model.depends_on, model.parameters) == (
        "intermediate",
        ("stg_base",),
        ("facteur",),
    )

    con = duckdb.connect()
    con.execute("create table source as select * from range(1, 6) t(v)")
    with scratch(con):
        result = run_models(
            con, ["m_total"], {"plafond": 3, "facteur": 10, "bonus": 1, "inutile": 0}, root=tmp_path
        )
        assert result["m_total"].fetchall() == [(61,)]  # (1 + 2 + 3) * 10 + 1
        assert set(result.durations) == {"stg_base", "int_double", "m_total"}
    # nothing was written to the connection's own database
    assert con.execute("select table_name from information_schema.tables").fetchall() == [
        ("source",)
    ]
    load_model.cache_clear()


def test_missing_parameter_and_cycle_are_reported(tmp_path):
    _write(tmp_path, "staging", "stg_a", "select * from stg_b where x = $x")
    _write(tmp_path, "staging", "stg_b", "select * from stg_a")
    _write(tmp_path, "staging", "stg_c", "select $manquant as y")
    load_model.cache_clear()
    with pytest.raises(ModelError, match="circulaire"):
        plan(["stg_a"], tmp_path)
    with pytest.raises(ModelError, match="inconnu"):
        plan(["stg_absent"], tmp_path)
    con = duckdb.connect()
    with scratch(con), pytest.raises(ModelError, match="manquant"):
        run_models(con, ["stg_c"], {}, root=tmp_path)
    load_model.cache_clear()


def test_arrets_at_writes_nothing_and_leaves_same_named_tables_alone():
    con = warehouse([ligne("01/03/2026", "14/03/2026", PRE_FIN_DTE="30/04/2026")])
    con.execute("create table arrets (as_of date, arret_id varchar)")
    with arrets_at(con, params(), REF_ELSM) as result:
        assert result.arrets.aggregate("count(*)").fetchall() == [(1,)]
        # the warehouse table of the same name is untouched and still reachable by name
        assert con.execute("select count(*) from arrets").fetchall() == [(0,)]
    tables = {
        r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
    }
    assert tables == {"lignes_ij", "actions", "arrets"}
    assert con.execute("select count(*) from arrets").fetchall() == [(0,)]


def test_snapshots_stack_one_build_per_date():
    con = warehouse(
        [
            ligne("01/02/2026", "14/02/2026", ARR_NUM="1", PRE_FIN_DTE="31/03/2026"),
            ligne("15/02/2026", "28/02/2026", ARR_NUM="1", PRE_FIN_DTE="31/03/2026"),
        ]
    )
    arrets, prescripteurs = arrets_snapshots(
        con, params(), [date(2026, 2, 20), D, date(2026, 2, 20)], REF_ELSM
    )
    got = arrets.select("as_of", "jours_ij", "duree_jours").sort("as_of")
    assert got.to_dicts() == [
        {"as_of": date(2026, 2, 20), "jours_ij": 14, "duree_jours": 20},
        {"as_of": D, "jours_ij": 28, "duree_jours": 59},
    ]
    assert prescripteurs["as_of"].to_list() == [date(2026, 2, 20), D]
    assert isinstance(arrets, pl.DataFrame)


def test_snapshots_on_a_read_only_warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.close()
    rows = [ligne("01/03/2026", "14/03/2026", PRE_FIN_DTE="30/04/2026")]
    source = warehouse(rows)
    source.execute(f"attach '{path}' as cible")
    for table in ("lignes_ij", "actions"):
        source.execute(f"create table cible.main.{table} as select * from memory.main.{table}")
    source.close()
    read_only = duckdb.connect(str(path), read_only=True)
    arrets, _ = arrets_snapshots(read_only, params(), [D], REF_ELSM)
    assert arrets.select("jours_ij", "en_cours").rows() == [(14, True)]
    read_only.close()

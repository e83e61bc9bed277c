import duckdb
import pytest

from expectations.contract import ContractError, all_contracts, load_contract, parse_contract


def test_every_contract_loads_and_its_ddl_creates_the_table():
    con = duckdb.connect()
    for contract in all_contracts():
        con.execute(contract.ddl())
        cols = [r[0] for r in con.execute(f'describe "{contract.table}"').fetchall()]
        assert cols == contract.column_names


def test_lignes_ij_has_no_nir_column_and_marks_medical_data():
    c = load_contract("lignes_ij")
    assert "BEN_NIR" not in c.column_names and "assure_id" in c.column_names
    assert c.medical_columns == ["MTF_CAT"]
    assert c.key == ("ORG_AFF_COD", "LIG_NUM", "FLX_DIS_DTD")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"table": "t", "grain": "g", "key": ["a"], "columns": [{"name": "a", "type": "TEXTE"}]},
            "type inconnu",
        ),
        (
            {"table": "t", "grain": "g", "key": ["b"], "columns": [{"name": "a", "type": "DATE"}]},
            "clé : colonne inconnue b",
        ),
        (
            {
                "table": "t",
                "grain": "g",
                "key": ["a"],
                "columns": [{"name": "a", "type": "DATE"}, {"name": "a", "type": "DATE"}],
            },
            "définie deux fois",
        ),
        ({"table": "t", "key": ["a"], "columns": []}, "grain"),
        (
            {
                "table": "t",
                "grain": "g",
                "key": ["a"],
                "columns": [{"name": "a", "type": "DATE", "severity": "grave"}],
            },
            "sévérité",
        ),
    ],
)
def test_malformed_contract_is_refused(tmp_path, raw, message):
    with pytest.raises(ContractError, match=message):
        parse_contract(raw, tmp_path / "t.yml")

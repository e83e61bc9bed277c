from pathlib import Path

import pytest

from flows.settings import (
    ConfigError,
    DataPaths,
    load_settings,
    pseudo_key,
    resolve_data_dir,
)


def test_default_settings_are_the_spec_values():
    s = load_settings()
    assert s.perimetre.rgo_asu_nat == (10, 40)
    assert s.perimetre.prs_nat_ref == (6111, 6112, 6113, 6114, 6115, 6116, 6117, 6118, 6134, 6135)
    assert s.arrets.ecart_max_jours == 2
    assert s.arrets.fenetre_ij_3ans_jours == 1095
    assert s.prescripteurs.patients_min == 20
    assert s.prescripteurs.ratio_atypique == 2.0
    assert s.ciblage.action_recente_jours == 14
    assert s.ciblage.en_attente_jours == 28


def test_unknown_key_is_refused_with_file_and_section(tmp_path):
    text = (Path(load_settings().source)).read_text(encoding="utf-8")
    bad = tmp_path / "settings.toml"
    bad.write_text(text.replace("ecart_max_jours = 2", "ecart_max_jour = 2"), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"settings.toml : \[arrets\] clé\(s\) inconnue\(s\) : ecart_max_jour"
    ):
        load_settings(bad)


def test_negative_threshold_is_refused(tmp_path):
    text = (Path(load_settings().source)).read_text(encoding="utf-8")
    bad = tmp_path / "settings.toml"
    bad.write_text(text.replace("patients_min = 20", "patients_min = -1"), encoding="utf-8")
    with pytest.raises(ConfigError, match="patients_min"):
        load_settings(bad)


def test_data_dir_priority(tmp_path, monkeypatch):
    monkeypatch.setenv("RU_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "opt") == DataPaths(tmp_path / "opt")
    assert resolve_data_dir(None) == DataPaths(tmp_path / "env")
    monkeypatch.delenv("RU_DATA")
    monkeypatch.chdir(tmp_path)
    # Relative paths are made absolute from the current directory (GX Data Docs need it).
    assert resolve_data_dir(None).root == tmp_path / "data" / "local"
    assert resolve_data_dir(Path("ailleurs")).root == tmp_path / "ailleurs"


def test_pseudo_key_refuses_without_env_except_demo(monkeypatch):
    monkeypatch.delenv("RU_CLE_PSEUDO", raising=False)
    with pytest.raises(ConfigError, match="RU_CLE_PSEUDO"):
        pseudo_key()
    key, is_demo = pseudo_key(allow_demo=True)
    assert is_demo and key
    monkeypatch.setenv("RU_CLE_PSEUDO", "secret")
    assert pseudo_key() == (b"secret", False)

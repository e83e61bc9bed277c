"""The ``ru`` command line: every pipeline verb is there and the help speaks French."""

from typer.testing import CliRunner

from flows.cli import app

COMMANDS = [
    "demo", "sample", "ingest", "check", "build", "train", "target", "route", "export",
    "indicators", "report", "nightly", "backfill", "schedule", "query",
]  # fmt: skip

runner = CliRunner()


def flat(output: str) -> str:
    """The help text with the rich boxes and line wraps folded away."""
    return " ".join(output.replace("│", " ").split())


def test_help_lists_every_command_in_french():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Commandes" in result.output and "Affiche cette aide et quitte." in flat(result.output)
    for name in COMMANDS:
        assert f" {name} " in result.output, name


def test_every_command_has_a_french_help_with_the_data_option():
    for name in COMMANDS:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Affiche cette aide et quitte." in flat(result.output), name
        if name != "sample":  # sample writes to --out, not into a data folder
            assert "--data" in result.output, name


def test_query_without_warehouse_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["query", "select 1", "--data", str(tmp_path / "vide")])
    assert result.exit_code == 1
    assert "entrepôt introuvable" in flat(result.output) and "ru ingest" in flat(result.output)


def test_an_invalid_as_of_date_is_refused_in_french_before_anything_runs(tmp_path):
    data = tmp_path / "d"
    for name in ("check", "build", "train", "target", "route", "export", "indicators"):
        for bad in ("2026-13-01", "2026-02-30", "31/10/2026"):
            result = runner.invoke(app, [name, "--as-of", bad, "--data", str(data)])
            assert result.exit_code == 2, (name, bad, result.output)
            text = flat(result.output)
            assert f"--as-of : date invalide « {bad} »" in text, (name, text)
            assert "Invalid value" not in text
    assert not data.exists()  # refused while parsing: no data folder created

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

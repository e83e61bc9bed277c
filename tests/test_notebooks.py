"""The analysts' notebooks (``notebooks/*.ipynb``): committed without outputs, and each one
runs from top to bottom with nbclient on the data folder of ``ru demo --nuits 7`` (fixture
``demo_data``, made once per session) without error, without showing an identifier, and
without writing into the data folder."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
REPO_ROOT = NOTEBOOKS_DIR.parent
EXPECTED = [
    "01_explorer_une_execution.ipynb",
    "02_qualite_du_modele.ipynb",
    "03_simulation_capacites.ipynb",
]
# A clear NIR: 13 digits starting with 1 or 2 (sex), optionally followed by its 2-digit key.
NIR = re.compile(r"(?<![0-9A-Fa-f])[12][0-9]{12}(?:[0-9]{2})?(?![0-9A-Fa-f])")


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def _execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell in a ``python3`` kernel (this venv's interpreter, see
    ``test_kernel_is_the_venv_python``); raises ``CellExecutionError`` on the first error."""
    from nbclient import NotebookClient

    NotebookClient(
        nb, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return nb


def _output_text(nb: nbformat.NotebookNode) -> str:
    """Every text an executed notebook shows (streams, plain and HTML results, errors)."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            for mime in ("text/plain", "text/html", "text/markdown"):
                parts.append("".join(output.get("data", {}).get(mime, "")))
            parts.extend(output.get("traceback", []))
    return "\n".join(parts)


def _folder_state(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file under the data folder."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------- committed files (fast)


def test_the_three_notebooks_are_committed():
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_stripped_and_parametrised(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [], f"{name}: cellule avec des sorties : {cell.source[:60]!r}"
        assert cell.execution_count is None, f"{name}: execution_count non nul"
        assert "execution" not in cell.metadata, f"{name}: horodatages d'exécution"
    first = nb.cells[0]
    assert first.cell_type == "code"
    assert "parameters" in first.metadata.get("tags", [])
    assert "ru_data = None" in first.source
    # Markdown explanations are French: every notebook explains itself in several cells.
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4


def test_kernel_is_the_venv_python():
    """nbclient's ``python3`` kernel is ipykernel's spec of this venv, launched with
    ``python``, which jupyter_client replaces by ``sys.executable``."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.resource_dir).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert spec.argv[0] in {"python", "python3", sys.executable}


# ------------------------------------------------------- executed on the demo folder


@pytest.mark.parametrize(
    ("name", "cwd"),
    [
        (EXPECTED[0], REPO_ROOT),  # kernel started from the repo root
        (EXPECTED[1], NOTEBOOKS_DIR),  # as Jupyter does: from notebooks/
        (EXPECTED[2], NOTEBOOKS_DIR),
    ],
)
def test_notebook_runs_on_the_demo_folder(name, cwd, demo_data, monkeypatch):
    monkeypatch.setenv("RU_DATA", str(demo_data.root))
    before = _folder_state(demo_data.root)
    nb = _execute(_read(name), cwd)
    assert _folder_state(demo_data.root) == before, "le carnet a écrit dans le dossier de données"
    shown = _output_text(nb)
    assert str(demo_data.root) in shown  # the data folder came from RU_DATA
    assert "assure_id" not in shown
    assert not NIR.search(shown), NIR.search(shown)
    assert sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_capacity_notebook_takes_injected_parameters(demo_data, monkeypatch):
    """Parameters injected after the ``parameters`` cell (as papermill does): an alternative
    equal to the real capacities changes nothing, and the notebook says so."""
    monkeypatch.setenv("RU_DATA", str(demo_data.root))
    nb = _read(EXPECTED[2])
    injected = nbformat.v4.new_code_cell("facteurs = {}\necarts = {}\nnuits = 3")
    injected.metadata["tags"] = ["injected-parameters"]
    check = nbformat.v4.new_code_cell(
        "assert cap_alternative.equals(cap_actuelle)\n"
        "assert orientes['ecart'].abs().sum() == 0\n"
        "assert en_attente['ecart'].abs().sum() == 0\n"
        "assert f1['denominateur'].n_unique() == 1\n"
        "print('rejouees', len(rejouees), 'fenetre', len(fenetre))"
    )
    nb.cells = [nb.cells[0], injected, *nb.cells[1:], check]
    nb = _execute(nb, NOTEBOOKS_DIR)
    assert "fenetre 3" in "".join(nb.cells[-1].outputs[0]["text"])

"""Every notebook in notebooks/ is reviewable and runnable headlessly.

For each notebooks/*.ipynb: paired with a py:percent file whose cells match, committed without
outputs, exactly one `parameters` cell of literals that declares output_dir and quick, and no
def/class in code cells (code needed twice belongs in the package). With no notebooks yet the
per-notebook tests are skipped; the pairing test still checks every .py has its ipynb.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of the code and markdown cells: what pairing must preserve."""
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", [])))
            for c in nb.cells if c.cell_type in ("code", "markdown")]


def python_source(source: str) -> str:
    """A code cell without IPython-only lines (magics, shell escapes, help), so that ast can parse it."""
    keep = [ln for ln in source.splitlines()
            if not ln.lstrip().startswith(("%", "!")) and not ln.rstrip().endswith("?")]
    return "\n".join(keep)


def code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request) -> Path:
    return request.param


def test_every_py_file_has_its_ipynb():
    for py in sorted(NOTEBOOKS_DIR.glob("*.py")):
        assert py.with_suffix(".ipynb").exists(), f"{py.name} has no paired ipynb: jupytext --to ipynb {py}"


def test_name_and_pairing(notebook: Path):
    assert re.fullmatch(r"\d\d_\w+", notebook.stem), f"{notebook.name}: name it NN_topic.ipynb"
    py = notebook.with_suffix(".py")
    assert py.exists(), f"{notebook.name} has no paired {py.name} (jupytext --set-formats ipynb,py:percent)"
    text = jupytext.read(py, fmt="py:percent")
    assert "py:percent" in text.metadata.get("jupytext", {}).get("formats", ""), f"{py.name}: header formats"
    nb = jupytext.read(notebook)
    assert nb.metadata.get("kernelspec", {}).get("name"), f"{notebook.name} has no kernelspec (papermill needs it)"
    assert cells(nb) == cells(text), f"{notebook.name} and {py.name} differ: jupytext --sync {py}"


def test_no_outputs(notebook: Path):
    for i, cell in enumerate(code_cells(notebook), start=1):
        assert not cell.outputs and cell.execution_count is None, \
            f"{notebook.name} code cell {i} has outputs: clear them before committing"


def test_one_parameters_cell_of_literals(notebook: Path):
    tagged = [c for c in code_cells(notebook) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: {len(tagged)} cells tagged parameters, want exactly 1"
    assigned: dict[str, object] = {}
    for stmt in ast.parse(tagged[0].source).body:
        assert isinstance(stmt, (ast.Assign, ast.AnnAssign)), \
            f"{notebook.name}: parameters cell line {stmt.lineno} is not an assignment"
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        assert all(isinstance(t, ast.Name) for t in targets), f"{notebook.name}: line {stmt.lineno}"
        try:
            value = ast.literal_eval(stmt.value)
        except ValueError:
            pytest.fail(f"{notebook.name}: parameters cell line {stmt.lineno} is not a literal "
                        f"({ast.get_source_segment(tagged[0].source, stmt)})")
        assigned.update({t.id: value for t in targets})
    assert assigned.get("output_dir", "missing") is None, f"{notebook.name}: needs `output_dir = None`"
    assert assigned.get("quick", "missing") is False, f"{notebook.name}: needs `quick = False`"


def test_no_def_or_class(notebook: Path):
    for i, cell in enumerate(code_cells(notebook), start=1):
        tree = ast.parse(python_source(cell.source))
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defs, f"{notebook.name} code cell {i} defines {defs[0].name}: move it into workbench/"

"""The notebooks run top to bottom (on a synthetic store, an empty one, the committed one), and are
stored with the outputs the committed records give; the committed tables are what the records give.
"""

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from bert_repro.report import FIGURES
from bert_repro.report.notebooks import NOTEBOOKS, check, stale_tables
from bert_repro.results.record import REPO
from tests.report_fixtures import write_synthetic_store

RESULTS = REPO / "results"
NAMES = ("results", "ablations", "sweeps")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_synthetic_store(tmp_path_factory.mktemp("store"))


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_with_its_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), name
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), name
    assert not any("execution" in cell.metadata for cell in code)  # no timestamps


def test_committed_tables_and_figures_are_what_the_records_give() -> None:
    assert stale_tables(RESULTS, RESULTS / "tables") == []
    for name in FIGURES:
        assert (RESULTS / "figures" / f"{name}.png").is_file(), name


@pytest.mark.slow
def test_committed_notebooks_match_a_fresh_run() -> None:
    assert check(sorted(NOTEBOOKS.glob("*.ipynb")), RESULTS) == []


def _execute(name: str, results: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("BERT_REPRO_RESULTS", str(results))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    # Also prove the kernel is this interpreter (the venv's), not whatever `python` is on PATH.
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert printed.strip() == sys.prefix
    return notebook


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name: str, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = _execute(name, store, monkeypatch)
    images = sum(
        "image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", [])
    )
    assert images >= 1, f"{name} drew no figure"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_on_an_empty_store(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _execute(name, tmp_path / "results", monkeypatch)

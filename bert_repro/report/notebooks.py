"""``python -m bert_repro.report.notebooks``: execute the result notebooks and store their outputs.

A reader opening ``notebooks/*.ipynb`` should see tables and plots, and exactly what the records
say. So the notebooks are executed against the committed ``results/`` (writing the figures under
``results/figures/`` on the way) and stored with their outputs; ``--check`` re-executes them in
memory and fails when a stored text output or a generated table differs from what the records give.
Execution is deterministic: no timing metadata, execution counts from 1.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from bert_repro.report import build_report, write_report
from bert_repro.results.record import REPO

NOTEBOOKS = REPO / "notebooks"
TIMEOUT_S = 120


def execute(path: Path, results: Path, figures: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in its folder: reads ``results``, saves PNGs in ``figures``."""
    notebook = nbformat.read(path, as_version=4)
    # Relative to the notebook, so no output names this machine's folders.
    where = {"BERT_REPRO_RESULTS": results, "BERT_REPRO_FIGURES": figures}
    with _env(**{key: os.path.relpath(value, path.parent) for key, value in where.items()}):
        NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=TIMEOUT_S,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    notebook.metadata.pop("widgets", None)
    return notebook


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def text_outputs(notebook: nbformat.NotebookNode) -> list[list[str]]:
    """Per code cell, its text outputs (streams, text/plain, markdown, html); images left out.

    PNG bytes may differ with the machine's fonts; the numbers a reader sees are in the text.
    """
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for output in cell.get("outputs", []):
            if "text" in output:
                texts.append(output["text"])
            for kind, value in sorted(output.get("data", {}).items()):  # as stored: sorted
                if kind.startswith("text/"):
                    texts.append(value if isinstance(value, str) else "".join(value))
        cells.append(texts)
    return cells


def stale_tables(results: Path, tables: Path) -> list[str]:
    """Table files that regenerating from ``results`` would change (or add, or remove)."""
    report = build_report(results)
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        shown = Path(os.path.relpath(tables, REPO))  # the path the files print, as when committed
        write_report(report, shown)
        fresh = {p.name for p in shown.iterdir()}
        committed = {p.name for p in tables.iterdir()}
        changed = [
            name
            for name in sorted(fresh & committed)
            if not filecmp.cmp(shown / name, tables / name, shallow=False)
        ]
    return changed + sorted(fresh ^ committed)


def check(paths: list[Path], results: Path) -> list[str]:
    """What a fresh run would change: stale tables, notebooks whose stored text differs."""
    problems = [f"results/tables/{name}" for name in stale_tables(results, results / "tables")]
    for path in paths:
        with tempfile.TemporaryDirectory() as scratch:  # the check run's figures
            fresh = execute(path, results, Path(scratch))
        if text_outputs(fresh) != text_outputs(nbformat.read(path, as_version=4)):
            problems.append(str(path.relative_to(REPO)))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bert_repro.report.notebooks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="verify, write nothing")
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    args = parser.parse_args(argv)
    results = REPO / "results"
    paths = [NOTEBOOKS / f"{n}.ipynb" for n in args.names] or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not args.check:
        for path in paths:
            nbformat.write(execute(path, results, results / "figures"), path)
            print(f"executed {path.relative_to(REPO)}")
        return 0
    problems = check(paths, results)
    for problem in problems:
        print(f"stale: {problem}")
    if problems:
        print("regenerate: python -m bert_repro.report --readme README.md && make notebooks")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

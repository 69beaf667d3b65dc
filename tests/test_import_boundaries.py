"""The framework loads once, lazily: the packages that read, score and report never import it."""

import subprocess
import sys

import pytest

from bert_repro.config import CONF_DIR

FRAMEWORK_FREE_PACKAGES = (
    "bert_repro.data",
    "bert_repro.metrics",
    "bert_repro.paper",
    "bert_repro.report",
    "bert_repro.results",
    "bert_repro.tasks",
)


def imports(*modules: str) -> set[str]:
    """Top-level modules a fresh interpreter holds after importing `modules` (and submodules)."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"for name in {list(modules)}:\n"
        "    module = importlib.import_module(name)\n"
        "    for info in pkgutil.walk_packages(getattr(module, '__path__', []), name + '.'):\n"
        "        if not info.name.endswith('__main__'):\n"
        "            importlib.import_module(info.name)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=CONF_DIR.parent
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


@pytest.mark.parametrize("package", FRAMEWORK_FREE_PACKAGES)
def test_package_never_imports_the_framework(package):
    loaded = imports(package)
    assert not loaded & {"mindspore", "mindnlp", "mindtorch"}, package


def test_every_stage_imports_without_loading_the_framework():
    """Stages load it when they run (cli), not at import time: a fresh interpreter can import
    each (the pre-training stage used to fail there)."""
    loaded = imports("bert_repro.stages", "bert_repro.predict", "bert_repro.cli")
    assert not loaded & {"mindspore", "mindnlp", "mindtorch", "transformers"}

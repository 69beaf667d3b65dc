"""run.py in a subprocess, as a user launches it: for the kill-and-relaunch tests."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def launch(command: list[str], root: Path) -> subprocess.Popen:
    """`python <command>` with its runs and results under `root`; output captured."""
    paths = [f"paths.runs={root / 'runs'}", f"paths.results={root / 'results'}"]
    return subprocess.Popen(
        [sys.executable, *command, *paths],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output

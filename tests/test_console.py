"""What a user's console shows when the framework loads: nothing third-party that misleads."""

import subprocess
import sys

from tests.conftest import REPO

# Hydra configures the root logger at INFO before a stage loads the framework; so does this.
_LOAD_UNDER_INFO = """
import logging
logging.basicConfig(level=logging.INFO)
from bert_repro import backend
backend.configure_hub("https://huggingface.co", offline=True)
backend.load_framework()
print("framework loaded")
"""


def test_loading_the_framework_prints_no_third_party_noise():
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_UNDER_INFO],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    console = done.stdout + done.stderr
    assert "framework loaded" in console
    assert "PyTorch version" not in console  # mindtorch posing as PyTorch, via `datasets`
    assert "Modular Diffusers" not in console  # diffusers, imported by mindnlp, never used

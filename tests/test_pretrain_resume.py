"""A pre-training run killed with SIGKILL and relaunched ends exactly where an unbroken one does.

The relaunch is the same `run.py` command: it finds its run directory, restores weights,
optimizer moments, schedule position, RNG state and data position from the last checkpoint.
"""

import json
import signal
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from tests.conftest import DROPOUT_ON, ONE_PHASE, REPO
from tests.relaunch import finish, launch

CORPUS = REPO / "tests" / "data" / "pretraining"
COMMAND = [
    "run.py",
    "+experiment=pretrain_mini_mlm_nsp",
    *ONE_PHASE,
    "model=bert_tiny",
    f"data.root={CORPUS}",
    "data.corpus=[lines:bert_sample_text.txt,file:austen-emma-excerpt.txt,wikitext:wikitext-format.txt]",
    "data.heldout_every=3",
    "data.dupe_factor=2",
    "trainer.batch_size=8",
    "pretrain.steps=16",
    "pretrain.eval_every=8",
    "trainer.checkpoint_every=2",
    *DROPOUT_ON,  # the relaunch must restore the dropout stream too
]


def run_dir(root: Path) -> Path:
    (found,) = (root / "runs" / "pretraining").glob("pretrain_mini_mlm_nsp-*")
    return found


def test_sigkill_and_relaunch_reach_the_same_weights_and_loss(tmp_path):
    finish(launch(COMMAND, tmp_path / "full"))

    killed = tmp_path / "killed"
    process = launch(COMMAND, killed)
    deadline = time.monotonic() + 600
    checkpoints: list[Path] = []
    while not checkpoints and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        checkpoints = list((killed / "runs" / "pretraining").glob("*/checkpoints/step_*"))
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run_dir(killed) / "record.json").exists()

    output = finish(launch(COMMAND, killed))
    assert "resuming from" in output
    reference, resumed = run_dir(tmp_path / "full"), run_dir(killed)
    records = [json.loads((d / "record.json").read_text()) for d in (reference, resumed)]
    assert records[1]["resumed_from"] and records[0]["resumed_from"] is None
    assert records[0]["optimizer_steps"] == records[1]["optimizer_steps"] == 16
    assert records[0]["metrics"] == records[1]["metrics"]
    losses = [
        [json.loads(line) for line in (d / "train_log.jsonl").read_text().splitlines()]
        for d in (reference, resumed)
    ]
    final = [[row["loss"] for row in rows if row.get("step") == 16] for rows in losses]
    assert final[0] == final[1][-1:]
    weights = [load_file(d / "checkpoint" / "model.safetensors") for d in (reference, resumed)]
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        assert np.array_equal(value, weights[1][name]), name

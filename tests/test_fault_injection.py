"""Random kills (slow: 6 to 15 minutes on 2 cores, by load; `make test-slow`, `pytest -m slow`).

A small fine-tuning run is SIGKILLed at N seeded random moments (a fresh run each time), then
relaunched with the same command. Every relaunch must finish with the weights of an uninterrupted
run and leave exactly one record, in the run dir and in the results store. Every other kill is
timed from the launch (start-up included), the others from the opening of its training log, so
that a loaded machine still sees kills during training and saving. A launch that finishes before
its kill does not count towards N.
"""

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.relaunch import finish, launch

KILLS = 20
SEED = 20
COMMAND = [
    "run.py",
    "model=bert_tiny",
    "model.pretrained=null",
    "task=rte",
    "data.max_train_examples=24",
    "data.max_eval_examples=16",
    "trainer.batch_size=8",
    "trainer.epochs=3",  # 9 steps: a checkpoint after each, an evaluation after each epoch
    "trainer.checkpoint_every=1",
]


def outcome(root: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The run's one record (checked equal in both places) and its final weights."""
    (run_dir,) = (root / "runs" / "rte").iterdir()
    stored = list((root / "results").rglob("*.json"))
    assert len(stored) == 1, stored
    record = json.loads((run_dir / "record.json").read_text())
    assert json.loads(stored[0].read_text()) == record
    assert not list(root.rglob("*.tmp")) and not list(root.rglob(".tmp-*"))
    return record, load_file(run_dir / "checkpoint" / "model.safetensors")


def left_behind(root: Path) -> str:
    """What the kill left, for the printed summary."""
    steps = sorted(p.name for p in root.glob("runs/rte/*/checkpoints/step_*"))
    records = list(root.glob("runs/rte/*/record.json"))
    stored = list((root / "results").rglob("*.json"))
    last = steps[-1] if steps else "no checkpoint"
    return f"{last}, run-dir record {len(records)}, store record {len(stored)}"


def first_step(root: Path, process: subprocess.Popen) -> None:
    """Wait until the launch opens its training log (just before step 1), or ends."""
    while not list(root.rglob("train_log.jsonl")) and process.poll() is None:
        time.sleep(0.02)


def relaunch_kind(output: str) -> str:
    for marker, kind in (
        ("results store was missing", "repaired the store"),
        ("already finished", "already finished"),
        ("resuming from", "resumed"),
    ):
        if marker in output:
            return kind
    return "from scratch"


@pytest.mark.slow
def test_random_kills_then_relaunch_reach_the_same_weights_and_one_record(tmp_path):
    started = time.monotonic()
    process = launch(COMMAND, tmp_path / "reference")
    first_step(tmp_path / "reference", process)
    training = time.monotonic()
    finish(process)
    duration, training = time.monotonic() - started, time.monotonic() - training
    reference, weights = outcome(tmp_path / "reference")

    rng = random.Random(SEED)
    summary, kills = [], 0
    for attempt in range(3 * KILLS):
        if kills == KILLS:
            break
        root = tmp_path / f"launch{attempt:02d}"
        process = launch(COMMAND, root)
        if attempt % 2:
            first_step(root, process)
        moment = rng.uniform(0, training if attempt % 2 else duration)
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        killed = process.returncode == -signal.SIGKILL
        kills += killed
        state = left_behind(root) if killed else "finished first"
        output = finish(launch(COMMAND, root))
        record, final = outcome(root)
        assert record["metrics"] == reference["metrics"] and record["optimizer_steps"] == 9
        assert final.keys() == weights.keys()
        for name, value in weights.items():
            assert np.array_equal(final[name], value), (attempt, name)
        since = "training" if attempt % 2 else "launch"
        summary.append(
            f"{attempt:2d} kill {moment:5.2f}s after {since}: {state}; "
            f"relaunch {relaunch_kind(output)}: same weights, one record"
        )
    print(f"\n{kills} kills (seed {SEED}; run {duration:.1f}s, training {training:.1f}s):")
    print("\n".join(summary))
    assert kills == KILLS

"""Data parallel under msrun: each rank's share of a batch, and two CPU workers against one."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from bert_repro import backend, cpu_backend
from bert_repro.training import distributed
from tests.conftest import DROPOUT_ON, REPO
from tests.test_pretrain import TINY_PRETRAIN

ARGS = [
    "model=bert_tiny",
    "model.pretrained=null",
    "task=mrpc",
    "data=sample",
    "data.max_train_examples=64",  # 2 steps of the global batch 32 per epoch
    "data.max_eval_examples=32",
    "trainer.max_steps=3",  # crosses an epoch boundary and a checkpoint
    "hub.offline=true",
    "speed.cpu_threads=1",
]


@pytest.mark.parametrize("rows", [1, 5, 32, 33])
def test_shards_cover_the_batch_once(monkeypatch, rows):
    covered = []
    for rank in range(3):
        monkeypatch.setattr(distributed, "_WORLD", distributed.World(rank, 3))
        part = distributed.shard(rows)
        covered.extend(range(rows)[part])
    assert covered == list(range(rows))


def test_a_ranks_dropout_masks_are_its_rows_of_the_whole_batch(framework):
    """What makes a data-parallel step equal one process's step on the whole batch."""
    ones = framework.ones((6, 4, 5))
    backend.seed_everything(3)
    whole = backend.to_numpy(cpu_backend._seeded_cpu_dropout(ones, 0.5, 0, 0)[1])
    backend.seed_everything(3)
    with cpu_backend.dropout_rows(4, 2, 6):
        part = backend.to_numpy(cpu_backend._seeded_cpu_dropout(ones[4:], 0.5, 0, 0)[1])
    np.testing.assert_array_equal(part, whole[4:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


def one_and_two_workers(
    tmp_path: Path, args: list[str], task: str, kill_after_step: int | None = None
) -> dict[str, tuple[dict, list[dict], dict[str, np.ndarray]]]:
    """The same command in one process and under msrun with 2 CPU workers: each run's record,
    its logged training rows (the last per step: a resumed run logs some twice) and weights.

    With `kill_after_step`, the msrun launch is SIGKILLed (all its processes) once a checkpoint
    at that step is complete, then launched again: it must resume and finish.
    """
    env = {**os.environ, "MSRUN_PORT": str(free_port()), "MSRUN_LOG_DIR": str(tmp_path / "logs")}
    runs = {}
    for name, command in {
        "two": [str(REPO / "scripts" / "msrun.sh"), "2"],
        "one": [sys.executable, str(REPO / "run.py")],
    }.items():
        paths = [f"paths.runs={tmp_path / name}", f"paths.results={tmp_path / name / 'results'}"]
        if name == "two" and kill_after_step is not None:
            kill_once_checkpointed([*command, *args, *paths], env, tmp_path / name, kill_after_step)
        launch([*command, *args, *paths], env)
        (record_path,) = (tmp_path / name / "results" / "runs" / task).glob("*.json")
        record = json.loads(record_path.read_text())
        run_dir = REPO / record["run_dir"]
        log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
        rows = {r["step"]: r for r in log if "loss" in r}
        weights = load_file(run_dir / "checkpoint" / "model.safetensors")
        runs[name] = record, [rows[step] for step in sorted(rows)], weights
    return runs


def kill_once_checkpointed(command: list[str], env: dict[str, str], runs: Path, step: int) -> None:
    from bert_repro.training.checkpoint import complete_checkpoints

    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 540
    while not any(  # <runs>/<task>/<run>/checkpoints: the first phase's, in pre-training
        int(path.name.rpartition("_")[2]) == step
        for root in runs.glob("*/*/checkpoints")
        for path in complete_checkpoints(root.parent)
    ):
        assert process.poll() is None, "the run ended before the checkpoint it was to be killed at"
        assert time.monotonic() < deadline, f"no checkpoint at step {step} within 540 s"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def assert_same_training(runs: dict, steps: int) -> None:
    """2 workers trained as one process would: same losses, grad norms, weights and metrics."""
    (two, two_log, two_weights), (one, one_log, one_weights) = runs["two"], runs["one"]
    assert two["data_parallel_ranks"] == 2 and one["data_parallel_ranks"] == 1
    assert two["run_id"] == one["run_id"]  # the launch is not science: same run, resumable
    assert two["optimizer_steps"] == one["optimizer_steps"] == steps
    assert two["tokens_seen"] == one["tokens_seen"]
    assert len(two_log) == steps
    for a, b in zip(two_log, one_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    for name, value in one_weights.items():
        np.testing.assert_allclose(two_weights[name], value, atol=1e-6, err_msg=name)
    assert two["metrics"] == pytest.approx(one["metrics"], abs=1e-5)


@pytest.mark.slow
def test_two_msrun_workers_train_like_one_process(tmp_path):
    """Fine-tuning: 2 CPU workers under msrun vs one process, same global batch.

    Each worker also checks at the end that both ranks hold the same weights (else it fails).
    """
    assert_same_training(one_and_two_workers(tmp_path, ARGS, "mrpc"), steps=3)
    worker_1 = (tmp_path / "logs" / "worker_1.log").read_text()
    assert "Traceback" not in worker_1 and "record:" not in worker_1


@pytest.mark.slow
def test_two_msrun_workers_pretrain_like_one_process_across_a_kill(tmp_path):
    """Pre-training, both phases: rank 0 builds the shards, both ranks take their rows of every
    batch, rank 0 alone checkpoints and records; killed after its first checkpoint and launched
    again, the 2-worker run still ends where one uninterrupted process does."""
    args = [
        "+experiment=pretrain_mini_mlm_nsp",
        *TINY_PRETRAIN,
        "pretrain.phase2_fraction=0.5",
        "pretrain.phase2_max_seq_length=256",
        "hub.offline=true",
        "speed.cpu_threads=1",
        *DROPOUT_ON,  # each rank must draw its rows of the whole batch's masks
    ]
    runs = one_and_two_workers(tmp_path, args, "pretraining", kill_after_step=2)
    assert_same_training(runs, steps=4)
    assert runs["two"][0]["resumed_from"]  # the relaunch continued from the kept checkpoint

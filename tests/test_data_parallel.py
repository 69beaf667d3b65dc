"""Data parallel under msrun: each rank's share of a batch, and two CPU workers against one."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from bert_repro import backend, cpu_backend
from bert_repro.training import distributed
from tests.conftest import REPO

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


@pytest.mark.slow
def test_two_msrun_workers_train_like_one_process(tmp_path):
    """2 CPU workers under msrun vs one process, same global batch: same losses and weights.

    Each worker also checks at the end that both ranks hold the same weights (else it fails).
    """
    env = {**os.environ, "MSRUN_PORT": str(free_port()), "MSRUN_LOG_DIR": str(tmp_path / "logs")}
    runs = {}
    for name, command in {
        "two": [str(REPO / "scripts" / "msrun.sh"), "2"],
        "one": [sys.executable, str(REPO / "run.py")],
    }.items():
        paths = [f"paths.runs={tmp_path / name}", f"paths.results={tmp_path / name / 'results'}"]
        launch([*command, *ARGS, *paths], env)
        (record_path,) = (tmp_path / name / "results" / "runs" / "mrpc").glob("*.json")
        record = json.loads(record_path.read_text())
        run_dir = Path(record["run_dir"])
        log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
        weights = load_file(run_dir / "checkpoint" / "model.safetensors")
        runs[name] = record, [r for r in log if "loss" in r], weights

    (two, two_log, two_weights), (one, one_log, one_weights) = runs["two"], runs["one"]
    assert two["data_parallel_ranks"] == 2 and one["data_parallel_ranks"] == 1
    assert two["run_id"] == one["run_id"]  # the launch is not science: same run, resumable
    assert two["optimizer_steps"] == one["optimizer_steps"] == 3
    assert two["tokens_seen"] == one["tokens_seen"]
    assert len(two_log) == 3  # rank 0 alone logs
    for a, b in zip(two_log, one_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    for name, value in one_weights.items():
        np.testing.assert_allclose(two_weights[name], value, atol=1e-6, err_msg=name)
    assert two["metrics"] == pytest.approx(one["metrics"])
    worker_1 = (tmp_path / "logs" / "worker_1.log").read_text()
    assert "Traceback" not in worker_1 and "record:" not in worker_1

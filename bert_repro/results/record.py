"""Result records: one JSON per run, written atomically, carrying everything to reproduce it."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import resource
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bert_repro.config import run_id
from bert_repro.data.io import write_json_atomic

PACKAGES = (
    "mindspore",
    "mindnlp",
    "transformers",
    "tokenizers",
    "datasets",
    "safetensors",
    "hydra-core",
    "omegaconf",
    "numpy",
    "scipy",
    "scikit-learn",
    "wandb",
)
REPO = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.cache
def git_state() -> dict[str, Any]:
    """The commit the code came from, and whether the tree had uncommitted changes.

    Cached: the first call (at launch) holds, so a run that outlives a commit records the code
    it ran, not the commit made while it trained.
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def machine_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_record(
    cfg: DictConfig,
    run_dir: Path,
    *,
    stage: str,
    task: str,
    metrics: dict[str, float],
    headline: str,
    state: Any,
    planned_steps: int,
    started: float,
    device: str,
    ranks: int = 1,
    **fields: Any,
) -> dict[str, Any]:
    """The fields every stage's record shares; `fields` adds the stage's own (data, model...).

    `state` is the loop's TrainState. A run that stopped before its planned steps is `partial`.
    `device` (what `device=auto` resolved to) and `ranks` (msrun workers sharing each batch) come
    from the caller, so writing a record never loads the framework.
    """
    record = {
        "run_id": run_id(cfg),
        "status": "complete" if state.step >= planned_steps else "partial",
        "stage": stage,
        "experiment": cfg.experiment,
        "task": task,
        "split": "dev",
        "metrics": metrics,
        "headline_metric": headline,
        "history": state.evals,
        **fields,
        "seed": cfg.seed,
        "lr": cfg.optim.lr,
        "optimizer_steps": state.step,
        "epochs": cfg.trainer.epochs,
        "batch_size": cfg.trainer.batch_size,
        "tokens_seen": state.tokens_seen,
        "data_parallel_ranks": ranks,
        "device": device,
        "precision": cfg.trainer.precision,
        "train_seconds": round(state.train_seconds, 2),
        "wall_seconds": round(time.time() - started, 2),
        "tokens_per_second": round(state.tokens_seen / max(state.train_seconds, 1e-9), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "resumed_from": state.resumed_from,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "versions": package_versions(),
        "git": git_state(),
        "machine": machine_info(),
        "finished_at": now_iso(),
        "run_dir": str(run_dir),
    }
    return repo_relative(record)


def repo_relative(tree: Any) -> Any:
    """``tree`` with every absolute path inside the repository made relative to it.

    A record travels: it must name its run dir and checkpoint, not the machine that ran it.
    """
    if isinstance(tree, dict):
        return {key: repo_relative(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [repo_relative(value) for value in tree]
    if isinstance(tree, str) and tree.startswith(f"{REPO}/"):
        return tree.removeprefix(f"{REPO}/")
    return tree


def store_record(record: dict[str, Any], run_dir: Path, results_dir: Path) -> Path:
    """Write the record into the run dir and the results store (results/runs/<task>/<id>.json)."""
    write_json_atomic(run_dir / "record.json", record)
    target = store_path(record, results_dir)
    write_json_atomic(target, record)
    return target


def store_path(record: dict[str, Any], results_dir: Path) -> Path:
    """Where the results store keeps a run's record: results/runs/<task>/<run id>.json."""
    return results_dir / "runs" / record["task"] / f"{record['run_id']}.json"

"""Resumable checkpoints: weights, optimizer moments, schedule position and RNG state.

A checkpoint is written into a temporary directory and renamed into place, so a run killed
mid-write never leaves a half checkpoint that a resume would pick up.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

PREFIX = "step_"


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save_checkpoint(
    run_dir: Path,
    step: int,
    weights: dict[str, np.ndarray],
    optimizer: dict[str, np.ndarray],
    state: dict[str, Any],
    keep: int,
) -> Path:
    root = checkpoint_root(run_dir)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{PREFIX}{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, tmp / "model.safetensors")
    save_file(optimizer, tmp / "optimizer.safetensors")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(root.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    complete = sorted(checkpoint_root(run_dir).glob(f"{PREFIX}*"))
    return complete[-1] if complete else None


def load_checkpoint(
    path: Path,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    return (
        load_file(path / "model.safetensors"),
        load_file(path / "optimizer.safetensors"),
        json.loads((path / "trainer_state.json").read_text()),
    )

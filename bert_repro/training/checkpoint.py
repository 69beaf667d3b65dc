"""Resumable checkpoints: weights, optimizer moments, schedule position and RNG state.

A checkpoint is written into a temporary directory and renamed into place, so a run killed
mid-write never leaves a half checkpoint that a resume would pick up. Saving a step that already
has a checkpoint moves the old copy aside before the new one takes its name: at every instant
`step_N` is complete or absent, never half deleted. A resume still skips any `step_N` without
all its files (left by older code, which deleted first, or by a disk that lost them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from bert_repro.data.io import share

PREFIX = "step_"
FILES = ("model.safetensors", "optimizer.safetensors", "trainer_state.json")


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
    replaced = root / f".old-{PREFIX}{step:08d}"
    for leftover in (tmp, replaced):  # from a run killed mid-save
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, tmp / "model.safetensors")
    save_file(optimizer, tmp / "optimizer.safetensors")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1))
    share(tmp)
    if final.exists():
        final.rename(replaced)  # never delete first: a kill here leaves the older steps intact
    tmp.rename(final)
    shutil.rmtree(replaced, ignore_errors=True)
    kept = complete_checkpoints(run_dir)[-keep:]
    for old in root.glob(f"{PREFIX}*"):  # older ones, and any a kill left half deleted
        if old not in kept:
            shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The `step_N` folders holding every checkpoint file, oldest first."""
    found = sorted(checkpoint_root(run_dir).glob(f"{PREFIX}*"))
    return [path for path in found if all((path / name).is_file() for name in FILES)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    complete = complete_checkpoints(run_dir)
    return complete[-1] if complete else None


def drop_checkpoints_from(run_dir: Path, step: int) -> Path | None:
    """Delete the checkpoints at `step` and later (their weights gave a non-finite loss); return
    the latest one left."""
    for path in sorted(checkpoint_root(run_dir).glob(f"{PREFIX}*")):
        if int(path.name.removeprefix(PREFIX)) >= step:
            shutil.rmtree(path, ignore_errors=True)
    return latest_checkpoint(run_dir)


def load_checkpoint(
    path: Path,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    return (
        load_file(path / "model.safetensors"),
        load_file(path / "optimizer.safetensors"),
        json.loads((path / "trainer_state.json").read_text()),
    )

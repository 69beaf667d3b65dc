"""A run directory across launches: one launch at a time, a finished run found and its record's
copy in the results store made whole, and nothing left behind by a launch that trained nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bert_repro.data.io import file_mode, write_json_atomic
from bert_repro.errors import UserError
from bert_repro.results.record import store_path
from bert_repro.training import distributed

LOCK = ".lock"
# What a launch writes before its stage trains: Hydra's config copy and log, and the lock.
LAUNCH_FILES = {".hydra", "run.log", LOCK}


@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run dir for the whole launch.

    Two launches of one config share a run dir: their checkpoints and logs would interleave.
    The second fails at once with the first's pid. flock is released by the kernel when the
    holder dies, so a killed run never leaves a stale lock.
    """
    if not distributed.is_main():  # data parallel: rank 0 holds it for every rank
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, file_mode())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(
                f"already running (pid {holder}) in {run_dir}; wait for it, or stop that process"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def finished_record(run_dir: Path) -> dict[str, Any] | None:
    """The run dir's record if it is complete: a relaunch (or a planned sweep) skips that run.

    An unreadable record counts as unfinished: the relaunch resumes from the last checkpoint and
    writes it again.
    """
    path = run_dir / "record.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError as err:
        print(f"{path} is unreadable ({err}); the run finishes again", file=sys.stderr)
        return None
    return record if isinstance(record, dict) and record.get("status") == "complete" else None


def repair_store(record: dict[str, Any], results_dir: Path) -> Path | None:
    """Write the record into the results store if its copy there is missing or differs.

    The run dir's record is written first; a run killed before the store's copy would otherwise
    be "finished" without a result. Returns the path written, if any.
    """
    target = store_path(record, results_dir)
    try:
        if json.loads(target.read_text()) == record:
            return None
    except (OSError, ValueError):
        pass
    write_json_atomic(target, record)
    return target


def remove_if_stub(run_dir: Path) -> bool:
    """Delete a run dir that holds only what the launch wrote (and empty files): a launch that
    failed before training leaves nothing for the report to count as crashed."""
    if not run_dir.is_dir():
        return False
    for entry in run_dir.iterdir():
        if entry.name not in LAUNCH_FILES and not (entry.is_file() and entry.stat().st_size == 0):
            return False
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # runs/<task>/ goes too when this was its only run
        run_dir.parent.rmdir()
    return True

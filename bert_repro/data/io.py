"""Files a run writes and data it fetches: atomic JSON, shared file modes, the hub's one error.

safetensors, `save_pretrained` and `tempfile.mkstemp` create files with mode 0600 whatever the
umask says; the committed results are 0644. `share` gives a file the mode `open()` would have.
Every reader that falls back on the dataset hub goes through `load_hub_rows`, so an offline run
fails the same way everywhere: one line naming the offline alternative.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bert_repro.errors import UserError


@functools.cache
def file_mode() -> int:
    """0666 less the umask: the mode a plain `open(path, "w")` creates files with."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def share(path: Path) -> None:
    """Give `path`, or every file under it when it is a directory, the umask's file mode."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for file in files:
        file.chmod(file_mode())


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temp file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())  # mkstemp's 0600 would hide the record from other users
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=1, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_hub_rows(dataset: str, config: str | None, split: str, offline_fix: str) -> Any:
    """One split of a hub dataset via `datasets` (imported only here, when a reader needs it).

    Network down, cache missing, unknown name: all need the same fix, which the error names.
    """
    try:
        import datasets

        return datasets.load_dataset(dataset, config, split=split)
    except Exception as err:
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        where = f"{dataset}/{config}" if config else dataset
        raise UserError(
            f"could not load {where} [{split}] from the hub ({reason}); offline, use {offline_fix}"
        ) from None

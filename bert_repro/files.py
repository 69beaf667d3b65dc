"""Permissions of what a run writes: records and weights are for others to read.

safetensors, `save_pretrained` and `tempfile.mkstemp` create files with mode 0600 whatever the
umask says; the committed results are 0644. `share` gives a file the mode `open()` would have.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


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

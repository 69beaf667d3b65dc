"""The checkpoints kept in results/checkpoints/ are the ones their records describe.

Fine-tuning studies start from these files instead of pre-training again, so a file that drifted
from its run (re-exported, edited, truncated by a bad checkout) would silently change them.
"""

import hashlib
import json

import pytest

from bert_repro.results.record import REPO

CHECKPOINTS = REPO / "results" / "checkpoints"
EXPORTED = [
    record
    for path in sorted((REPO / "results" / "runs").glob("*/*.json"))
    if (record := json.loads(path.read_text())).get("export")
]


def test_every_committed_checkpoint_has_a_record():
    kept = {p.name for p in CHECKPOINTS.iterdir()} if CHECKPOINTS.is_dir() else set()
    assert kept <= {r["export"]["path"].split("/")[-1] for r in EXPORTED}


@pytest.mark.parametrize("record", EXPORTED, ids=[r["experiment"] for r in EXPORTED])
def test_committed_checkpoint_files_match_their_record(record):
    export = record["export"]
    directory = REPO / export["path"]
    assert sorted(p.name for p in directory.iterdir()) == sorted(export["sha256"])
    for name, digest in export["sha256"].items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name
    assert export["path"].startswith("results/checkpoints/")

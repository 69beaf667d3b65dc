"""The checkpoints kept in results/checkpoints/ are the ones their records describe.

Fine-tuning studies start from these files instead of pre-training again, so a file that drifted
from its run (re-exported, edited, truncated by a bad checkout) would silently change them.
"""

import hashlib
import json

import numpy as np
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


@pytest.mark.parametrize("record", EXPORTED, ids=[r["experiment"] for r in EXPORTED])
def test_committed_checkpoint_loads_as_model_pretrained(record, framework, tmp_path):
    """What the study does with a kept checkpoint: `model.pretrained=results/checkpoints/<name>`
    builds a classifier whose encoder holds the checkpoint's weights (not a fresh init) and
    scores a sentence."""
    from safetensors.numpy import load_file

    from bert_repro.models.factory import build_classifier
    from tests.conftest import compose

    directory = REPO / record["export"]["path"]
    overrides = [f"model={record['model']['name']}", f"model.pretrained={directory}"]
    model, tokenizer, source = build_classifier(
        compose(overrides, tmp_path).model, 2, {0: "a", 1: "b"}
    )
    assert source.kind == "local"
    saved = load_file(directory / "model.safetensors")
    name = next(k for k in saved if k.endswith("word_embeddings.weight"))
    loaded = model.bert.embeddings.word_embeddings.weight.asnumpy()
    assert np.array_equal(loaded, saved[name].astype(loaded.dtype))
    batch = tokenizer(["a film worth seeing"], return_tensors="ms")
    logits = model(**batch).logits.asnumpy()
    assert logits.shape == (1, 2) and np.isfinite(logits).all()

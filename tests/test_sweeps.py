"""Sweeps: parallel and cluster launchers, skipping finished points, tables at a sweep's end,
and concurrent writers to the results store."""

import json
import multiprocessing
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bert_repro.data.io import write_json_atomic
from bert_repro.experiments.callbacks import RegenerateReport
from bert_repro.results.record import store_record
from tests.conftest import compose
from tests.test_cli import run

TINY_SWEEP = [
    "model=bert_tiny",
    "model.pretrained=null",
    "task=rte",
    "data=sample",
    "data.max_train_examples=16",
    "data.max_eval_examples=16",
    "trainer.batch_size=8",
    "trainer.max_steps=2",
    "seed=1,2",
]


def test_parallel_sweep_writes_tables_and_a_relaunch_skips_every_point(tmp_path):
    paths = [f"paths.runs={tmp_path}/runs", f"paths.results={tmp_path}/results"]
    first = run(["run.py", "-m", *TINY_SWEEP, *paths, "hydra/launcher=local_parallel"])
    assert first.returncode == 0, first.stderr[-3000:]
    records = sorted((tmp_path / "results" / "runs" / "rte").glob("*.json"))
    assert len(records) == 2
    assert {json.loads(p.read_text())["seed"] for p in records} == {1, 2}
    assert "report: 2 records" in first.stdout  # the multirun-end callback rebuilt the tables
    summary = (tmp_path / "results" / "tables" / "runs.csv").read_text()
    assert all(p.stem in summary for p in records)
    written = {p: p.stat().st_mtime_ns for p in records}

    # The same sweep through submitit's local executor: both points are found finished.
    folder = tmp_path / "submitit"
    launcher = ["hydra/launcher=submitit_local", f"hydra.launcher.submitit_folder={folder}"]
    again = run(["run.py", "-m", *TINY_SWEEP, *paths, *launcher])
    assert again.returncode == 0, again.stderr[-3000:]
    logs = [p.read_text() for p in folder.glob("*_log.out")]
    assert len(logs) == 2 and all("already finished" in log for log in logs)
    assert {p: p.stat().st_mtime_ns for p in records} == written  # nothing retrained


def test_slurm_launcher_composes_with_its_placeholders(tmp_path):
    cfg = compose(["+experiment=glue_mnli", "hydra/launcher=slurm"], tmp_path, with_hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition is None and launcher.gpus_per_node == 0
    assert launcher.timeout_min > 0 and launcher.cpus_per_task > 0
    assert launcher.submitit_folder == f"{tmp_path}/runs/slurm/%j"


def test_local_parallel_launcher_defaults_to_two_jobs(tmp_path):
    cfg = compose(["hydra/launcher=local_parallel"], tmp_path, with_hydra=True)
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert cfg.hydra.launcher.n_jobs == 2
    assert compose([], tmp_path, with_hydra=True).hydra.launcher._target_.endswith("BasicLauncher")


@pytest.mark.parametrize("name", ["glue_rte", "glue_mrpc", "glue_cola", "glue_stsb", "glue_sst2"])
def test_preset_sweep_declares_lr_grid_and_seeds(name, tmp_path):
    cfg = compose([f"+experiment={name}"], tmp_path, with_hydra=True)
    params = cfg.hydra.sweeper.params
    assert list(cfg.sweep) == [f"{key}={value}" for key, value in params.items()]
    assert params["optim.lr"] == "5e-5,4e-5,3e-5,2e-5"
    assert len(str(params["seed"]).split(",")) == (2 if name == "glue_sst2" else 5)


def test_report_callback_failure_is_one_line_not_an_error(tmp_path, capsys):
    (tmp_path / "results").write_text("a file where the store should be")
    config = OmegaConf.create({"paths": {"results": str(tmp_path / "results"), "runs": "x"}})
    RegenerateReport().on_multirun_end(config=config)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("report: tables not regenerated")


def _write_records(worker: int, root: str, count: int) -> None:
    """One writer process: its own records, plus the same shared file every time."""
    results = Path(root) / "results"
    for i in range(count):
        record = {"run_id": f"w{worker}-{i:03d}", "task": "rte", "payload": "x" * 2000, "i": i}
        store_record(record, Path(root) / "runs" / f"w{worker}-{i:03d}", results)
        write_json_atomic(results / "shared.json", {"worker": worker, "i": i, "pad": "y" * 4000})


def test_concurrent_writers_lose_and_corrupt_nothing(tmp_path):
    workers, count = 4, 50
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_write_records, args=(w, str(tmp_path), count))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    stored = sorted((tmp_path / "results" / "runs" / "rte").glob("*.json"))
    expected = {f"w{w}-{i:03d}" for w in range(workers) for i in range(count)}
    assert {p.stem for p in stored} == expected
    assert all(json.loads(p.read_text())["run_id"] == p.stem for p in stored)
    in_run_dirs = list((tmp_path / "runs").glob("*/record.json"))
    assert len(in_run_dirs) == workers * count
    assert all(json.loads(p.read_text())["i"] >= 0 for p in in_run_dirs)
    shared = json.loads((tmp_path / "results" / "shared.json").read_text())
    assert shared["i"] == count - 1 and shared["pad"] == "y" * 4000  # one writer's last, whole
    assert not list(tmp_path.rglob("*.tmp"))  # no temp file left behind

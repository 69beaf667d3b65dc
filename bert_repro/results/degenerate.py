"""Degenerate runs: a model that predicts one class, one value or no answer is a baseline.

Such a run scores exactly what a constant predictor scores (MRPC all-positive: F1 81.2), which reads
like a result unless it is flagged. The stages flag their record at the end of the run from the dev
predictions (:func:`from_predictions`); :func:`from_metrics` applies what the metrics alone prove,
so records written before the flag existed are checked too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

NEARLY_ALL = 0.95
"""A classifier whose most common dev prediction covers this share of dev is degenerate."""


def from_predictions(predictions: Sequence[float] | np.ndarray, regression: bool) -> str:
    """Why the dev predictions are (nearly) constant, or '' when they vary."""
    values = np.asarray(predictions)
    if values.size == 0:
        return ""
    if regression:
        spread = float(values.std())
        return f"constant regressor (std of dev predictions {spread:.2g})" if spread < 1e-6 else ""
    classes, counts = np.unique(values, return_counts=True)
    share = counts.max() / values.size
    if share < NEARLY_ALL:
        return ""
    return f"predicts class {classes[counts.argmax()]} for {100 * share:.0f}% of dev"


def from_metrics(metrics: Mapping[str, float]) -> str:
    """What the metrics alone prove about a constant predictor, or ''.

    - SQuAD v2.0: HasAns F1 0 and NoAns exact 100 = no answer to any question;
    - F1 = 2a/(1+a) at accuracy a (binary, positive class 1): the positive class for every example;
    - Matthews correlation or F1 exactly 0, or a correlation that is not a number: one class or
      one value (F1 0 also when every positive prediction is wrong: no result either way).
    """
    if metrics.get("HasAns_f1") == 0 and metrics.get("NoAns_exact") == 100:
        return "answers no question (HasAns F1 0.0, NoAns exact 100.0)"
    for key, value in metrics.items():
        name = key.rpartition("/")[2]
        if name in ("pearson", "spearman") and not _finite(value):
            return f"constant regressor ({key} undefined)"
        if name == "matthews_corr" and value == 0:
            return f"one class for every example ({key} exactly 0)"
        if name == "f1" and value == 0:
            return f"no correct positive-class prediction ({key} exactly 0)"
        accuracy = metrics.get(key.replace("f1", "accuracy")) if name == "f1" else None
        if _finite(accuracy) and _finite(value):
            rate = accuracy / 100
            if value > 0 and math.isclose(value, 200 * rate / (1 + rate), abs_tol=1e-6):
                return f"positive class for every example ({key} = 2a/(1+a) at accuracy a)"
    return ""


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)

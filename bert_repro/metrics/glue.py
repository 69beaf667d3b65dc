"""GLUE metrics as the BERT paper reports them (section 4.1, Table 1), via scikit-learn/scipy.

`evaluate.load("glue")` fetches its code from the hub at run time and fails offline, so the same
definitions are taken straight from scikit-learn and scipy here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

METRIC_FUNCTIONS = {
    "accuracy": lambda y, p: accuracy_score(y, p),
    "f1": lambda y, p: f1_score(y, p, pos_label=1),  # positive class: paraphrase / duplicate
    "matthews_corr": lambda y, p: matthews_corrcoef(y, p),
    "pearson": lambda y, p: pearsonr(p, y)[0],
    "spearman": lambda y, p: spearmanr(p, y)[0],
}


def glue_metrics(
    metric_names: Sequence[str], labels: Sequence[float], predictions: Sequence[float]
) -> dict[str, float]:
    """Compute the named metrics, as percentages (the paper's scale: MRPC F1 88.9, not 0.889)."""
    y, p = np.asarray(labels), np.asarray(predictions)
    if len(y) != len(p) or len(y) == 0:
        raise ValueError(f"need equally many labels and predictions, got {len(y)} and {len(p)}")
    return {name: 100.0 * float(METRIC_FUNCTIONS[name](y, p)) for name in metric_names}

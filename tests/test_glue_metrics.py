"""GLUE metrics against values computed by hand."""

import math

import pytest

from bert_repro.metrics.glue import glue_metrics


def test_accuracy_and_f1_by_hand():
    labels = [1, 1, 0, 0, 1]
    preds = [1, 0, 0, 1, 1]
    # TP=2, FP=1, FN=1 -> precision 2/3, recall 2/3, F1 2/3; accuracy 3/5
    scores = glue_metrics(["accuracy", "f1"], labels, preds)
    assert scores["accuracy"] == pytest.approx(60.0)
    assert scores["f1"] == pytest.approx(200 / 3)


def test_matthews_by_hand():
    labels = [1, 1, 1, 0, 0, 0]
    preds = [1, 1, 0, 0, 0, 1]
    # TP=2 TN=2 FP=1 FN=1: (2*2-1*1)/sqrt(3*3*3*3) = 3/9
    assert glue_metrics(["matthews_corr"], labels, preds)["matthews_corr"] == pytest.approx(100 / 3)


def test_matthews_is_zero_for_a_constant_predictor():
    assert glue_metrics(["matthews_corr"], [0, 1, 1, 0], [1, 1, 1, 1])["matthews_corr"] == 0.0


def test_pearson_and_spearman_by_hand():
    labels = [1.0, 2.0, 3.0, 4.0]
    preds = [1.0, 3.0, 2.0, 4.0]
    # ranks differ by one swap: Spearman = 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 6*2/60 = 0.8
    scores = glue_metrics(["pearson", "spearman"], labels, preds)
    assert scores["spearman"] == pytest.approx(80.0)
    # Pearson: cov = 4/3... computed: centred x = [-1.5,-.5,.5,1.5], y = [-1.5,.5,-.5,1.5]
    expected = (2.25 - 0.25 - 0.25 + 2.25) / (1.5**2 * 2 + 0.5**2 * 2)
    assert scores["pearson"] == pytest.approx(100 * expected)
    assert not math.isnan(scores["pearson"])


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="equally many"):
        glue_metrics(["accuracy"], [1, 0], [1])

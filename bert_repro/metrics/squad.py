"""SQuAD v1.1 / v2.0 scoring, identical to the official evaluation scripts.

The paper's SQuAD numbers (Tables 2 and 3) come from the official scripts, so our scores must match
them to the last digit; the real-data tests check this against official leaderboard predictions.
Only the standard library is used so that scoring never pulls in the training stack.
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def gold_answers(dataset: Mapping[str, Any]) -> dict[str, list[str]]:
    """Map each question id to its gold answer texts; an unanswerable v2.0 question maps to []."""
    return {
        qa["id"]: [answer["text"] for answer in qa["answers"]]
        for article in dataset["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (the official rule)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, ground_truth: str) -> float:
    """1.0 when both answers are equal after normalisation, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction: str, ground_truth: str) -> float:
    """Bag-of-tokens F1 after normalisation; two empty answers agree (the v2.0 no-answer rule)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    num_same = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_v1_scores(
    gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> dict[str, float | int]:
    """Official v1.1 EM and F1 (percent, max over gold answers); a missing prediction scores 0.

    Predictions for ids outside `gold` are ignored, as the official script does.
    """
    exact = f1 = 0.0
    missing = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            missing += 1
            continue
        prediction = predictions[qid]
        exact += max(exact_match(prediction, answer) for answer in answers)
        # The v1.1 script gives F1 0 to a prediction with no tokens, even against a gold such as
        # "." that also normalises to nothing; v1.1 dev has three such golds.
        if normalize_answer(prediction):
            f1 += max(f1_score(prediction, answer) for answer in answers)
    total = len(gold)
    return {
        "exact_match": 100.0 * exact / total,
        "f1": 100.0 * f1 / total,
        "total": total,
        "missing": missing,
    }


def squad_v2_scores(
    gold: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float | int]:
    """Official v2.0 scores: overall, HasAns_ and NoAns_ splits, and the best no-answer threshold.

    An empty prediction is the no-answer; with `na_probs` (a no-answer score per question) a
    question whose score exceeds `na_prob_thresh` is scored as predicted no-answer, and
    best_exact/best_f1 report the scores at the threshold that maximises each, found as the
    official script does, and best_f1_HasAns_*/best_f1_NoAns_* split the scores at best_f1's.
    A missing prediction is scored as wrong, whatever the threshold.
    """
    has_ans = {qid: bool(answers) for qid, answers in gold.items()}
    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        # Golds that normalise to nothing are dropped; a question without any has gold "".
        golds = [answer for answer in answers if normalize_answer(answer)] or [""]
        exact_raw[qid] = max(exact_match(predictions[qid], answer) for answer in golds)
        f1_raw[qid] = max(f1_score(predictions[qid], answer) for answer in golds)

    if na_probs is None:
        exact, f1 = exact_raw, f1_raw
    else:
        _require_scores("na_probs", na_probs, exact_raw)
        exact = _apply_no_answer_threshold(exact_raw, na_probs, has_ans, na_prob_thresh)
        f1 = _apply_no_answer_threshold(f1_raw, na_probs, has_ans, na_prob_thresh)

    out: dict[str, float | int] = {
        **_percentages("", exact, f1, list(gold)),
        "missing": len(gold) - len(exact_raw),
        **_answerable_splits("", exact, f1, has_ans),
    }
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, thresh = _find_best_thresh(predictions, raw, na_probs, has_ans)
            out[f"best_{name}"] = best
            out[f"best_{name}_thresh"] = thresh
        # Where best_f1 comes from: a tuned tau can buy F1 by answering nothing (NoAns 100,
        # HasAns 0), which only the split at that tau shows.
        tau = out["best_f1_thresh"]
        out.update(
            _answerable_splits(
                "best_f1_",
                _apply_no_answer_threshold(exact_raw, na_probs, has_ans, tau),
                _apply_no_answer_threshold(f1_raw, na_probs, has_ans, tau),
                has_ans,
            )
        )
    return out


def _answerable_splits(
    prefix: str,
    exact: Mapping[str, float],
    f1: Mapping[str, float],
    has_ans: Mapping[str, bool],
) -> dict[str, float | int]:
    """The official HasAns_/NoAns_ scores (after ``prefix``); a split with no question is absent."""
    out: dict[str, float | int] = {}
    for split, wanted in (("HasAns_", True), ("NoAns_", False)):
        qids = [qid for qid, answerable in has_ans.items() if answerable is wanted]
        if qids:
            out.update(_percentages(prefix + split, exact, f1, qids))
    return out


def apply_null_threshold(
    predictions: Mapping[str, str], null_odds: Mapping[str, float], tau: float
) -> dict[str, str]:
    """Answer "" where the null score minus the best non-null score exceeds `tau`.

    This is BERT's SQuAD 2.0 decision rule; `tau` is best_f1_thresh from `squad_v2_scores` run on
    the best non-null predictions with `null_odds` as na_probs.
    """
    _require_scores("null_odds", null_odds, predictions)
    return {qid: "" if null_odds[qid] > tau else text for qid, text in predictions.items()}


def _require_scores(name: str, scores: Mapping[str, float], qids: Iterable[str]) -> None:
    """Refuse a no-answer score map that skips predicted questions, rather than guess a value."""
    lacking = [qid for qid in qids if qid not in scores]
    if lacking:
        raise ValueError(f"{name} has no entry for {len(lacking)} question(s), e.g. {lacking[0]!r}")


def _apply_no_answer_threshold(
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_ans: Mapping[str, bool],
    thresh: float,
) -> dict[str, float]:
    """Rescore questions predicted unanswerable: right exactly when the gold has no answer."""
    return {
        qid: float(not has_ans[qid]) if na_probs[qid] > thresh else score
        for qid, score in scores.items()
    }


def _percentages(
    prefix: str, exact: Mapping[str, float], f1: Mapping[str, float], qids: Sequence[str]
) -> dict[str, float | int]:
    """EM and F1 in percent over `qids`; a question without a score counts 0."""
    total = len(qids)
    return {
        f"{prefix}exact": 100.0 * sum(exact.get(qid, 0.0) for qid in qids) / total,
        f"{prefix}f1": 100.0 * sum(f1.get(qid, 0.0) for qid in qids) / total,
        f"{prefix}total": total,
    }


def _find_best_thresh(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    has_ans: Mapping[str, bool],
) -> tuple[float, float]:
    """The official sweep: start from all no-answer, then answer questions by rising na_prob.

    The threshold is the na_prob of the last question switched to answering, so predicting
    no-answer where na_prob > threshold reproduces the best score. Where answering nothing is
    best, the official script says 0.0, which answers every question whose na_prob is <= 0 (BERT's
    null odds often are); we return the float just below the smallest na_prob instead.
    """
    cur_score = best_score = float(sum(1 for qid in scores if not has_ans[qid]))
    scored = [na_probs[qid] for qid in scores]
    best_thresh = math.nextafter(min(scored), -math.inf) if scored else 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            cur_score += scores[qid]
        elif predictions[qid]:
            cur_score -= 1
        if cur_score > best_score:
            best_score, best_thresh = cur_score, na_probs[qid]
    return 100.0 * best_score / len(has_ans), best_thresh

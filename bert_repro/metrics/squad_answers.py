"""From start/end logits per window to answers: BERT's n-best search and null odds (run_squad.py).

For each question, every window proposes its top `n_best_size` starts and ends; a span is kept if
both ends lie in the context, its start is in that token's max-context window, it is not reversed
and at most `max_answer_length` tokens long. Spans are ranked by start + end logit. For v2.0 the
null score is the [CLS] start + end logit (the smallest over the question's windows), and the null
odds `null score - best non-null score` decide "no answer" against a threshold tau.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bert_repro.data.io import write_json_atomic
from bert_repro.data.squad import SquadExample
from bert_repro.data.squad_features import SquadFeatures


@dataclass
class SquadPredictions:
    """What the post-processing writes: best answers, n-best lists and (v2.0) null odds."""

    best_non_null: dict[str, str]  # the best span per question, never ""
    nbest: dict[str, list[dict[str, Any]]]
    null_odds: dict[str, float] | None  # v2.0 only

    def at_threshold(self, tau: float) -> dict[str, str]:
        """Answers with BERT's rule: "" where the null odds exceed tau (v1.1: the best span)."""
        if self.null_odds is None:
            return dict(self.best_non_null)
        return {
            qid: "" if self.null_odds[qid] > tau else text
            for qid, text in self.best_non_null.items()
        }


def postprocess(
    examples: Sequence[SquadExample],
    features: SquadFeatures,
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    n_best_size: int,
    max_answer_length: int,
    version_2: bool,
) -> SquadPredictions:
    """N-best spans per question from its windows' logits (each trimmed to the window's length)."""
    windows_of: dict[int, list[int]] = {}
    for window, example in enumerate(features.example_index):
        windows_of.setdefault(int(example), []).append(window)
    best, nbest, null_odds = {}, {}, {}
    for index, example in enumerate(examples):
        candidates: list[tuple[float, float, str]] = []  # (start logit, end logit, text)
        null = None
        for window in windows_of.get(index, []):
            starts, ends = start_logits[window], end_logits[window]
            score = float(starts[0] + ends[0])
            if null is None or score < null[0] + null[1]:
                null = (float(starts[0]), float(ends[0]))
            candidates += _spans(
                starts,
                ends,
                features.offsets[window],
                features.max_context[window],
                example.context,
                n_best_size,
                max_answer_length,
            )
        if version_2 and null is not None:
            candidates.append((*null, ""))
        entries = _top_unique(candidates, n_best_size)
        if version_2 and null is not None and all(text for _, _, text in entries):
            entries.append((*null, ""))
        if not entries:  # no valid span anywhere (tiny windows): Google's placeholder entry
            entries = [(0.0, 0.0, "")]
        totals = np.asarray([s + e for s, e, _ in entries])
        probs = np.exp(totals - totals.max())
        probs /= probs.sum()
        nbest[example.qid] = [
            {"text": text, "probability": float(p), "start_logit": s, "end_logit": e}
            for (s, e, text), p in zip(entries, probs, strict=True)
        ]
        non_null = next(((s, e, t) for s, e, t in entries if t), (0.0, 0.0, ""))
        best[example.qid] = non_null[2]
        if version_2:
            null_score = sum(null) if null is not None else 0.0
            null_odds[example.qid] = null_score - non_null[0] - non_null[1]
    return SquadPredictions(best, nbest, null_odds if version_2 else None)


def _spans(
    starts: np.ndarray,
    ends: np.ndarray,
    offsets: np.ndarray,
    max_context: np.ndarray,
    context: str,
    n_best_size: int,
    max_answer_length: int,
) -> list[tuple[float, float, str]]:
    """Valid (start logit, end logit, text) candidates of one window."""
    top_starts = np.argsort(-starts, kind="stable")[:n_best_size]
    top_ends = np.argsort(-ends, kind="stable")[:n_best_size]
    s, e = top_starts[:, None], top_ends[None, :]
    valid = (
        (offsets[s, 0] >= 0)
        & (offsets[e, 0] >= 0)
        & max_context[s]
        & (e >= s)
        & (e - s + 1 <= max_answer_length)
    )
    rows, cols = np.nonzero(valid)
    return [
        (
            float(starts[top_starts[r]]),
            float(ends[top_ends[c]]),
            context[offsets[top_starts[r], 0] : offsets[top_ends[c], 1]],
        )
        for r, c in zip(rows, cols, strict=True)
    ]


def _top_unique(
    candidates: list[tuple[float, float, str]], n_best_size: int
) -> list[tuple[float, float, str]]:
    """The best `n_best_size` candidates by start + end logit, one per distinct answer text."""
    ranked = sorted(candidates, key=lambda c: c[0] + c[1], reverse=True)
    seen: set[str] = set()
    out = []
    for candidate in ranked:
        if candidate[2] in seen:
            continue
        seen.add(candidate[2])
        out.append(candidate)
        if len(out) == n_best_size:
            break
    return out


def write_prediction_files(
    run_dir: Path, predictions: SquadPredictions, tuned_tau: float | None
) -> list[Path]:
    """predictions.json (tau = 0), nbest_predictions.json, null_odds.json in the official formats.

    With a dev-tuned tau (v2.0), predictions_dev_tuned.json holds the answers at that threshold.
    """
    files = {
        "predictions.json": predictions.at_threshold(0.0),
        "nbest_predictions.json": predictions.nbest,
    }
    if predictions.null_odds is not None:
        files["null_odds.json"] = predictions.null_odds
    if tuned_tau is not None:
        files["predictions_dev_tuned.json"] = predictions.at_threshold(tuned_tau)
    for name, payload in files.items():
        write_json_atomic(run_dir / name, payload)
    return [run_dir / name for name in files]

"""Stage `squad`: SQuAD v1.1 / v2.0 fine-tuning from config to result record (paper 4.2-4.3).

Load questions, build BertForQuestionAnswering, cut windows, `fit` on start/end positions, then
n-best post-processing (`metrics/squad_answers.py`) and the official scoring. v2.0 reports both
the untuned threshold (tau = 0) and the tau that maximises F1 on the evaluated dev questions (the
paper's protocol, labelled dev-tuned in the record).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from bert_repro import backend
from bert_repro.data.batching import collate
from bert_repro.data.squad import SquadExample, SquadSplits, load_splits
from bert_repro.data.squad_features import SquadFeatures, build_features
from bert_repro.metrics.squad import squad_v1_scores, squad_v2_scores
from bert_repro.metrics.squad_answers import SquadPredictions, postprocess, write_prediction_files
from bert_repro.models.factory import build_question_answering
from bert_repro.results.degenerate import from_metrics
from bert_repro.stages.common import FineTuning, fine_tune, inference, shuffled_batches

DEV_TUNED_NOTE = (
    "best_exact/best_f1 use the no-answer threshold tau that maximises them on these same "
    "evaluation questions (the paper's v2.0 protocol): optimistic; exact/f1 are at tau = 0"
)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fine-tune, predict and score, write the prediction files, the model and the record."""
    version_2 = bool(cfg.task.version_2_with_negative)
    return fine_tune(
        cfg,
        run_dir,
        "squad",
        partial(load_splits, cfg.data, version_2),
        build_question_answering,
        partial(_prepare, cfg, run_dir, version_2),
    )


def _prepare(
    cfg: DictConfig, run_dir: Path, version_2: bool, splits: SquadSplits, model: Any, tokenizer: Any
) -> FineTuning:
    task_cfg = cfg.task
    window_args = (task_cfg.max_seq_length, task_cfg.doc_stride, task_cfg.max_query_length)
    train = build_features(splits.train, tokenizer, *window_args, training=True)
    evals = build_features(splits.eval, tokenizer, *window_args, training=False)
    pad_id = tokenizer.pad_token_id
    written: list[Path] = [run_dir / "predictions.json"]  # the last evaluation's files

    def evaluate() -> dict[str, float]:
        starts, ends = predict_logits(model, evals, cfg.speed.eval_batch_size, pad_id)
        predictions = postprocess(
            splits.eval,
            evals,
            starts,
            ends,
            task_cfg.n_best_size,
            task_cfg.max_answer_length,
            version_2,
        )
        metrics = score(splits.eval, predictions)
        written[:] = write_prediction_files(run_dir, predictions, metrics.get("best_f1_thresh"))
        return metrics

    return FineTuning(
        task=task_cfg.name,
        about=(
            f"task={task_cfg.name} {splits.protocol['protocol']} train={len(splits.train)} "
            f"questions ({len(train)} windows) eval={len(splits.eval)} questions "
            f"({len(evals)} windows)"
        ),
        steps_per_epoch=-(-len(train) // cfg.trainer.batch_size),
        batches_for=shuffled_batches(
            cfg, train.encoded.lengths, lambda index: qa_batch(train, index, pad_id)
        ),
        evaluate=evaluate,
        headline="best_f1" if version_2 else "f1",
        data={
            "source": cfg.data.source,
            "root": cfg.data.root,
            **splits.protocol,
            "train_questions": len(splits.train),
            "train_windows": len(train),
            "eval_questions": len(splits.eval),
            "eval_windows": len(evals),
            "subsampled": bool(cfg.data.max_train_examples or cfg.data.max_eval_examples),
        },
        record_fields=lambda final: {
            "null_threshold": {"dev_tuned": True, "note": DEV_TUNED_NOTE} if version_2 else None,
            "prediction_files": [p.name for p in written],
            "degenerate": from_metrics(final),  # SQuAD v2.0: no answer to any question
        },
        outputs=f"predictions: {run_dir / 'predictions.json'}   ",
    )


def qa_batch(features: SquadFeatures, index: np.ndarray, pad_id: int) -> dict[str, np.ndarray]:
    """Windows padded to the batch's longest, with their answer start/end token positions."""
    batch = collate(features.encoded, index, pad_id)
    batch["start_positions"] = features.start_positions[index]
    batch["end_positions"] = features.end_positions[index]
    return batch


def predict_logits(
    model: Any, features: SquadFeatures, batch_size: int, pad_id: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start and end logits of every window, trimmed to its length, in the windows' order."""
    lengths = features.encoded.lengths
    starts: list[np.ndarray] = [np.empty(0)] * len(features)
    ends: list[np.ndarray] = [np.empty(0)] * len(features)
    batches = inference(
        model, lengths, batch_size, lambda index: collate(features.encoded, index, pad_id)
    )
    for index, out in batches:
        start_logits = backend.to_numpy(out.start_logits)
        end_logits = backend.to_numpy(out.end_logits)
        for row, window in enumerate(index):
            starts[window] = start_logits[row, : lengths[window]]
            ends[window] = end_logits[row, : lengths[window]]
    return starts, ends


def score(examples: Sequence[SquadExample], predictions: SquadPredictions) -> dict[str, float]:
    """Official scores in percent: v1.1 EM/F1; v2.0 at tau = 0 plus the dev-tuned best."""
    gold = {e.qid: [a.text for a in e.answers] for e in examples}
    if predictions.null_odds is None:
        scores = squad_v1_scores(gold, predictions.best_non_null)
    else:
        scores = squad_v2_scores(
            gold, predictions.best_non_null, predictions.null_odds, na_prob_thresh=0.0
        )
    return {k: v for k, v in scores.items() if k != "missing"}

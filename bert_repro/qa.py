"""Stage `squad`: SQuAD v1.1 / v2.0 fine-tuning from config to result record (paper 4.2-4.3).

Same shape as the GLUE stage: load questions, build BertForQuestionAnswering, cut windows, `fit`
on start/end positions, then n-best post-processing and the official scoring. v2.0 reports both
the untuned threshold (tau = 0) and the tau that maximises F1 on the evaluated dev questions (the
paper's protocol, labelled dev-tuned in the record).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from bert_repro import backend
from bert_repro.data.batching import collate, epoch_batches, eval_batches
from bert_repro.metrics.squad import squad_v1_scores, squad_v2_scores
from bert_repro.models.factory import build_question_answering, model_summary, save_finetuned
from bert_repro.results.degenerate import from_metrics
from bert_repro.results.record import run_record, store_record
from bert_repro.tasks.squad import SquadExample, SquadFeatures, build_features, load_splits
from bert_repro.tasks.squad_postprocess import SquadPredictions, postprocess, write_prediction_files
from bert_repro.training import distributed
from bert_repro.training.loop import final_metrics, fit
from bert_repro.training.run_logger import RunLogger

DEV_TUNED_NOTE = (
    "best_exact/best_f1 use the no-answer threshold tau that maximises them on these same "
    "evaluation questions (the paper's v2.0 protocol): optimistic; exact/f1 are at tau = 0"
)


def squad(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fine-tune, predict and score, write the prediction files, the model and the record."""
    started = time.time()
    task_cfg = cfg.task
    version_2 = bool(task_cfg.version_2_with_negative)
    splits = load_splits(cfg.data, version_2)

    backend.load_framework()
    backend.seed_everything(cfg.seed)
    model, tokenizer, source = build_question_answering(cfg.model)
    window_args = (task_cfg.max_seq_length, task_cfg.doc_stride, task_cfg.max_query_length)
    train = build_features(splits.train, tokenizer, *window_args, training=True)
    evals = build_features(splits.eval, tokenizer, *window_args, training=False)
    pad_id = tokenizer.pad_token_id
    batch_size = cfg.trainer.batch_size
    steps_per_epoch = -(-len(train) // batch_size)
    print(
        f"task={task_cfg.name} {splits.protocol['protocol']} train={len(splits.train)} questions "
        f"({len(train)} windows) eval={len(splits.eval)} questions ({len(evals)} windows) "
        f"model={source.kind}:{source.name} batch={batch_size} steps/epoch={steps_per_epoch} "
        f"epochs={cfg.trainer.epochs} lr={cfg.optim.lr}"
    )

    def batches_for(epoch: int) -> list[dict[str, np.ndarray]]:
        order = epoch_batches(
            train.encoded.lengths, batch_size, cfg.seed, epoch, cfg.speed.group_by_length
        )
        return [qa_batch(train, index, pad_id) for index in order]

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

    written: list[Path] = [run_dir / "predictions.json"]  # the last evaluation's files
    logger = RunLogger(cfg, run_dir)
    state = fit(model, batches_for, evaluate, cfg.optim, cfg.trainer, run_dir, logger.log)
    if not distributed.is_main():  # data parallel: rank 0 evaluates, saves and records
        return {}
    final = final_metrics(state, evaluate)

    final_dir = save_finetuned(model, tokenizer, run_dir, task_cfg.name)
    total_steps = steps_per_epoch * cfg.trainer.epochs
    record = run_record(
        cfg,
        run_dir,
        stage="squad",
        task=task_cfg.name,
        metrics=final,
        headline="best_f1" if version_2 else "f1",
        state=state,
        planned_steps=min(total_steps, cfg.trainer.max_steps or total_steps),
        started=started,
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
        null_threshold={"dev_tuned": True, "note": DEV_TUNED_NOTE} if version_2 else None,
        prediction_files=[p.name for p in written],
        model=model_summary(model, cfg.model, source, final_dir),
        degenerate=from_metrics(final),  # SQuAD v2.0: no answer to any question
    )
    target = store_record(record, run_dir, Path(cfg.paths.results))
    logger.finish(final)
    print(f"dev {json.dumps({k: round(v, 2) for k, v in final.items()})}")
    print(f"record: {target}   predictions: {run_dir / 'predictions.json'}   model: {final_dir}")
    return record


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
    model.eval()
    lengths = features.encoded.lengths
    starts: list[np.ndarray] = [np.empty(0)] * len(features)
    ends: list[np.ndarray] = [np.empty(0)] * len(features)
    with backend.no_grad():
        for index in eval_batches(lengths, batch_size):
            batch = collate(features.encoded, index, pad_id)
            out = model(**{k: backend.to_tensor(v) for k, v in batch.items()})
            start_logits, end_logits = (
                backend.to_numpy(out.start_logits),
                backend.to_numpy(out.end_logits),
            )
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

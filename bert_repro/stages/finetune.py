"""Stage `finetune`: GLUE fine-tuning from config to result record (paper section 4.1).

The stage key predates the other stages and is part of every GLUE run id, so it stays
`finetune`; its evaluation (`predict_scores`) also serves `bert_repro.predict`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from bert_repro import backend
from bert_repro.data.batching import Encoded, collate, encode
from bert_repro.data.glue import Example, load_examples
from bert_repro.metrics.glue import glue_metrics
from bert_repro.models.factory import build_classifier
from bert_repro.results.degenerate import from_metrics, from_predictions
from bert_repro.stages.common import FineTuning, fine_tune, inference, shuffled_batches
from bert_repro.tasks.glue import GlueTask, get_task

Splits = tuple[list[Example], dict[str, list[Example]]]  # train, {dev split: examples}


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fine-tune, evaluate on every dev split, save the model, write the result record."""
    task = get_task(cfg.task.name)
    id2label = {i: name for i, name in enumerate(task.labels)} or {0: "score"}
    return fine_tune(
        cfg,
        run_dir,
        "finetune",
        partial(_load, cfg, task),
        partial(build_classifier, num_labels=task.num_labels, id2label=id2label),
        partial(_prepare, cfg, task),
    )


def _load(cfg: DictConfig, task: GlueTask) -> Splits:
    data = cfg.data

    def load(split: str) -> list[Example]:
        return load_examples(task, data.source, split, data.root, data.hub_dataset)

    train = load("train")[: data.max_train_examples or None]
    devs = {s: load(s)[: data.max_eval_examples or None] for s in task.dev_splits}
    return train, devs


def _prepare(
    cfg: DictConfig, task: GlueTask, examples: Splits, model: Any, tokenizer: Any
) -> FineTuning:
    train_examples, dev_examples = examples
    max_len = cfg.task.max_seq_length
    train = encode(train_examples, tokenizer, max_len, task.is_regression)
    devs = {s: encode(ex, tokenizer, max_len, task.is_regression) for s, ex in dev_examples.items()}
    pad_id = tokenizer.pad_token_id
    flags: dict[str, str] = {}  # the last evaluation's degenerate-run check, per dev split

    def evaluate() -> dict[str, float]:
        metrics = {}
        for split, data in devs.items():
            scores = predict_scores(model, data, cfg.speed.eval_batch_size, pad_id)
            predictions = to_predictions(scores, task)
            flags[split] = from_predictions(predictions, task.is_regression)
            scores = glue_metrics(task.metrics, data.labels, predictions)
            prefix = "" if len(devs) == 1 else f"{split}/"
            metrics.update({f"{prefix}{name}": value for name, value in scores.items()})
        return metrics

    data_cfg = cfg.data
    return FineTuning(
        task=task.name,
        about=(
            f"task={task.name} train={len(train)} dev={ {s: len(d) for s, d in devs.items()} } "
            f"mean_tokens/example={train.lengths.mean():.1f}"
        ),
        steps_per_epoch=-(-len(train) // cfg.trainer.batch_size),
        batches_for=shuffled_batches(cfg, train.lengths, lambda i: collate(train, i, pad_id)),
        evaluate=evaluate,
        headline=task.headline if len(devs) == 1 else f"{task.dev_splits[0]}/{task.headline}",
        data={
            "source": data_cfg.source,
            "root": data_cfg.root,
            "train_examples": len(train),
            "eval_examples": {s: len(d) for s, d in devs.items()},
            "subsampled": bool(data_cfg.max_train_examples or data_cfg.max_eval_examples)
            or data_cfg.source == "sample",
        },
        record_fields=lambda final: {
            "degenerate": "; ".join(f"{s}: {f}" for s, f in flags.items() if f)
            or from_metrics(final)
        },
    )


def predict_scores(model: Any, data: Encoded, batch_size: int, pad_id: int) -> np.ndarray:
    """Logits (or regression scores) for every example, in the data's order."""

    def inputs(index: np.ndarray) -> dict[str, np.ndarray]:
        batch = collate(data, index, pad_id)
        batch.pop("labels", None)
        return batch

    out: np.ndarray | None = None
    for index, outputs in inference(model, data.lengths, batch_size, inputs):
        logits = backend.to_numpy(outputs.logits)
        if out is None:
            out = np.zeros((len(data), logits.shape[1]), np.float32)
        out[index] = logits
    return out if out is not None else np.zeros((0, 1), np.float32)


def to_predictions(scores: np.ndarray, task: GlueTask) -> np.ndarray:
    """Class indices, or the regression score itself (STS-B)."""
    return scores[:, 0] if task.is_regression else scores.argmax(-1)

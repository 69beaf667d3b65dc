"""Stage `swag`: SWAG multiple choice from config to result record (paper section 4.4).

Each example becomes four (context, ending) sequences that go through BERT together
(input_ids of shape batch x 4 x length); BertForMultipleChoice scores each choice from its pooled
[CLS] vector and the loss is a softmax over the four scores. Metric: accuracy (percent).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from bert_repro import backend
from bert_repro.data.batching import Encoded, collate, encode
from bert_repro.data.swag import NUM_CHOICES, SwagExample, choice_pairs, load_swag
from bert_repro.metrics.glue import glue_metrics
from bert_repro.models.factory import build_multiple_choice
from bert_repro.results.degenerate import from_predictions
from bert_repro.stages.common import FineTuning, fine_tune, inference, shuffled_batches

Splits = tuple[list[SwagExample], list[SwagExample]]  # train, dev


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fine-tune on SWAG train, report dev accuracy, save the model, write the record."""
    return fine_tune(
        cfg, run_dir, "swag", partial(_load, cfg), build_multiple_choice, partial(_prepare, cfg)
    )


def _load(cfg: DictConfig) -> Splits:
    data = cfg.data
    train, dev = (load_swag(data.source, s, data.root, data.hub_dataset) for s in ("train", "dev"))
    return train[: data.max_train_examples or None], dev[: data.max_eval_examples or None]


def _prepare(cfg: DictConfig, examples: Splits, model: Any, tokenizer: Any) -> FineTuning:
    train_examples, dev_examples = examples
    max_len = cfg.task.max_seq_length
    train = encode(choice_pairs(train_examples), tokenizer, max_len, regression=False)
    dev = encode(choice_pairs(dev_examples), tokenizer, max_len, regression=False)
    train_labels = np.asarray([e.label for e in train_examples], np.int64)
    dev_labels = np.asarray([e.label for e in dev_examples], np.int64)
    pad_id = tokenizer.pad_token_id
    flag = [""]  # the last evaluation's degenerate-run check

    def evaluate() -> dict[str, float]:
        predictions = predict_choices(model, dev, cfg.speed.eval_batch_size, pad_id).argmax(-1)
        flag[0] = from_predictions(predictions, regression=False)
        return glue_metrics(["accuracy"], dev_labels, predictions)

    data_cfg = cfg.data
    sample = data_cfg.source == "sample"
    return FineTuning(
        task="swag",
        about=f"task=swag train={len(train_examples)} dev={len(dev_examples)}",
        steps_per_epoch=-(-len(train_examples) // cfg.trainer.batch_size),
        batches_for=shuffled_batches(
            cfg,
            example_lengths(train),
            lambda index: {**choice_batch(train, index, pad_id), "labels": train_labels[index]},
        ),
        evaluate=evaluate,
        headline="accuracy",
        data={
            "source": data_cfg.source,
            "root": data_cfg.root,
            "train_examples": len(train_examples),
            "eval_examples": len(dev_examples),
            # The shipped sample is 10 real rows used as both splits: a pipeline check only.
            "train_is_eval": sample,
            "subsampled": bool(data_cfg.max_train_examples or data_cfg.max_eval_examples) or sample,
        },
        record_fields=lambda final: {"degenerate": flag[0]},
    )


def example_lengths(data: Encoded) -> np.ndarray:
    """An example's length is its longest choice (what its row is padded to)."""
    return data.lengths.reshape(-1, NUM_CHOICES).max(axis=1)


def choice_batch(data: Encoded, index: np.ndarray, pad_id: int) -> dict[str, np.ndarray]:
    """The four sequences of each selected example, padded to the batch's longest: (B, 4, L)."""
    rows = (index[:, None] * NUM_CHOICES + np.arange(NUM_CHOICES)).ravel()
    flat = collate(data, rows, pad_id)
    return {k: v.reshape(len(index), NUM_CHOICES, -1) for k, v in flat.items()}


def predict_choices(model: Any, data: Encoded, batch_size: int, pad_id: int) -> np.ndarray:
    """(examples, 4) choice scores in the data's order."""
    lengths = example_lengths(data)
    scores = np.zeros((len(lengths), NUM_CHOICES), np.float32)
    batches = inference(model, lengths, batch_size, lambda i: choice_batch(data, i, pad_id))
    for index, out in batches:
        scores[index] = backend.to_numpy(out.logits)
    return scores

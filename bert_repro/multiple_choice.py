"""Stage `swag`: SWAG multiple choice from config to result record (paper section 4.4).

Each example becomes four (context, ending) sequences that go through BERT together
(input_ids of shape batch x 4 x length); BertForMultipleChoice scores each choice from its pooled
[CLS] vector and the loss is a softmax over the four scores. Metric: accuracy (percent).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from bert_repro import backend
from bert_repro.data.batching import Encoded, collate, encode, epoch_batches, eval_batches
from bert_repro.metrics.glue import glue_metrics
from bert_repro.models.factory import build_multiple_choice, model_summary, save_finetuned
from bert_repro.results.degenerate import from_predictions
from bert_repro.results.record import run_record, store_record
from bert_repro.tasks.swag import NUM_CHOICES, choice_pairs, load_swag
from bert_repro.training import distributed
from bert_repro.training.loop import final_metrics, fit
from bert_repro.training.run_logger import RunLogger


def swag(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fine-tune on SWAG train, report dev accuracy, save the model, write the record."""
    started = time.time()
    data_cfg = cfg.data
    load = (data_cfg.source, data_cfg.root, data_cfg.hub_dataset)
    train_examples = load_swag(load[0], "train", *load[1:])
    dev_examples = load_swag(load[0], "dev", *load[1:])
    if data_cfg.max_train_examples:
        train_examples = train_examples[: data_cfg.max_train_examples]
    if data_cfg.max_eval_examples:
        dev_examples = dev_examples[: data_cfg.max_eval_examples]

    backend.load_framework()
    backend.seed_everything(cfg.seed)
    model, tokenizer, source = build_multiple_choice(cfg.model)
    max_len = cfg.task.max_seq_length
    train = encode(choice_pairs(train_examples), tokenizer, max_len, regression=False)
    dev = encode(choice_pairs(dev_examples), tokenizer, max_len, regression=False)
    train_labels = np.asarray([e.label for e in train_examples], np.int64)
    dev_labels = np.asarray([e.label for e in dev_examples], np.int64)
    pad_id = tokenizer.pad_token_id
    batch_size = cfg.trainer.batch_size
    steps_per_epoch = -(-len(train_examples) // batch_size)
    print(
        f"task=swag train={len(train_examples)} dev={len(dev_examples)} "
        f"model={source.kind}:{source.name} batch={batch_size} steps/epoch={steps_per_epoch} "
        f"epochs={cfg.trainer.epochs} lr={cfg.optim.lr}"
    )

    lengths = example_lengths(train)

    def batches_for(epoch: int) -> list[dict[str, np.ndarray]]:
        order = epoch_batches(lengths, batch_size, cfg.seed, epoch, cfg.speed.group_by_length)
        return [
            {**choice_batch(train, index, pad_id), "labels": train_labels[index]} for index in order
        ]

    flag = [""]  # the last evaluation's degenerate-run check

    def evaluate() -> dict[str, float]:
        predictions = predict_choices(model, dev, cfg.speed.eval_batch_size, pad_id).argmax(-1)
        flag[0] = from_predictions(predictions, regression=False)
        return glue_metrics(["accuracy"], dev_labels, predictions)

    logger = RunLogger(cfg, run_dir)
    state = fit(model, batches_for, evaluate, cfg.optim, cfg.trainer, run_dir, logger.log)
    if not distributed.is_main():  # data parallel: rank 0 evaluates, saves and records
        return {}
    final = final_metrics(state, evaluate)

    final_dir = save_finetuned(model, tokenizer, run_dir, "swag")
    total_steps = steps_per_epoch * cfg.trainer.epochs
    sample = data_cfg.source == "sample"
    record = run_record(
        cfg,
        run_dir,
        stage="swag",
        task="swag",
        metrics=final,
        headline="accuracy",
        state=state,
        planned_steps=min(total_steps, cfg.trainer.max_steps or total_steps),
        started=started,
        data={
            "source": data_cfg.source,
            "root": data_cfg.root,
            "train_examples": len(train_examples),
            "eval_examples": len(dev_examples),
            # The shipped sample is 10 real rows used as both splits: a pipeline check only.
            "train_is_eval": sample,
            "subsampled": bool(data_cfg.max_train_examples or data_cfg.max_eval_examples) or sample,
        },
        model=model_summary(model, cfg.model, source, final_dir),
        degenerate=flag[0],
    )
    target = store_record(record, run_dir, Path(cfg.paths.results))
    logger.finish(final)
    print(f"dev accuracy = {final['accuracy']:.2f}   all: {json.dumps(final)}")
    print(f"record: {target}   model: {final_dir}")
    return record


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
    model.eval()
    lengths = example_lengths(data)
    scores = np.zeros((len(lengths), NUM_CHOICES), np.float32)
    with backend.no_grad():
        for index in eval_batches(lengths, batch_size):
            batch = choice_batch(data, index, pad_id)
            logits = model(**{k: backend.to_tensor(v) for k, v in batch.items()}).logits
            scores[index] = backend.to_numpy(logits)
    return scores

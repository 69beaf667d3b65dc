"""Stage `finetune`: GLUE fine-tuning from config to result record (paper section 4.1)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from bert_repro import backend
from bert_repro.data.batching import collate, encode, epoch_batches
from bert_repro.data.glue import load_examples
from bert_repro.metrics.glue import glue_metrics
from bert_repro.models.factory import build_classifier, model_summary, save_finetuned
from bert_repro.predict import predict_scores, to_predictions
from bert_repro.results.degenerate import from_metrics, from_predictions
from bert_repro.results.record import run_record, store_record
from bert_repro.tasks.glue import GlueTask, get_task
from bert_repro.training import distributed
from bert_repro.training.loop import final_metrics, fit
from bert_repro.training.run_logger import RunLogger


def finetune(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fine-tune, evaluate on every dev split, save the model, write the result record."""
    started = time.time()
    task = get_task(cfg.task.name)
    data_cfg = cfg.data
    train_examples = load_examples(
        task, data_cfg.source, "train", data_cfg.root, data_cfg.hub_dataset
    )
    dev_examples = {
        split: load_examples(task, data_cfg.source, split, data_cfg.root, data_cfg.hub_dataset)
        for split in task.dev_splits
    }
    if data_cfg.max_train_examples:
        train_examples = train_examples[: data_cfg.max_train_examples]
    if data_cfg.max_eval_examples:
        dev_examples = {s: ex[: data_cfg.max_eval_examples] for s, ex in dev_examples.items()}

    backend.load_framework()
    backend.seed_everything(cfg.seed)
    id2label = {i: name for i, name in enumerate(task.labels)} or {0: "score"}
    model, tokenizer, source = build_classifier(cfg.model, task.num_labels, id2label)

    max_len = cfg.task.max_seq_length
    train = encode(train_examples, tokenizer, max_len, task.is_regression)
    devs = {s: encode(ex, tokenizer, max_len, task.is_regression) for s, ex in dev_examples.items()}
    pad_id = tokenizer.pad_token_id
    lengths = train.lengths
    batch_size = cfg.trainer.batch_size
    steps_per_epoch = -(-len(train) // batch_size)
    print(
        f"task={task.name} train={len(train)} dev={ {s: len(d) for s, d in devs.items()} } "
        f"model={source.kind}:{source.name} batch={batch_size} steps/epoch={steps_per_epoch} "
        f"epochs={cfg.trainer.epochs} lr={cfg.optim.lr} mean_tokens/example={lengths.mean():.1f}"
    )

    def batches_for(epoch: int) -> list[dict[str, np.ndarray]]:
        order = epoch_batches(lengths, batch_size, cfg.seed, epoch, cfg.speed.group_by_length)
        return [collate(train, index, pad_id) for index in order]

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

    logger = RunLogger(cfg, run_dir)
    state = fit(model, batches_for, evaluate, cfg.optim, cfg.trainer, run_dir, logger.log)
    if not distributed.is_main():  # data parallel: rank 0 evaluates, saves and records
        return {}
    final = final_metrics(state, evaluate)

    final_dir = save_finetuned(model, tokenizer, run_dir, task.name)
    record = run_record(
        cfg,
        run_dir,
        stage="finetune",
        task=task.name,
        metrics=final,
        headline=_headline_key(task, len(devs)),
        state=state,
        planned_steps=_planned_steps(cfg, steps_per_epoch),
        started=started,
        data={
            "source": data_cfg.source,
            "root": data_cfg.root,
            "train_examples": len(train),
            "eval_examples": {s: len(d) for s, d in devs.items()},
            "subsampled": bool(data_cfg.max_train_examples or data_cfg.max_eval_examples)
            or data_cfg.source == "sample",
        },
        model=model_summary(model, cfg.model, source, final_dir),
        degenerate="; ".join(f"{s}: {f}" for s, f in flags.items() if f) or from_metrics(final),
    )
    target = store_record(record, run_dir, Path(cfg.paths.results))
    logger.finish(final)
    headline = record["headline_metric"]
    print(f"dev {headline} = {final[headline]:.2f}   all: {json.dumps(final)}")
    print(f"record: {target}   model: {final_dir}")
    return record


def _planned_steps(cfg: DictConfig, steps_per_epoch: int) -> int:
    total = steps_per_epoch * cfg.trainer.epochs
    return min(total, cfg.trainer.max_steps or total)


def _headline_key(task: GlueTask, n_dev_splits: int) -> str:
    return task.headline if n_dev_splits == 1 else f"{task.dev_splits[0]}/{task.headline}"

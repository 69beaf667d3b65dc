"""The skeleton every stage shares: seed, build, fit, final evaluation, save, record.

A stage module `bert_repro.stages.<stage key>` exposes `run(cfg, run_dir) -> record`. The three
fine-tuning stages (finetune, squad, swag) supply what differs, their data, model, batches and
evaluation, as a `FineTuning`, and `fine_tune` runs the rest; pre-training, whose phases each
run their own `fit`, uses the pieces (`planned_steps`, `record_run`) directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from omegaconf import DictConfig

from bert_repro import backend
from bert_repro.data.batching import epoch_batches, eval_batches
from bert_repro.models.factory import ModelSource, model_summary, save_finetuned
from bert_repro.results.record import run_record, store_record
from bert_repro.training import distributed
from bert_repro.training.loop import final_metrics, fit
from bert_repro.training.run_logger import RunLogger

Batch = dict[str, np.ndarray]
Examples = TypeVar("Examples")


@dataclass
class FineTuning:
    """What a fine-tuning stage hands the skeleton once its features are built on the model."""

    task: str
    about: str  # the stage's part of the start line: task, example counts
    steps_per_epoch: int
    batches_for: Callable[[int], Sequence[Batch]]  # epoch -> its training batches
    evaluate: Callable[[], dict[str, float]]
    headline: str  # the metric the record leads with
    data: dict[str, Any]  # the record's data summary
    # final metrics -> the stage's own record fields (at least `degenerate`), after evaluation
    record_fields: Callable[[dict[str, float]], dict[str, Any]]
    outputs: str = ""  # what else the run wrote, for the last line


def planned_steps(total: int, max_steps: int | None) -> int:
    """Optimizer steps the run is meant to take: all of them, or the trainer.max_steps cut."""
    return min(total, max_steps or total)


def fine_tune(
    cfg: DictConfig,
    run_dir: Path,
    stage: str,
    load: Callable[[], Examples],
    build_model: Callable[[Any], tuple[Any, Any, ModelSource]],
    prepare: Callable[[Examples, Any, Any], FineTuning],
) -> dict[str, Any]:
    """Load the examples (data errors come before the model loads), seed, build the model
    (`build_model(cfg.model)`), let the stage `prepare(examples, model, tokenizer)` its features,
    batches and evaluation, fit, evaluate, save the model and write the record; under msrun only
    rank 0 evaluates, saves and records."""
    started = time.time()
    examples = load()
    backend.seed_everything(cfg.seed)
    model, tokenizer, source = build_model(cfg.model)
    job = prepare(examples, model, tokenizer)
    print(
        f"{job.about} model={source.kind}:{source.name} batch={cfg.trainer.batch_size} "
        f"steps/epoch={job.steps_per_epoch} epochs={cfg.trainer.epochs} lr={cfg.optim.lr}"
    )
    logger = RunLogger(cfg, run_dir)
    state = fit(model, job.batches_for, job.evaluate, cfg.optim, cfg.trainer, run_dir, logger.log)
    if not distributed.is_main():
        return {}
    final = final_metrics(state, job.evaluate)
    final_dir = save_finetuned(model, tokenizer, run_dir, job.task)
    scheduled = job.steps_per_epoch * cfg.trainer.epochs
    # A run cut by trainer.max_steps trained fewer epochs than its lr schedule spans: say how many.
    cut = (
        {"epochs_trained": round(state.step / job.steps_per_epoch, 2)}
        if state.step < scheduled
        else {}
    )
    return record_run(
        cfg,
        run_dir,
        logger,
        f"{job.outputs}model: {final_dir}",
        stage=stage,
        task=job.task,
        metrics=final,
        headline=job.headline,
        state=state,
        planned_steps=planned_steps(scheduled, cfg.trainer.max_steps),
        started=started,
        data=job.data,
        model=model_summary(model, cfg.model, source, final_dir),
        **cut,
        **job.record_fields(final),
    )


def record_run(
    cfg: DictConfig, run_dir: Path, logger: RunLogger, wrote: str, **fields: Any
) -> dict[str, Any]:
    """Write the record to the run dir and the results store, close the logger, and print the
    headline metric and where everything went (`wrote`)."""
    record = run_record(
        cfg, run_dir, device=backend.target(), ranks=distributed.world().size, **fields
    )
    target = store_record(record, run_dir, Path(cfg.paths.results))
    metrics = record["metrics"]
    logger.finish(metrics)
    headline = record["headline_metric"]
    scored_on = "held-out" if record["stage"] == "pretrain" else "dev"
    print(f"{scored_on} {headline} = {metrics[headline]:.2f}   all: {json.dumps(metrics)}")
    print(f"record: {target}   {wrote}")
    return record


def shuffled_batches(
    cfg: DictConfig, lengths: np.ndarray, make_batch: Callable[[np.ndarray], Batch]
) -> Callable[[int], list[Batch]]:
    """epoch -> its training batches: a seeded order per epoch (length-grouped when
    trainer.group_by_length), each batch built from the rows it selects."""

    def batches_for(epoch: int) -> list[Batch]:
        order = epoch_batches(
            lengths, cfg.trainer.batch_size, cfg.seed, epoch, cfg.trainer.group_by_length
        )
        return [make_batch(index) for index in order]

    return batches_for


def inference(
    model: Any, lengths: np.ndarray, batch_size: int, make_batch: Callable[[np.ndarray], Batch]
) -> Iterator[tuple[np.ndarray, Any]]:
    """The model's outputs batch by batch (eval mode, no gradients), with the rows of each."""
    model.eval()
    with backend.no_grad():
        for index in eval_batches(lengths, batch_size):
            batch = make_batch(index)
            yield index, model(**{k: backend.to_tensor(v) for k, v in batch.items()})

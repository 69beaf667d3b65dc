"""The training loop: AdamW, warmup + linear decay, clipping, per-epoch eval, exact resume.

Native MindSpore graph mode was measured no faster than mindnlp's PyNative model code at these
sizes (stack findings: 1237 vs 1257 ms/step for BERT-mini), so the loop drives mindnlp's models
directly and keeps the Hugging Face classes, `from_pretrained` and `save_pretrained` usable.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bert_repro import backend, cpu_backend
from bert_repro.errors import UserError
from bert_repro.training import distributed
from bert_repro.training.checkpoint import (
    checkpoint_root,
    drop_checkpoints_from,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from bert_repro.training.optim import (
    AdamWeightDecay,
    clip_scale,
    global_norm,
    linear_warmup_decay,
    warmup_steps_for,
)
from bert_repro.training.precision import MixedPrecision

Batch = dict[str, np.ndarray]
# Where in training an evaluation ran: the keys of a history entry that are not metrics.
POSITION_KEYS = ("epoch", "step", "tokens_seen")


@dataclass
class TrainState:
    """Where a run is; saved with every checkpoint so a relaunch continues from here."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens_seen: int = 0
    train_seconds: float = 0.0
    evals: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: str | None = None


@dataclass(frozen=True)
class Schedule:
    """Where one `fit` sits in a longer run (pre-training's phases): a single warmup and linear
    decay over `total_steps`, this fit's first step being the run's step `offset`."""

    offset: int
    total_steps: int
    warmup_steps: int

    def multiplier(self, step: int) -> float:
        return linear_warmup_decay(self.offset + step, self.total_steps, self.warmup_steps)


def model_weights(model: Any) -> dict[str, np.ndarray]:
    return {name: backend.to_numpy(p) for name, p in model.named_parameters()}


def load_model_weights(model: Any, weights: dict[str, np.ndarray]) -> None:
    for name, param in model.named_parameters():
        param.copy_(backend.to_tensor(weights[name]))


def _accumulated(
    grad_fn: Callable[..., Any], batch: Batch, keys: list[str], micro_batches: int
) -> tuple[Any, list[Any]]:
    """Loss and gradients of `batch`, computed `micro_batches` slices at a time to bound memory.

    Each slice's mean loss and gradients are weighted by its share of the rows and summed, so
    one optimizer step still sees the whole batch (gradient accumulation). Under data parallel
    each rank computes its share of every slice and the ranks' sums are added together.
    """
    ranks = distributed.world().size
    if micro_batches <= 1 and ranks == 1:
        return grad_fn(*[backend.to_tensor(batch[k]) for k in keys])
    import mindspore

    ops = mindspore.ops  # raw MindSpore ops, as in global_norm
    rows = len(batch[keys[0]])
    loss_sum, total = 0.0, None
    for index in np.array_split(np.arange(rows), min(micro_batches, rows)):
        mine = distributed.shard(len(index))
        held = mine.stop - mine.start
        if not held:  # fewer rows than ranks: run the last row at weight 0 to keep dropout in step
            mine = slice(len(index) - 1, len(index))
        with cpu_backend.dropout_rows(mine.start, mine.stop - mine.start, len(index)):
            loss, grads = grad_fn(*[backend.to_tensor(batch[k][index[mine]]) for k in keys])
        share = held / rows
        grads = [ops.mul(g, share) for g in grads]
        if total is not None:
            grads = [ops.add(a, b) for a, b in zip(total, grads, strict=True)]
        total = grads
        loss_sum += float(loss) * share
    if ranks > 1:
        total, loss_sum = distributed.all_reduce_sum(total, loss_sum)
    return loss_sum, total


def make_train_step(
    model: Any, optim_cfg: Any, keys: list[str], micro_batches: int = 1, precision: str = "fp32"
) -> tuple[AdamWeightDecay, Callable[[Batch, float], tuple[float, float]]]:
    """The optimizer and one training step `(batch, lr) -> (loss, grad norm)`: gradients (in
    `micro_batches` slices, the forward in `precision`), global-norm clipping, the AdamW update.
    An fp16 step whose gradients overflowed is skipped (grad norm inf). Shared with the
    benchmark, so what it times is what `fit` runs."""
    names_params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = AdamWeightDecay(
        names_params,
        optim_cfg.betas,
        optim_cfg.eps,
        optim_cfg.weight_decay,
        optim_cfg.no_decay,
        optim_cfg.bias_correction,
    )

    mixed = MixedPrecision(precision, backend.tensor_device())

    def loss_of(*tensors: Any) -> Any:
        with mixed.autocast():
            loss = model(**dict(zip(keys, tensors, strict=True))).loss
        return mixed.scale(loss)

    grad_fn = backend.value_and_grad(loss_of, optimizer.params)

    def step(batch: Batch, lr: float) -> tuple[float, float]:
        loss, grads, finite = mixed.unscale(*_accumulated(grad_fn, batch, keys, micro_batches))
        if not finite:
            return loss, float("inf")
        grad_norm = global_norm(grads)
        optimizer.step(grads, lr, clip_scale(grad_norm, optim_cfg.max_grad_norm))
        return loss, grad_norm

    return optimizer, step


def fit(
    model: Any,
    epoch_batches: Callable[[int], list[Batch]],
    evaluate: Callable[[], dict[str, float]],
    optim_cfg: Any,
    trainer_cfg: Any,
    run_dir: Path,
    log: Callable[[dict[str, Any]], None],
    schedule: Schedule | None = None,
    continue_from: Path | None = None,
) -> TrainState:
    """Train `model` on `epoch_batches(epoch)`; `model(**batch).loss` is the objective.

    Task-agnostic: a batch is a dict of arrays (classification labels, SQuAD start/end positions,
    pre-training masks...) that the model's forward takes as keyword arguments. The lr schedule
    spans this fit's steps unless `schedule` places it in a longer run; a fresh start takes the
    Adam moments and step count of the checkpoint `continue_from` (the paper's second phase
    continues the first's optimizer).
    """
    keys = sorted(epoch_batches(0)[0])  # every batch carries the same inputs
    optimizer, train_step = make_train_step(
        model, optim_cfg, keys, trainer_cfg.grad_accum_steps, trainer_cfg.precision
    )
    params = optimizer.params
    steps_per_epoch = len(epoch_batches(0))
    total_steps = steps_per_epoch * trainer_cfg.epochs
    if schedule is None:
        schedule = Schedule(0, total_steps, warmup_steps_for(total_steps, optim_cfg.warmup_ratio))
    stop_at = min(total_steps, trainer_cfg.max_steps or total_steps)

    state = TrainState()
    main = distributed.is_main()  # data parallel: rank 0 writes, every rank reads
    if not trainer_cfg.resume and main:  # a fresh start must never resume an older run's steps
        shutil.rmtree(checkpoint_root(run_dir), ignore_errors=True)
    distributed.barrier()
    last = latest_checkpoint(run_dir) if trainer_cfg.resume else None
    if last is not None:
        weights, moments, saved = load_checkpoint(last)
        load_model_weights(model, weights)
        optimizer.load_state_dict(moments)
        backend.set_rng_state(np.asarray(saved.pop("rng"), dtype=np.uint8))
        state = TrainState(**saved)
        state.resumed_from = str(last)
        print(f"resuming from {last} (step {state.step}/{stop_at})")
    elif continue_from is not None:
        optimizer.load_state_dict(load_checkpoint(continue_from)[1])
    distributed.check_same_weights(params)

    def checkpoint() -> None:
        if not main:
            return
        snapshot = {**asdict(state), "rng": backend.rng_state().tolist()}
        save_checkpoint(
            run_dir,
            state.step,
            model_weights(model),
            optimizer.state_dict(),
            snapshot,
            trainer_cfg.keep_checkpoints,
        )

    bar = tqdm(total=stop_at, initial=state.step, desc="train", unit="step", dynamic_ncols=True)
    model.train()
    while state.step < stop_at and state.epoch < trainer_cfg.epochs:
        batches = epoch_batches(state.epoch)
        for batch in batches[state.batch_in_epoch :]:
            started = time.perf_counter()
            lr = optim_cfg.lr * schedule.multiplier(state.step)
            loss, grad_norm = train_step(batch, lr)
            if not np.isfinite(loss):
                kept = drop_checkpoints_from(run_dir, state.step) if main else None
                raise diverged(loss, state.step, kept, optim_cfg.lr)
            state.step += 1
            state.batch_in_epoch += 1
            state.tokens_seen += int(batch["attention_mask"].sum())
            state.train_seconds += time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(epoch=state.epoch, loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            log(
                {
                    "step": state.step,
                    "epoch": state.epoch,
                    "loss": loss,
                    "lr": lr,
                    "grad_norm": grad_norm,
                }
            )
            due = state.step % trainer_cfg.checkpoint_every == 0 and state.step < stop_at
            if due and state.batch_in_epoch < len(batches):  # an epoch's end is saved below
                checkpoint()
            if state.step >= stop_at:
                break
        finished_epoch = state.batch_in_epoch >= len(batches)
        if finished_epoch:
            state.epoch += 1
            state.batch_in_epoch = 0
        if main and trainer_cfg.eval_every_epoch and (finished_epoch or state.step >= stop_at):
            metrics = evaluate()
            model.train()
            entry = {
                "epoch": state.epoch,
                "step": state.step,
                "tokens_seen": state.tokens_seen,  # learning curves' x axis
                **metrics,
            }
            state.evals.append(entry)
            log({"eval": entry})
            bar.write(f"eval after step {state.step}: {json.dumps(metrics)}")
        checkpoint()
    bar.close()
    distributed.check_same_weights(params)
    return state


def diverged(loss: float, step: int, kept: Path | None, lr: float) -> UserError:
    """The one-line stop for a non-finite loss. The weights after `step` updates gave it, so
    checkpoints from `step` on were dropped; `kept` is the last whose weights gave a finite loss.
    """
    where = f"kept {kept}, the last checkpoint with a finite loss" if kept else "no checkpoint kept"
    return UserError(
        f"loss became {loss} at step {step + 1} ({where}); lower optim.lr (now {lr:g}) "
        "or raise optim.warmup_ratio, then launch again"
    )


def final_metrics(state: TrainState, evaluate: Callable[[], dict[str, float]]) -> dict[str, float]:
    """The metrics at the last step: the last evaluation if it ran there, else a fresh one
    (appended to the history, so the record's history always ends at the final step)."""
    if not state.evals or state.evals[-1]["step"] != state.step:
        position = {"epoch": state.epoch, "step": state.step, "tokens_seen": state.tokens_seen}
        state.evals.append({**position, **evaluate()})
    return {k: v for k, v in state.evals[-1].items() if k not in POSITION_KEYS}

"""Stage `pretrain`: text to a pre-trained BERT in Hugging Face format (paper 3.1, appendix A.2).

    python run.py +experiment=pretrain_mini_mlm_nsp       # BERT-mini, 2 CPU cores, ~2 h
    python run.py +experiment=glue_mrpc model.pretrained=<run dir>/checkpoint   # fine-tune it

A run has one or two phases (paper: 90% of the steps at 128 tokens, then 10% at 512). Each phase
is one `fit` over a stream of shard batches, cut into chunks of `pretrain.eval_every` steps that
the loop sees as epochs: it evaluates the held-out documents and checkpoints after each, and its
position in the chunk is the data position a relaunched run resumes from. By default the phases
share one lr schedule (a single warmup and linear decay over `pretrain.steps`) and one optimizer:
phase 2 starts from phase 1's last checkpoint, Adam moments and step count included. With
`pretrain.phase2_lr` each phase has its own warmup and decay and phase 2 starts from phase 1's
weights only, as a second google-research/bert run from --init_checkpoint does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bert_repro import backend
from bert_repro.config import run_id
from bert_repro.data.io import share, write_json_atomic
from bert_repro.errors import UserError
from bert_repro.models.factory import PROVENANCE_FILE, build_pretraining_model, model_summary
from bert_repro.pretraining.objectives import (
    Objective,
    ShardStream,
    StreamBatches,
    context_free_accuracy,
    context_free_loss,
    data_config,
    evaluate,
    get_objective,
    heldout_batches,
    model_batch,
    prepare_shards,
)
from bert_repro.pretraining.shards import iter_shards, load_manifest
from bert_repro.stages.common import planned_steps, record_run
from bert_repro.training import distributed
from bert_repro.training.checkpoint import latest_checkpoint
from bert_repro.training.loop import POSITION_KEYS, Schedule, TrainState, final_metrics, fit
from bert_repro.training.optim import warmup_steps_for
from bert_repro.training.run_logger import RunLogger


@dataclass(frozen=True)
class Phase:
    """One sequence length of a run: its steps (a multiple of eval_every) and directory."""

    number: int
    max_seq_length: int
    batch_size: int
    lr: float
    steps: int
    stop_at: int  # trainer.max_steps cut (smoke tests), within this phase
    run_dir: Path


def plan_phases(cfg: DictConfig, run_dir: Path) -> list[Phase]:
    """Split `pretrain.steps` into the phases; a run cut by trainer.max_steps drops what is past."""
    settings = cfg.pretrain
    second = round(settings.steps * settings.phase2_fraction)
    first = settings.steps - second
    for steps in (first, second):
        if steps % settings.eval_every:
            raise UserError(
                f"pretrain.eval_every={settings.eval_every} must divide each phase's steps "
                f"({first} and {second} of pretrain.steps={settings.steps})"
            )
    if first <= 0:
        raise UserError("pretrain.phase2_fraction must leave steps for the first phase")
    for key in ("phase2_batch_size", "phase2_lr"):
        if not second and settings[key] is not None:
            raise UserError(f"pretrain.{key} needs a second phase: set pretrain.phase2_fraction")
    if settings.phase1_position_offsets and (
        not second or settings.phase2_max_seq_length <= cfg.task.max_seq_length
    ):
        raise UserError(
            "pretrain.phase1_position_offsets needs a longer second phase: set "
            "pretrain.phase2_fraction and a phase2_max_seq_length above task.max_seq_length"
        )
    budget = cfg.trainer.max_steps or settings.steps
    batch, lr = cfg.trainer.batch_size, cfg.optim.lr
    phases = [Phase(1, cfg.task.max_seq_length, batch, lr, first, min(first, budget), run_dir)]
    if second and budget > first:
        phases.append(
            Phase(
                2,
                settings.phase2_max_seq_length,
                settings.phase2_batch_size or batch,
                settings.phase2_lr or lr,
                second,
                min(second, budget - first),
                run_dir / "phase2",
            )
        )
    return phases


def copy_positions(encoder: Any, learned: int, length: int) -> None:
    """Position embeddings learned..length-1 take rows 0..learned-1 in turn (Longformer's copy
    init): a new position starts as the learned one it is congruent to."""
    weight = encoder.embeddings.position_embeddings.weight
    table = backend.to_numpy(weight)
    table[learned:length] = table[np.arange(learned, length) % learned]
    with backend.no_grad():
        weight.copy_(backend.to_tensor(table))


def phases_restart(cfg: DictConfig) -> bool:
    """Whether each phase is a run of its own (pretrain.phase2_lr set): its own warmup and decay,
    fresh Adam moments. Otherwise the phases share one schedule and one optimizer (the paper)."""
    return cfg.pretrain.phase2_lr is not None


def phase_schedule(cfg: DictConfig, phase: Phase, offset: int) -> Schedule:
    """The phase's place in the lr schedule: one warmup and decay over all steps (the paper's
    10k warmup, then decay over all 1M), or, when the phases restart, one per phase."""
    if phases_restart(cfg):
        return Schedule(0, phase.steps, warmup_steps_for(phase.steps, cfg.optim.warmup_ratio))
    total = cfg.pretrain.steps
    return Schedule(offset, total, warmup_steps_for(total, cfg.optim.warmup_ratio))


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Pre-train, evaluate on held-out documents, save the checkpoint, write the record."""
    started = time.time()
    objective = get_objective(cfg.objective.name)
    if cfg.data.source != "corpus":
        raise UserError("pre-training reads text: use data=corpus (see conf/data/corpus.yaml)")
    phases = plan_phases(cfg, run_dir)
    backend.seed_everything(cfg.seed)
    model, tokenizer, source = build_pretraining_model(cfg.model, objective)
    logger = RunLogger(cfg, run_dir)
    states: list[TrainState] = []
    data_info: dict[str, Any] = {}
    offset = 0
    previous: Path | None = None  # phase 1's last checkpoint: its Adam moments, unless restarted
    for phase in phases:
        if phase.number == 2 and cfg.pretrain.phase2_position_init == "copy":
            # a relaunched phase 2 then loads its own checkpoint over this
            copy_positions(model.bert, phases[0].max_seq_length, phase.max_seq_length)
        tokens_before = sum(s.tokens_seen for s in states)
        state, data_info[f"phase{phase.number}"] = _run_phase(
            cfg,
            phase,
            model,
            tokenizer,
            objective,
            _offset_log(logger.log, offset, phase),
            phase_schedule(cfg, phase, offset),
            previous,
        )
        if not phases_restart(cfg):
            previous = latest_checkpoint(phase.run_dir)
        for entry in state.evals:
            entry.update(
                step=entry["step"] + offset,
                tokens_seen=entry["tokens_seen"] + tokens_before,
                phase=phase.number,
            )
        states.append(state)
        offset += phase.steps
    if not distributed.is_main():  # data parallel: rank 0 evaluated, saves and records
        return {}
    total = _merge(states)
    final = {k: v for k, v in total.evals[-1].items() if k not in (*POSITION_KEYS, "phase")}

    final_dir = run_dir / "checkpoint"
    model.save_pretrained(final_dir)
    tokenizer.save_pretrained(final_dir)
    provenance = pretraining_provenance(cfg, objective, total, final)
    write_json_atomic(final_dir / PROVENANCE_FILE, provenance)
    share(final_dir)
    return record_run(
        cfg,
        run_dir,
        logger,
        f"checkpoint (model.pretrained=): {final_dir}",
        stage="pretrain",
        task="pretraining",
        metrics=final,
        headline="perplexity",
        state=total,
        planned_steps=planned_steps(cfg.pretrain.steps, cfg.trainer.max_steps),
        started=started,
        objective=objective.name,
        masking=provenance["masking"],
        data={
            "source": "corpus",
            "root": cfg.data.root,
            "corpus": list(cfg.data.corpus),
            "dupe_factor": cfg.data.dupe_factor,
            "heldout_every": cfg.data.heldout_every,
            **data_info,
        },
        model=model_summary(model, cfg.model, source, final_dir),
    )


def pretraining_provenance(
    cfg: DictConfig, objective: Objective, state: TrainState, heldout: dict[str, float]
) -> dict[str, Any]:
    """What a fine-tune of this checkpoint records about it (rows of Tables 5, 6 and 8)."""
    return {
        "run_id": run_id(cfg),
        "experiment": cfg.experiment,
        "objective": objective.name,
        "masking": {
            "mask": cfg.objective.mask_token,
            "random": cfg.objective.random_token,
            "keep": cfg.objective.keep_token,
            "whole_word": cfg.objective.whole_word_masking,
        },
        "steps": state.step,
        "tokens_seen": state.tokens_seen,
        "heldout": heldout,
    }


def _run_phase(
    cfg: DictConfig,
    phase: Phase,
    model: Any,
    tokenizer: Any,
    objective: Objective,
    log: Callable[[dict[str, Any]], None],
    schedule: Schedule,
    continue_from: Path | None,
) -> tuple[TrainState, dict[str, Any]]:
    """Build (or reuse) the phase's shards and train it at its place in the run's schedule,
    from the previous phase's last checkpoint (`continue_from`); returns its state and data
    summary."""
    settings = data_config(cfg.objective, phase.max_seq_length, cfg.data.dupe_factor)
    cache = Path(cfg.paths.runs) / "shards"  # shared by runs with the same data (a sweep)
    shards = _built_by_rank_0(
        lambda: prepare_shards(cfg.data, settings, tokenizer, cfg.seed, cache)
    )
    batch_size = phase.batch_size
    stream = ShardStream(shards["train"], batch_size, cfg.seed)
    heldout = heldout_batches(
        shards["heldout"], objective, cfg.speed.eval_batch_size, cfg.data.max_eval_examples
    )
    chunk = cfg.pretrain.eval_every
    instances = int(stream.counts.sum())
    micro = -(-batch_size // cfg.trainer.grad_accum_steps)
    context_free = context_free_accuracy(heldout, objective, tokenizer.mask_token_id)
    train_targets = (model_batch(rows, objective) for rows in iter_shards(shards["train"]))
    context_free_nats = context_free_loss(
        train_targets, heldout, objective, tokenizer.mask_token_id, model.config.vocab_size
    )
    print(
        f"phase {phase.number}: objective={objective.name} length={phase.max_seq_length} "
        f"steps={phase.steps} batch={batch_size} (micro-batch {micro}) "
        f"tokens/step<={batch_size * phase.max_seq_length} train instances={instances} "
        f"(passes over them: {phase.steps * batch_size / instances:.2f}) "
        f"held-out instances={sum(len(b['input_ids']) for b in heldout)} "
        f"(without context: accuracy {context_free:.2f}%, loss {context_free_nats:.3f})"
    )

    offsets = phase.number == 1 and cfg.pretrain.phase1_position_offsets
    span = cfg.pretrain.phase2_max_seq_length if offsets else None

    def batches_for(epoch: int) -> StreamBatches:
        return StreamBatches(stream, objective, epoch * chunk, (epoch + 1) * chunk, span)

    trainer = OmegaConf.merge(
        cfg.trainer, {"epochs": phase.steps // chunk, "max_steps": phase.stop_at}
    )
    state = fit(
        model,
        batches_for,
        lambda: evaluate(model, heldout, objective),
        OmegaConf.merge(cfg.optim, {"lr": phase.lr}),
        trainer,
        phase.run_dir,
        log,
        schedule,
        continue_from,
    )
    if distributed.is_main():  # the other ranks never evaluate
        final_metrics(state, lambda: evaluate(model, heldout, objective))
    summary = {
        "max_seq_length": phase.max_seq_length,
        "batch_size": batch_size,
        "peak_lr": phase.lr,
        "steps": phase.steps,
        "train_shards": str(shards["train"]),
        "train_instances": instances,
        "heldout_instances": load_manifest(shards["heldout"])["totals"]["instances"],
        "heldout_context_free_accuracy": context_free,
        "heldout_context_free_loss": context_free_nats,
        "position_span": span,  # positions 0..span-1 trained through random offsets
    }
    return state, summary


def _built_by_rank_0(prepare: Callable[[], dict[str, Path]]) -> dict[str, Path]:
    """Under msrun, rank 0 builds the (cached, deterministic) shards while the others wait,
    then they find them in the cache: one writer, and every rank reads the same batches."""
    if distributed.is_main():
        shards = prepare()
    distributed.barrier()
    return shards if distributed.is_main() else prepare()


def _offset_log(
    log: Callable[[dict[str, Any]], None], offset: int, phase: Phase
) -> Callable[[dict[str, Any]], None]:
    """Log phase-2 rows at run-wide step numbers (W&B needs steps that only grow)."""

    def shifted(entry: dict[str, Any]) -> None:
        row = entry.get("eval", entry)
        row = {**row, "step": row["step"] + offset, "phase": phase.number}
        log({"eval": row} if "eval" in entry else row)

    return shifted


def _merge(states: list[TrainState]) -> TrainState:
    """The run-wide state of all phases, for the record."""
    return TrainState(
        step=sum(s.step for s in states),
        epoch=states[-1].epoch,
        tokens_seen=sum(s.tokens_seen for s in states),
        train_seconds=sum(s.train_seconds for s in states),
        evals=[entry for s in states for entry in s.evals],
        resumed_from=next((s.resumed_from for s in states if s.resumed_from), None),
    )

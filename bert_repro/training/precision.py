"""Mixed precision (`trainer.precision`): fp32, the paper's, or bf16/fp16 on GPU and Ascend.

The forward pass runs under mindtorch's autocast, which pushes MindSpore's AMP strategy (its auto
lists: matrix products in half precision, softmax, norms and losses in fp32); the weights, their
gradients and the AdamW moments stay fp32. fp16 has bf16's precision but not its range, so fp16
scales the loss dynamically (`LossScale`, PyTorch GradScaler's rule and defaults): a step whose
gradients are not finite (MindSpore's `amp.all_finite`) is skipped and the scale halves; 2000
finite steps in a row double it. Precision can change results: a science setting (run id).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bert_repro.errors import UserError

PRECISIONS = ("fp32", "bf16", "fp16")


def check_choice(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(
            f"unknown trainer.precision '{precision}'; choose one of: {', '.join(PRECISIONS)}"
        )


def check_supported(precision: str, target: str) -> None:
    """Stop before any data is loaded when `precision` cannot run on `target`."""
    check_choice(precision)
    if precision != "fp32" and target == "CPU":
        raise UserError(
            f"trainer.precision={precision} is for GPU/Ascend (MindSpore's CPU kernels have no "
            "bf16 MatMul, and the CPU path computes in fp32): on CPU use trainer.precision=fp32"
        )


@dataclass
class LossScale:
    """The fp16 loss scale, kept on the host. MindSpore's `amp.DynamicLossScaler.adjust` fails
    under mindtorch, whose Tensor operators reject MindSpore's own deviceless tensors."""

    value: float = 2.0**16
    growth: float = 2.0
    window: int = 2000
    finite_steps: int = 0

    def update(self, finite: bool) -> None:
        if not finite:
            self.value, self.finite_steps = max(1.0, self.value / self.growth), 0
            return
        self.finite_steps += 1
        if self.finite_steps == self.window:
            self.value, self.finite_steps = self.value * self.growth, 0


class MixedPrecision:
    """The forward's autocast and, for fp16, the loss scaling around one training step."""

    def __init__(self, precision: str, device_type: str) -> None:
        self.precision = precision
        self.device_type = device_type  # mindtorch's: cpu | cuda | npu
        self.loss_scale = LossScale() if precision == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import mindtorch

        dtype = {"bf16": mindtorch.bfloat16, "fp16": mindtorch.float16}[self.precision]
        return mindtorch.amp.autocast(self.device_type, dtype=dtype)

    def scale(self, loss: Any) -> Any:
        """The loss to differentiate: as is, or in fp32 times the loss scale under fp16."""
        if self.loss_scale is None:
            return loss
        return loss.float() * self.loss_scale.value

    def unscale(self, loss: Any, grads: Sequence[Any]) -> tuple[float, list[Any], bool]:
        """The true loss and gradients of a step, and whether it may be applied (fp16: its
        gradients are finite); then sets the scale for the next step."""
        if self.loss_scale is None:
            return float(loss), list(grads), True
        import mindspore

        used = self.loss_scale.value
        finite = bool(mindspore.amp.all_finite(tuple(grads)))
        self.loss_scale.update(finite)
        grads = [mindspore.ops.mul(g, 1.0 / used) for g in grads]  # raw ops, as in clipping
        return float(loss) / used, grads, finite

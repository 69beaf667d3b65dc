"""The building blocks of a BERT pre-training step, written once against the torch API.

Both sides run this module: the project passes mindtorch (which mindnlp's BERT calls), the
reference interpreter passes real PyTorch. Timing each block forward + backward at the step's
shapes is the profile behind part (a)'s ratio: it shows which kernels make the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.flops import Shape

OpCase = tuple[list[Any], Callable[[], Any]]  # (tensors to differentiate, () -> scalar loss)
# How often each encoder layer calls a block; the others run once per step.
PER_LAYER = {
    "linear H->4H": 1,
    "linear 4H->H": 1,
    "linear H->H (q, k, v, out)": 4,
    "gelu (erf)": 1,
    "attention (sdpa)": 1,
    "dropout (attention probs)": 1,
    "layer_norm": 2,
}


def op_cases(
    torch: Any, shape: Shape, seed: int = 0, token_loss: Callable[[Any, Any], Any] | None = None
) -> dict[str, OpCase]:
    """Each block as (parameters, loss function) on fixed random inputs of the step's shapes.

    `token_loss(logits, targets)` is the side's unreduced cross-entropy (ours: the pre-training
    head's `backend.token_cross_entropy`); torch's own by default.
    """
    functional = torch.nn.functional
    if token_loss is None:

        def token_loss(logits: Any, targets: Any) -> Any:
            return functional.cross_entropy(logits, targets, reduction="none")

    rng = np.random.default_rng(seed)
    b, t, h, i, a = shape.batch, shape.seq_len, shape.hidden, shape.intermediate, shape.heads

    def param(*size: int) -> Any:
        values = (rng.standard_normal(size) * 0.5).astype(np.float32)
        return torch.nn.Parameter(torch.tensor(values))

    x_h, x_i = param(b, t, h), param(b, t, i)
    w_up, b_up, w_down, b_down = param(i, h), param(i), param(h, i), param(h)
    w_hh, b_hh = param(h, h), param(h)
    q, k, v = (param(b, a, t, h // a) for _ in range(3))
    mask = torch.tensor(np.zeros((b, 1, 1, t), np.float32))
    probs = param(b, a, t, t)
    gamma, beta = param(h), param(h)
    table = param(shape.vocab, h)
    ids = torch.tensor(rng.integers(0, shape.vocab, (b, t)))
    gathered = param(b * shape.predictions, h)
    logits = param(b * shape.predictions, shape.vocab)
    targets = torch.tensor(rng.integers(0, shape.vocab, b * shape.predictions))
    return {
        "linear H->4H": ([x_h, w_up, b_up], lambda: functional.linear(x_h, w_up, b_up).sum()),
        "linear 4H->H": (
            [x_i, w_down, b_down],
            lambda: functional.linear(x_i, w_down, b_down).sum(),
        ),
        "linear H->H (q, k, v, out)": (
            [x_h, w_hh, b_hh],
            lambda: functional.linear(x_h, w_hh, b_hh).sum(),
        ),
        "gelu (erf)": ([x_i], lambda: functional.gelu(x_i).sum()),
        "attention (sdpa)": (
            [q, k, v],
            lambda: functional.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum(),
        ),
        "dropout (attention probs)": (
            [probs],
            lambda: functional.dropout(probs, shape.dropout, training=True).sum(),
        ),
        "layer_norm": (
            [x_h, gamma, beta],
            lambda: (functional.layer_norm(x_h, (h,), gamma, beta) * x_h).sum(),
        ),
        "embedding lookup": ([table], lambda: functional.embedding(ids, table).sum()),
        "MLM decoder (masked only)": (
            [gathered, table],
            lambda: functional.linear(gathered, table).sum(),
        ),
        "MLM token loss (masked only)": ([logits], lambda: token_loss(logits, targets).sum()),
    }

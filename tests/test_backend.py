"""The CPU kernel replacements in bert_repro/backend.py compute what the originals do."""

import numpy as np
import pytest


@pytest.mark.parametrize("shape", [(3, 5, 8), (7, 8), (2, 3, 4, 8)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_as_matmul_gives_linears_values_and_gradients(framework, shape, with_bias):
    """Against numpy: y = x W^T + b, and for loss = sum(y * g): dx = g W, dW = g^T x, db = sum g."""
    from bert_repro import backend

    torch = framework
    rng = np.random.default_rng(0)
    x_np, w_np, b_np = (rng.standard_normal(s).astype(np.float32) for s in (shape, (6, 8), 6))
    g_np = rng.standard_normal((*shape[:-1], 6)).astype(np.float32)
    x, w, b = (torch.nn.Parameter(torch.tensor(v)) for v in (x_np, w_np, b_np))
    params = [x, w, b] if with_bias else [x, w]
    g = torch.tensor(g_np)

    def loss():
        return (torch.nn.functional.linear(x, w, b if with_bias else None) * g).sum()

    value, grads = backend.value_and_grad(loss, params)()
    y = x_np @ w_np.T + (b_np if with_bias else 0)
    rows, g_rows = x_np.reshape(-1, 8), g_np.reshape(-1, 6)
    expected = [g_np @ w_np, g_rows.T @ rows, g_rows.sum(0)][: len(params)]
    assert float(value) == pytest.approx(float((y * g_np).sum()), rel=1e-4, abs=1e-3)
    for mine, reference in zip(grads, expected, strict=True):
        np.testing.assert_allclose(mine.asnumpy(), reference, rtol=1e-4, atol=1e-4)

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


_STEPS = """
import sys
from omegaconf import OmegaConf
from bert_repro import backend, cpu_backend
from bert_repro.config import OptimConfig
from bert_repro.models.factory import build_pretraining_model
from bert_repro.pretraining.objectives import get_objective
from bert_repro.pretraining.synthetic import model_config, pretraining_batch
from bert_repro.training.loop import make_train_step

backend.configure_hub("https://huggingface.co", offline=True)
backend.load_framework("cpu")
print("blocking", cpu_backend.use_blocking_cpu_launch(sys.argv[1] == "1"))
cpu_backend.use_fused_cpu_kernels(True)
cfg = model_config("bert_tiny")
batch = pretraining_batch(4, 32, 5, cfg.vocab_size, 0)
backend.seed_everything(3)
model, _, _ = build_pretraining_model(cfg, get_objective("mlm_nsp"))
model.train()
_, step = make_train_step(model, OmegaConf.structured(OptimConfig), sorted(batch))
print("losses", [repr(float(step(batch, 1e-3)[0])) for _ in range(3)])
"""


def test_blocking_cpu_launch_changes_no_number():
    """speed.blocking_cpu_launch is a speed knob: the same pre-training steps (dropout on, fused
    kernels, AdamW) give bit-identical losses with MindSpore's async queue and without it."""
    import ast
    import subprocess
    import sys

    out = {}
    for flag in ("0", "1"):
        done = subprocess.run(
            [sys.executable, "-c", _STEPS, flag], capture_output=True, text=True, check=True
        )
        lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
        assert lines["blocking"] == ("True" if flag == "1" else "False")
        out[flag] = lines["losses"]
    assert out["0"] == out["1"]
    assert len(set(ast.literal_eval(out["1"]))) == 3  # the steps trained: three distinct losses


_THREADS = """
from bert_repro import backend, cpu_backend
from bert_repro.errors import UserError

backend.load_framework("cpu")
cpu_backend.set_cpu_threads(1)
cpu_backend.set_cpu_threads(1)  # a joblib worker's second sweep point: the same size again
try:
    cpu_backend.set_cpu_threads(2)
except UserError as err:
    print("refused:", err)
"""


def test_cpu_threads_set_again_in_one_process():
    """A joblib sweep runs several points in one worker process; MindSpore sizes its CPU thread
    pool once, so the same speed.cpu_threads again must pass and another size must say why."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _THREADS], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: speed.cpu_threads=2: this process already runs MindSpore with 1" in done.stdout

"""Mixed precision on CPU: the config path, the loss-scale rule and a loss-scaled training step.

The CPU build cannot train in bf16 (no bf16 MatMul) and the run refuses half precision on CPU,
so what runs here is the machinery: autocast reaching MindSpore's AMP, fp16 loss scaling with fp32
tensors, and the step that skips an overflow. Half-precision training itself needs GPU/Ascend.
"""

from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from bert_repro import backend
from bert_repro.config import OptimConfig, run_id
from bert_repro.errors import UserError
from bert_repro.training import precision
from bert_repro.training.loop import make_train_step
from bert_repro.training.precision import LossScale, MixedPrecision, check_supported
from tests.conftest import compose
from tests.test_device import assert_one_line_error, tmp_paths


def test_loss_scale_halves_on_overflow_and_doubles_after_a_window():
    scale = LossScale(value=8.0, window=3)
    scale.update(finite=False)
    assert scale.value == 4.0 and scale.finite_steps == 0
    for _ in range(2):
        scale.update(finite=True)
    assert scale.value == 4.0
    scale.update(finite=True)
    assert scale.value == 8.0 and scale.finite_steps == 0
    floor = LossScale(value=1.0)
    floor.update(finite=False)
    assert floor.value == 1.0  # never below 1


def test_defaults_are_pytorch_grad_scalers():
    assert (LossScale().value, LossScale().growth, LossScale().window) == (2.0**16, 2.0, 2000)


def test_half_precision_is_refused_on_cpu_and_accepted_on_accelerators():
    for half in ("bf16", "fp16"):
        with pytest.raises(UserError, match=r"on CPU use trainer\.precision=fp32"):
            check_supported(half, "CPU")
        check_supported(half, "GPU")
        check_supported(half, "Ascend")
    check_supported("fp32", "CPU")


def test_fp32_leaves_the_step_as_it_was(framework):
    mixed = MixedPrecision("fp32", "cpu")
    loss = framework.tensor(1.25)
    assert mixed.scale(loss) is loss
    assert mixed.unscale(loss, ["g"]) == (1.25, ["g"], True)


def test_fp16_scales_the_loss_and_unscales_the_gradients(framework):
    mixed = MixedPrecision("fp16", "cpu")
    assert float(mixed.scale(framework.tensor(1.5))) == 1.5 * 2**16
    loss, grads, finite = mixed.unscale(3.0 * 2**16, [framework.tensor([2.0**16, 2.0**17])])
    assert finite and loss == 3.0
    np.testing.assert_array_equal(grads[0].asnumpy(), [1.0, 2.0])
    _, _, finite = mixed.unscale(1.0, [framework.tensor([1.0, float("inf")])])
    assert not finite and mixed.loss_scale.value == 2.0**15


def test_autocast_reaches_mindspores_mixed_precision(framework):
    """A stock matrix product under fp16 autocast computes in fp16 (CPU has fp16 MatMul)."""
    a, b = framework.randn(2, 3), framework.randn(3, 2)
    with MixedPrecision("fp16", "cpu").autocast():
        assert framework.matmul(a, b).dtype == framework.float16
    assert framework.matmul(a, b).dtype == framework.float32


def _tiny_step(framework, precision_name):
    framework.manual_seed(0)

    class Tiny(framework.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = framework.nn.Linear(4, 1)

        def forward(self, x):
            return SimpleNamespace(loss=(self.linear(x) ** 2).mean())

    model = Tiny()
    optim = OmegaConf.structured(OptimConfig)
    _, step = make_train_step(model, optim, ["x"], precision=precision_name)
    return model, step


def test_fp16_step_skips_an_overflow_and_otherwise_matches_fp32(framework, monkeypatch):
    batch = {"x": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)}
    weights = lambda model: backend.to_numpy(model.linear.weight).copy()  # noqa: E731

    model, step = _tiny_step(framework, "fp32")
    before = weights(model)
    loss32, _ = step(batch, 1e-2)
    after32 = weights(model)

    model, step = _tiny_step(framework, "fp16")
    loss16, norm16 = step(batch, 1e-2)
    assert loss16 == pytest.approx(loss32, rel=1e-3) and np.isfinite(norm16)
    np.testing.assert_allclose(weights(model), after32, rtol=1e-3, atol=1e-5)

    monkeypatch.setattr(precision, "LossScale", lambda: LossScale(value=3e38))
    model, step = _tiny_step(framework, "fp16")
    loss, norm = step(batch, 1e-2)  # the scaled gradients overflow float32
    assert norm == float("inf") and loss == pytest.approx(loss32, rel=1e-3)
    np.testing.assert_array_equal(weights(model), before)  # skipped: no update


def test_precision_is_in_the_run_id_only_when_not_fp32(tmp_path):
    """Run ids from before the setting existed stay valid: fp32 is left out of the id."""
    from omegaconf import OmegaConf

    cfg = compose([], tmp_path)
    base = run_id(cfg)
    container = OmegaConf.to_container(cfg, resolve=True)
    del container["trainer"]["precision"]
    assert run_id(container) == base
    half = {run_id(compose([f"trainer.precision={p}"], tmp_path)) for p in ("bf16", "fp16")}
    assert len(half) == 2 and base not in half


def test_record_stores_device_and_precision(tmp_path):
    import time

    from bert_repro.stages.common import record_run
    from bert_repro.training.loop import TrainState
    from bert_repro.training.run_logger import RunLogger

    cfg = compose([], tmp_path)
    record = record_run(
        cfg,
        tmp_path,
        RunLogger(cfg, tmp_path),
        "nothing else",
        stage="finetune",
        task="sst2",
        metrics={"accuracy": 50.0},
        headline="accuracy",
        state=TrainState(),
        planned_steps=0,
        started=time.time(),
    )
    assert record["device"] == "CPU" and record["precision"] == "fp32"


@pytest.mark.parametrize(
    ("value", "message"),
    [("fp16", "trainer.precision=fp16 is for GPU/Ascend"), ("fp8", "unknown trainer.precision")],
)
def test_run_refuses_half_precision_on_cpu_before_loading_data(value, message, tmp_path):
    args = ["run.py", f"trainer.precision={value}", *tmp_paths(tmp_path)]
    assert_one_line_error(args, message, tmp_path)

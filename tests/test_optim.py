"""optim.bias_correction: off is Google's BERT Adam, on is PyTorch's AdamW, both against numpy."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from bert_repro.config import run_id
from bert_repro.training.optim import bias_correction
from tests.conftest import compose

BETAS, EPS, DECAY, LR = (0.9, 0.999), 1e-6, 0.01, 1e-3


def numpy_adam(param, grads, decay: float, corrected: bool) -> np.ndarray:
    """Reference: torch.optim.AdamW's update (corrected) or Google's AdamWeightDecayOptimizer's."""
    m, v = np.zeros_like(param), np.zeros_like(param)
    b1, b2 = BETAS
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if corrected:
            step = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + EPS)
        else:
            step = m / (np.sqrt(v) + EPS)
        param = param - LR * decay * param - LR * step
    return param


@pytest.fixture(params=[False, True], ids=["per-tensor", "fused"])
def fused_kernels(request, framework):
    """The optimizer both ways: MindSpore's kernel per tensor, and the one fused CPU launch."""
    from bert_repro import cpu_backend

    if cpu_backend.use_fused_cpu_kernels(request.param) is not request.param:
        pytest.skip("no C++ compiler here")
    yield request.param
    cpu_backend.use_fused_cpu_kernels(False)


@pytest.mark.parametrize("corrected", [False, True])
def test_update_matches_numpy_reference(fused_kernels, corrected):
    """Three steps on a decayed weight and an undecayed bias, gradients of changing size; the
    last one clipped (scaled by 0.5), as the training step passes it."""
    import mindspore

    from bert_repro.training.optim import AdamWeightDecay

    rng = np.random.default_rng(0)
    start = {"dense.weight": rng.standard_normal((4, 3)), "dense.bias": rng.standard_normal(3)}
    start = {k: v.astype(np.float32) for k, v in start.items()}
    grads = {
        k: [rng.standard_normal(v.shape).astype(np.float32) * s for s in (1.0, 0.1, 3.0)]
        for k, v in start.items()
    }
    params = [
        (k, mindspore.Parameter(mindspore.Tensor(v.copy()), name=k)) for k, v in start.items()
    ]
    optimizer = AdamWeightDecay(params, BETAS, EPS, DECAY, ["bias"], bias_correction=corrected)
    scales = (1.0, 1.0, 0.5)
    for i, scale in enumerate(scales):
        optimizer.step([mindspore.Tensor(grads[k][i]) for k in start], LR, scale)
    for name, param in params:
        decay = 0.0 if name.endswith("bias") else DECAY
        seen = [g * scale for g, scale in zip(grads[name], scales, strict=True)]
        expected = numpy_adam(start[name].astype(np.float64), seen, decay, corrected)
        np.testing.assert_allclose(param.asnumpy(), expected, rtol=1e-5, atol=1e-6)


def test_global_norm_and_clip_scale(fused_kernels):
    import mindspore

    from bert_repro.training.optim import clip_scale, global_norm

    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(np.float32) for s in ((70000,), (3, 5), (1,))]
    norm = global_norm([mindspore.Tensor(g) for g in grads])
    expected = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    assert norm == pytest.approx(expected, rel=1e-6)
    assert clip_scale(norm, 0.0) == 1.0 and clip_scale(norm, 2 * norm) == 1.0
    assert clip_scale(norm, 1.0) == pytest.approx(1.0 / norm)


def test_step_count_survives_a_checkpoint(framework):
    """A resumed run continues the correction from its step, not from t=1."""
    import mindspore

    from bert_repro.training.optim import AdamWeightDecay

    def fresh() -> AdamWeightDecay:
        param = mindspore.Parameter(mindspore.Tensor(np.ones(2, np.float32)), name="w")
        return AdamWeightDecay([("w", param)], BETAS, EPS, 0.0, [], bias_correction=True)

    trained = fresh()
    for _ in range(5):
        trained.step([mindspore.Tensor(np.ones(2, np.float32))], LR)
    resumed = fresh()
    resumed.load_state_dict(trained.state_dict())
    assert resumed.kernel_arguments(LR) == trained.kernel_arguments(LR)
    assert resumed.steps_taken == 5


def test_uncorrected_first_updates_are_several_times_larger():
    """Why the knob matters early: Google's form steps 1/c times further (c = 0.32 at t=1)."""
    assert 1 / bias_correction(1, *BETAS) == pytest.approx(3.16, abs=0.01)
    assert 1 / bias_correction(10, *BETAS) == pytest.approx(6.53, abs=0.01)
    assert bias_correction(100_000, *BETAS) == pytest.approx(1.0)


def test_default_keeps_run_ids_and_true_changes_them(tmp_path):
    """Google's form is the default and leaves ids as they were before the key existed."""
    base = compose(["+experiment=pretrain_bert_base"], tmp_path)
    assert base.optim.bias_correction is False
    corrected = compose(["+experiment=pretrain_bert_base", "optim.bias_correction=true"], tmp_path)
    assert run_id(corrected) != run_id(base)
    before = OmegaConf.to_container(base, resolve=False)
    before.pop("hydra", None)
    before["optim"].pop("bias_correction")
    assert run_id(OmegaConf.create(before)) == run_id(base)

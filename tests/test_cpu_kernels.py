"""The fused CPU kernels (bert_repro/cpu_kernels.cc) give the stock ops' values and gradients."""

import contextlib

import numpy as np
import pytest

from bert_repro import backend, cpu_backend, cpu_kernels


@pytest.fixture
def fused(framework):
    if not cpu_backend.use_fused_cpu_kernels(True):
        pytest.skip("no C++ compiler here")
    yield framework
    cpu_backend.use_fused_cpu_kernels(False)


def both(torch, loss, params):
    """(value, grads) with the stock ops, then with the fused kernels."""
    results = []
    for enabled in (False, True):
        assert cpu_backend.use_fused_cpu_kernels(enabled) is enabled
        value, grads = backend.value_and_grad(loss, params)()
        results.append((float(value), [g.asnumpy() for g in grads]))
    return results


def assert_same(results, rtol=1e-5):
    (stock_value, stock_grads), (fused_value, fused_grads) = results
    assert fused_value == pytest.approx(stock_value, rel=rtol)
    for stock, mine in zip(stock_grads, fused_grads, strict=True):
        scale = np.abs(stock).max()
        assert scale > 0  # the check would pass vacuously on zero gradients
        np.testing.assert_allclose(mine, stock, rtol=0, atol=rtol * scale * 10)


def tensors(torch, *shapes, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [torch.tensor((scale * rng.standard_normal(s)).astype(np.float32)) for s in shapes]


def test_gelu_matches_stock_erf_gelu(fused):
    torch = fused
    x, weights = tensors(torch, (4, 6, 64), (4, 6, 64), scale=3.0)
    x.requires_grad_(True)
    assert_same(both(torch, lambda: (torch.nn.functional.gelu(x) * weights).sum(), [x]))


def test_layer_norm_matches_stock_values_and_all_three_gradients(fused):
    torch = fused
    x, gamma, beta, weights = tensors(torch, (3, 5, 32), (32,), (32,), (3, 5, 32))
    x = x * 4 + 2  # rows with a mean and a spread far from (0, 1)
    params = [torch.nn.Parameter(t) for t in (x, gamma, beta)]

    def loss():
        out = torch.nn.functional.layer_norm(params[0], (32,), params[1], params[2], 1e-12)
        return (out * weights).sum()

    assert_same(both(torch, loss, params))


def test_token_cross_entropy_matches_torch(fused):
    torch = fused
    (logits,) = tensors(torch, (6, 50), scale=4.0)
    logits = torch.nn.Parameter(logits)
    targets = torch.tensor(np.array([3, 0, 49, 1, 7, 7], dtype=np.int64))
    weights = torch.tensor(np.arange(1, 7, dtype=np.float32))
    loss = lambda: (backend.token_cross_entropy(logits, targets) * weights).sum()  # noqa: E731
    assert_same(both(torch, loss, [logits]))


def test_token_cross_entropy_ignores_negative_targets_like_torch(fused):
    """Against numpy, not mindtorch: its op varied with a -100 target (183.75, 183.96 for 183.83).
    loss = logsumexp - target logit, gradient = (softmax - onehot) * weight, zero when ignored."""
    torch = fused
    rng = np.random.default_rng(1)
    logits_np = (4 * rng.standard_normal((5, 40))).astype(np.float32)
    targets_np, weights_np = np.array([3, -100, 39, 0, 3]), np.arange(1, 6, dtype=np.float32)
    logits = torch.nn.Parameter(torch.tensor(logits_np))
    targets, weights = torch.tensor(targets_np), torch.tensor(weights_np)
    value, (grad,) = backend.value_and_grad(
        lambda: (backend.token_cross_entropy(logits, targets) * weights).sum(), [logits]
    )()
    shifted = logits_np - logits_np.max(1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    kept = targets_np >= 0
    rows, picked = np.arange(5)[kept], targets_np[kept]
    losses = -np.log(softmax[rows, picked])
    expected = softmax * (weights_np * kept)[:, None]
    expected[rows, picked] -= weights_np[kept]
    assert float(value) == pytest.approx(float((losses * weights_np[kept]).sum()), rel=1e-5)
    np.testing.assert_allclose(grad.asnumpy(), expected, atol=1e-5)
    assert np.all(grad.asnumpy()[1] == 0)


def test_softmax_matches_stock_values_and_gradient(fused):
    torch = fused
    x, weights = tensors(torch, (2, 3, 5, 33), (2, 3, 5, 33), scale=3.0)
    x, weights = torch.nn.Parameter(x), weights.abs()  # no cancellation in the summed loss
    loss = lambda: (torch.nn.functional.softmax(x, dim=-1) * weights).sum()  # noqa: E731
    assert_same(both(torch, loss, [x]))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_stock_values_and_gradients(fused, bias):
    """With the library linked against numpy's OpenBLAS, the matmuls are its sgemm (forward, and
    both gradients, any leading dims); the bias is the fused kernel's."""
    torch = fused
    x, w, b, weights = tensors(torch, (3, 4, 16), (40, 16), (40,), (3, 4, 40))
    params = [torch.nn.Parameter(t) for t in ((x, w, b) if bias else (x, w))]
    loss = lambda: (torch.nn.functional.linear(*params) * weights).sum()  # noqa: E731
    assert_same(both(torch, loss, params))


@pytest.mark.parametrize(
    ("attention", "causal", "padded", "training"),
    [
        ("eager", False, True, True),  # BertModel's (batch, 1, 1, length) padding mask
        ("eager", True, True, True),  # (batch, 1, length, length): causal and padded
        ("sdpa", False, False, True),  # no mask at all
        ("sdpa", True, False, True),  # none, and the layer is causal
        ("sdpa", False, True, False),  # (batch, 1, length, length) expanded; no dropout
    ],
)
def test_encoder_layer_matches_the_stock_layer(fused, attention, causal, padded, training):
    """BERT's encoder layer as one fused launch each way gives transformers' BertLayer's output
    and the gradients of the input and all 16 weights, under each mask BertModel passes, with
    dropout on (the same Philox masks, the same stream calls) and off."""
    torch = fused
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    if cpu_backend.fused_ops().bert_layer is None:
        pytest.skip("the fused kernels are not linked against OpenBLAS here")
    config = BertConfig(
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=96,
        is_decoder=causal,
        hidden_dropout_prob=0.2,
        attention_probs_dropout_prob=0.3,
        attn_implementation=attention,
    )
    backend.seed_everything(0)
    layer = BertLayer(config).train(training)
    x, weights = tensors(torch, (3, 12, 64), (3, 12, 64))
    x = torch.nn.Parameter(x)
    keep = np.ones((3, 12), np.float32)
    keep[1, 9:] = 0 if padded else 1
    rows = np.tril(np.ones((12, 12), np.float32)) if causal else np.ones((1, 12), np.float32)
    if attention == "sdpa":
        rows = np.ones((12, 12), np.float32) * rows  # transformers expands the mask for sdpa
    additive = (1 - keep[:, None, None, :] * rows) * np.finfo(np.float32).min
    mask = torch.tensor(additive) if padded else None
    params = [x, *layer.parameters()]
    assert len(params) == 17
    results = []
    for forward in (cpu_backend._Fused.stock["bert_layer"], cpu_backend._fused_bert_layer):
        BertLayer.forward = forward
        cpu_backend.DropoutStream.seed, cpu_backend.DropoutStream.calls = 7, 0
        cpu_kernels.LAUNCHES = []
        try:
            value, grads = backend.value_and_grad(
                lambda: (layer(x, mask)[0] * weights).sum(), params
            )()
            launches = cpu_kernels.LAUNCHES
        finally:
            cpu_kernels.LAUNCHES = None
            BertLayer.forward = cpu_backend._fused_bert_layer
        results.append((float(value), [g.asnumpy() for g in grads]))
        calls = cpu_backend.DropoutStream.calls
    assert calls == (3 if training else 0)  # the fused layer advanced the stream as the stock one
    assert launches.count("BertLayerForward") == launches.count("BertLayerBackward") == 1
    assert "DropoutForward" not in launches
    # The key bias adds the same score to every key of a query row, which softmax ignores: its
    # gradient is zero up to rounding on both paths, so it is checked against the query bias's.
    for _, grads in results:
        key_bias = grads.pop(4)
        assert np.abs(key_bias).max() < 1e-5 * np.abs(grads[2]).max()
    assert_same(results, rtol=1e-4)  # the loss sums signed terms: cancellation


def test_fused_encoder_layer_off_runs_the_stock_layer(fused):
    """speed.fused_encoder_layer=false: the same layer runs op by op (no fused layer launch)."""
    torch = fused
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    config = BertConfig(
        hidden_size=32, num_attention_heads=2, intermediate_size=48, attn_implementation="sdpa"
    )
    layer = BertLayer(config)
    (x,) = tensors(torch, (2, 5, 32))
    launches = {}
    for enabled in (True, False):
        on = cpu_backend.use_fused_encoder_layer(enabled)
        cpu_kernels.LAUNCHES = []
        try:
            layer(x, None)
            launches[enabled] = cpu_kernels.LAUNCHES
        finally:
            cpu_kernels.LAUNCHES = None
            cpu_backend.use_fused_encoder_layer(True)
        assert on == (enabled and cpu_backend.fused_ops().bert_layer is not None)
    assert ("BertLayerForward" in launches[True]) == (
        cpu_backend.fused_ops().bert_layer is not None
    )
    assert "BertLayerForward" not in launches[False] and "SoftmaxForward" in launches[False]


def test_embedding_matches_stock_gather_and_its_gradient(fused):
    """Repeated ids sum into their row; rows no id names get a zero gradient."""
    torch = fused
    table, weights = tensors(torch, (50, 16), (3, 7, 16))
    table = torch.nn.Parameter(table)
    ids = torch.tensor(np.random.default_rng(4).integers(0, 20, (3, 7)))
    loss = lambda: (torch.nn.functional.embedding(ids, table) * weights).sum()  # noqa: E731
    results = both(torch, loss, [table])
    assert_same(results)
    assert np.all(results[1][1][0][20:] == 0)


@pytest.mark.parametrize(
    ("shape", "rows"), [((3, 2, 7, 5), None), ((4, 33), None), ((2, 3, 5), (1, 2, 6))]
)
def test_dropout_masks_are_numpy_philox_bit_for_bit(fused, shape, rows):
    """The kernel draws numpy's Philox stream (host path, kernels off) exactly, also for sizes that
    end mid-block and for a data-parallel rank's rows of a larger batch; gradient = dy * mask."""
    torch = fused
    x, dy = tensors(torch, shape, shape, seed=2)
    x = torch.nn.Parameter(x)
    results = []
    for enabled in (False, True):
        cpu_backend.use_fused_cpu_kernels(enabled)
        cpu_backend.DropoutStream.seed, cpu_backend.DropoutStream.calls = 11, 5
        with cpu_backend.dropout_rows(*rows) if rows else contextlib.nullcontext():
            _, (grad,) = backend.value_and_grad(
                lambda: (torch.nn.functional.dropout(x, 0.1, training=True) * dy).sum(), [x]
            )()
            out = torch.nn.functional.dropout(x, 0.1, training=True).asnumpy()
        assert cpu_backend.DropoutStream.calls == 7
        results.append((out, grad.asnumpy()))
    (stock_out, stock_grad), (fused_out, fused_grad) = results
    assert np.array_equal(fused_out, stock_out) and 0 < (fused_out == 0).mean() < 0.3
    assert np.array_equal(fused_grad, stock_grad)


def test_build_is_cached_and_reports_a_missing_compiler(tmp_path, monkeypatch, capsys):
    library = cpu_kernels.build(tmp_path)
    if library is None:
        pytest.skip("no C++ compiler here")
    assert library.parent == tmp_path and library.stat().st_size > 0
    assert cpu_kernels.build(tmp_path) == library  # cached: no second compile
    assert [p.name for p in tmp_path.iterdir()] == [library.name]  # no scratch left behind
    monkeypatch.setenv("CXX", "no-such-compiler")
    assert cpu_kernels.build(tmp_path / "elsewhere") is None
    assert "no C++ compiler" in capsys.readouterr().out


def test_training_losses_match_the_stock_path(fused):
    """Pre-training steps of BERT-tiny (dropout on, clipping engaged) from the same weights and
    batches: every fused kernel and the fused optimizer on, then mindtorch's stock ops and
    MindSpore's per-tensor Adam: the same losses to float tolerance."""
    from omegaconf import OmegaConf

    from bert_repro.config import OptimConfig
    from bert_repro.models.factory import build_pretraining_model
    from bert_repro.pretraining.objectives import get_objective
    from bert_repro.pretraining.synthetic import model_config, pretraining_batch
    from bert_repro.training.loop import load_model_weights, make_train_step, model_weights

    cfg = model_config("bert_tiny")
    batches = [pretraining_batch(4, 32, 5, cfg.vocab_size, seed) for seed in range(4)]
    backend.seed_everything(0)
    model, _, _ = build_pretraining_model(cfg, get_objective("mlm_nsp"))
    model.train()
    start = model_weights(model)
    optim = OmegaConf.merge(OmegaConf.structured(OptimConfig), {"max_grad_norm": 0.5})
    runs = []
    for enabled in (True, False):
        assert cpu_backend.use_fused_cpu_kernels(enabled) is enabled
        load_model_weights(model, start)
        cpu_backend.DropoutStream.seed, cpu_backend.DropoutStream.calls = 1, 0
        _, step = make_train_step(model, optim, sorted(batches[0]))
        runs.append([step(batch, 1e-3) for batch in batches])
    (fused_steps, stock_steps) = runs
    assert all(norm > 0.5 for _, norm in stock_steps)  # every step clipped
    for (loss, norm), (stock_loss, stock_norm) in zip(fused_steps, stock_steps, strict=True):
        assert loss == pytest.approx(stock_loss, rel=1e-5)
        assert norm == pytest.approx(stock_norm, rel=1e-4)


def test_launch_log_names_forward_and_backward_kernels_in_launch_order(fused):
    torch = fused
    (x,) = tensors(torch, (4, 8))
    x.requires_grad_(True)
    cpu_kernels.LAUNCHES = []
    try:
        backend.value_and_grad(lambda: torch.nn.functional.gelu(x).sum(), [x])()
        launches = cpu_kernels.LAUNCHES
    finally:
        cpu_kernels.LAUNCHES = None
    assert launches.index("GeluForward") < launches.index("GeluBackward")

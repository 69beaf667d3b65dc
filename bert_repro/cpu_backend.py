"""Everything the backend does only when it runs on the CPU: MindSpore's CPU path needed fixes and
tuning that GPU and Ascend, whose kernels and launch queue differ, must not get.

- OpenMP waits passively (`OWN_ENV`), set before MindSpore loads libgomp;
- dropout draws its masks from a host-side stream: the CPU kernel ignores the generator's seed;
- `nn.Linear` runs as a 2-D MatMul: the CPU Dense kernel was 5x slower on BERT's 3-D inputs;
- `a - b` keeps its gradient: mindtorch copies CPU operands through numpy, cutting the graph;
- speed settings (`tune`): thread count, fused C++ kernels (`cpu_kernels`), blocking launch.
`backend.load_framework` applies the first four only when the target is CPU, and `tune` does
nothing elsewhere, so on GPU/Ascend the stock ops run and nothing is compiled.
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from bert_repro import cpu_kernels
from bert_repro.errors import UserError

# Set for this process only, before MindSpore loads libgomp (see set_process_env).
OWN_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
_USER_SET = frozenset(key for key in OWN_ENV if key in os.environ)


def set_process_env() -> None:
    """OpenMP threads of the fused kernels sleep between ops instead of spinning: on 2 cores a
    spinning thread takes a core from MindSpore's kernels (BERT-mini step 1.62 -> 1.38 s).
    libgomp reads it once, when first loaded (by `import mindspore`), so it is set before."""
    for key, value in OWN_ENV.items():
        os.environ.setdefault(key, value)


def without_own_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process of another stack (the benchmark's PyTorch reference): our tuning
    variables removed, unless the user had set them for both."""
    return {k: v for k, v in env.items() if k not in OWN_ENV or k in _USER_SET}


def patch_mindtorch(mindtorch: ModuleType) -> None:
    """Install the CPU fixes into mindtorch's CPU op table (once, at framework load)."""
    mindtorch._apis.cpu.dropout = _seeded_cpu_dropout
    mindtorch._apis.cpu.dense = _dense_as_matmul
    mindtorch.ops.sub = _sub_keeping_gradients(mindtorch.ops.sub)


class DropoutStream:
    """Host-side (seed, call counter) for dropout masks, saved with the framework's RNG state.

    mindtorch's CPU dropout kernel ignores the generator's (seed, offset), so the same seed gave
    different masks and a resumed run drifted. Reading that (seed, offset) back to the host costs
    a device sync per dropout call (measured: 2.86 -> 4.5 s per MiniLM step), so the stream is
    kept here instead. Philox is counter-based: key (seed, call) fixes each mask. Seeded and
    checkpointed on every device (one checkpoint format); only the CPU dropout reads it.
    """

    seed = 0
    calls = 0
    rows: tuple[int, int, int] | None = None  # data parallel: (first, count, total) batch rows


@contextmanager
def dropout_rows(first: int, count: int, total: int) -> Iterator[None]:
    """Inside, a forward pass over rows [first, first + count) of a `total`-row batch draws the
    whole batch's dropout masks and keeps its rows: a data-parallel rank then drops exactly
    what one process holding the whole batch would. Every dropout input leads with the batch
    (or batch x choices) dimension."""
    DropoutStream.rows = (first, count, total)
    try:
        yield
    finally:
        DropoutStream.rows = None


def _seeded_cpu_dropout(input, p: float, seed, offset):
    import mindtorch

    call = DropoutStream.calls
    DropoutStream.calls += 1
    shape, first = tuple(input.shape), 0
    if DropoutStream.rows is not None:
        start, count, total = DropoutStream.rows
        per_row = shape[0] // count
        first = start * per_row * (input.numel() // shape[0])  # this rank's place in the draw
        shape = (total * per_row, *shape[1:])
    if _Fused.ops is not None and input.dtype == mindtorch.float32:
        key = np.array([DropoutStream.seed, call, first], dtype=np.int64)
        # numpy's float32 rounding of the threshold and of 1 / (1 - p), as in the host path
        rate = np.array([p, np.float32(1.0) / np.float32(1.0 - p)], dtype=np.float32)
        return _Fused.ops.dropout(input, mindtorch.tensor(key), mindtorch.tensor(rate))
    rng = np.random.Generator(np.random.Philox(key=np.array([DropoutStream.seed, call], np.uint64)))
    keep = rng.random(shape, dtype=np.float32).reshape(-1)[first : first + input.numel()] >= p
    mask = mindtorch.tensor(
        keep.reshape(input.shape).astype(np.float32) / (1.0 - p), dtype=input.dtype
    )
    return input * mask, mask


def _dense_as_matmul(input, weight, bias=None):
    """`nn.Linear` on CPU as one 2-D MatMul (weight transposed in the kernel) plus BiasAdd.

    mindtorch sends Linear to MindSpore's Dense kernel, which on CPU took 5x longer on the
    (batch, length, hidden) inputs of BERT than a MatMul of the flattened rows (bench part e:
    186 vs 37 ms forward, BERT-mini's H->4H). Same values; gradients by MindSpore's autodiff.
    With the fused kernels the bias is theirs: BiasAdd and BiasAddGrad took ~130 ms per step on
    the MLM decoder's logits alone.
    """
    import mindspore
    from mindtorch._apis import cpu
    from mindtorch._op_prim.cpu import legacy

    fused = _Fused.ops
    blas = fused is not None and _Fused.openblas_matmul and fused.matmul_nt is not None
    if blas and input.dtype == mindspore.float32:
        out = fused.matmul_nt(input, weight)  # any leading dims: no reshapes
        return out if bias is None else fused.bias_add(out, bias)
    shape = input.shape
    rows = cpu.reshape(input, (-1, shape[-1])) if len(shape) != 2 else input
    out = legacy.mat_mul(rows, weight, False, True)
    if bias is not None and fused is not None and out.dtype == bias.dtype == mindspore.float32:
        out = fused.bias_add(out, bias)
    elif bias is not None:
        out = legacy.bias_add(out, bias, "NCHW")
    return cpu.reshape(out, (*shape[:-1], out.shape[-1])) if len(shape) != 2 else out


def _sub_keeping_gradients(original: Callable[..., Any]) -> Callable[..., Any]:
    """mindtorch's `a - b` moves both operands with `.to(device)` even when they already share
    a device, and on CPU that is a copy through numpy that cuts the gradient: every loss with a
    tensor subtraction (MSE for STS-B) trained with all-zero gradients. (Other devices return
    the tensor itself.) Subtract directly when the devices agree."""
    from mindtorch.executor import execute

    def sub(input, other, *, alpha=1, out=None):
        same_device = (
            isinstance(input, numbers.Number)
            or isinstance(other, numbers.Number)
            or input.device == other.device
        )
        if out is not None or not same_device:
            return original(input, other, alpha=alpha, out=out)
        return execute("sub", input, other, alpha)

    return sub


def on_cpu() -> bool:
    from bert_repro import backend  # the device is fixed there, before this module acts

    return backend.target() == "CPU"


def tune(speed: Any) -> dict[str, bool]:
    """Apply the CPU speed settings (`speed` config); on another target none applies (and the
    fused kernels are not compiled). Returns what is on."""
    if not on_cpu():
        return dict.fromkeys(
            ("fused_cpu_kernels", "openblas_matmul", "fused_encoder_layer", "blocking_cpu_launch"),
            False,
        )
    if speed.cpu_threads:
        set_cpu_threads(speed.cpu_threads)
    return {
        "fused_cpu_kernels": use_fused_cpu_kernels(speed.fused_cpu_kernels),
        "openblas_matmul": use_openblas_matmul(speed.openblas_matmul),
        "fused_encoder_layer": use_fused_encoder_layer(speed.fused_encoder_layer),
        "blocking_cpu_launch": use_blocking_cpu_launch(speed.blocking_cpu_launch),
    }


_threads: int | None = None  # the pool size set in this process (MindSpore takes it once)


def set_cpu_threads(count: int) -> None:
    """Size MindSpore's CPU kernel thread pool (its default, 25, oversubscribes small machines).

    MindSpore refuses a second call in one process, and a joblib sweep runs several points in one
    worker process: the same size again is a no-op, another size is an error that says so.
    """
    global _threads
    if _threads == count:
        return
    if _threads is not None:
        raise UserError(
            f"speed.cpu_threads={count}: this process already runs MindSpore with {_threads} CPU "
            "threads, and MindSpore sizes its pool once; give every point of a sweep the same "
            "speed.cpu_threads"
        )
    import mindspore

    mindspore.device_context.cpu.op_tuning.threads_num(count)
    cpu_kernels.set_blas_threads(count)  # the linear layers' matmuls, when OpenBLAS runs them
    _threads = count


def use_blocking_cpu_launch(enabled: bool) -> bool:
    """On CPU, run each op when it is called instead of queueing it to MindSpore's async
    pipeline, whose worker threads spin while they wait and so take cores from the kernels
    (a 2-core machine has none to spare): a BERT-mini pre-training step went from 2.4 s to
    1.4-1.7 s, same losses (bench: `--async-launch` is the before). GPU and Ascend keep the async
    queue, where it overlaps host and device. Once on it stays on for the process (MindSpore
    has no switch back). Returns whether it is on."""
    import mindspore

    if not enabled or not on_cpu():
        return False
    mindspore.runtime.launch_blocking()
    return True


class _Fused:
    """The fused CPU ops in use (None: mindtorch's stock ops) and the stock ops they replace."""

    ops: cpu_kernels.FusedOps | None = None
    openblas_matmul: bool = True  # Linear's matmuls by the library's OpenBLAS kernels, if linked
    encoder_layer: bool = True  # BertLayer as the library's fused layer kernels, if linked
    stock: ClassVar[dict[str, Callable[..., Any]]] = {}


def use_fused_cpu_kernels(enabled: bool) -> bool:
    """Run exact GELU, LayerNorm, softmax, the embedding lookup, dropout, linear biases, the
    pre-training token loss, the optimizer step and (linked against OpenBLAS) each whole encoder
    layer on CPU through the fused kernels of `cpu_kernels` (same math, fewer passes over memory,
    fewer launches); returns whether they are on. Off, off the CPU, or when the kernels cannot be
    built here, mindtorch's stock ops and MindSpore's optimizer kernel run."""
    from bert_repro import backend

    backend.load_framework()  # mindnlp first: transformers must find mindtorch as `torch`
    from mindtorch._apis import cpu
    from transformers.models.bert.modeling_bert import BertLayer

    if not _Fused.stock:
        _Fused.stock.update(
            gelu=cpu.gelu,
            layer_norm=cpu.layer_norm,
            embedding=cpu.embedding,
            softmax=cpu.softmax,
            bert_layer=BertLayer.forward,
        )
    cpu.gelu, cpu.layer_norm = _Fused.stock["gelu"], _Fused.stock["layer_norm"]
    cpu.embedding, cpu.softmax = _Fused.stock["embedding"], _Fused.stock["softmax"]
    BertLayer.forward = _Fused.stock["bert_layer"]
    _Fused.ops = None
    library = cpu_kernels.build() if enabled and on_cpu() else None
    if library is None:
        return False
    _Fused.ops = cpu_kernels.fused_ops(library)
    cpu.gelu, cpu.layer_norm, cpu.embedding = _fused_gelu, _fused_layer_norm, _fused_embedding
    cpu.softmax = _fused_softmax
    cpu.fused_cross_entropy = _Fused.ops.cross_entropy
    if _Fused.ops.bert_layer is not None:
        cpu.fused_bert_layer = _Fused.ops.bert_layer
        BertLayer.forward = _fused_bert_layer
    return True


def use_openblas_matmul(enabled: bool) -> bool:
    """Run `nn.Linear`'s matrix products (forward and both gradients) by the sgemm of numpy's
    OpenBLAS, linked into the fused kernels' library (BERT-mini's step 17% shorter than with
    MindSpore 2.7's CPU MatMul, bench part a). Applies while the fused kernels are on; returns
    whether it does (the library was built against OpenBLAS)."""
    _Fused.openblas_matmul = enabled
    return enabled and _Fused.ops is not None and _Fused.ops.matmul_nt is not None


def use_fused_encoder_layer(enabled: bool) -> bool:
    """Run each BERT encoder layer (transformers' BertLayer: attention, feed-forward, their
    dropouts, residuals and LayerNorms) as one fused launch forward and one backward, instead of
    ~60 ops each way, whose per-op framework cost exceeded their arithmetic at BERT-tiny/mini
    sizes. Applies while the fused kernels are on and linked against OpenBLAS; returns whether
    it does. Layers it does not cover (relative positions, cross-attention, head masks, a kept
    attention map) run the stock forward."""
    _Fused.encoder_layer = enabled
    return enabled and _Fused.ops is not None and _Fused.ops.bert_layer is not None


def fused_ops() -> cpu_kernels.FusedOps | None:
    """The fused kernels when they are on (CPU, built), else None: the optimizer asks."""
    return _Fused.ops


def _fused_gelu(input, approximate):
    import mindtorch

    if approximate == "none" and input.dtype == mindtorch.float32:
        return _Fused.ops.gelu(input)
    return _Fused.stock["gelu"](input, approximate)


def _fused_softmax(input, axis):
    import mindtorch

    if axis in (None, -1, input.ndim - 1) and input.dtype == mindtorch.float32:
        return _Fused.ops.softmax(input)
    return _Fused.stock["softmax"](input, axis)


def _fused_embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq):
    """A row gather whose gradient touches only the rows the ids name. Like the stock op
    (mindtorch's Gather), it ignores padding_idx: that row's gradient is kept."""
    import mindtorch

    if max_norm is None and weight.dtype == mindtorch.float32 and weight.ndim == 2:
        return _Fused.ops.embedding(weight, input)
    return _Fused.stock["embedding"](
        input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq
    )


def _fused_layer_norm(input, normalized_shape, weight, bias, eps=1e-5):
    """Returns a 1-tuple: mindtorch's caller takes [0] of the stock op's (y, mean, rstd)."""
    import mindtorch

    if (
        weight is not None
        and bias is not None
        and weight.ndim == 1
        and input.dtype == mindtorch.float32
    ):
        return (_Fused.ops.layer_norm(input, weight, bias, eps),)
    return _Fused.stock["layer_norm"](input, normalized_shape, weight, bias, eps)


def _fused_bert_layer(
    layer,
    hidden_states,
    attention_mask=None,
    head_mask=None,
    encoder_hidden_states=None,
    *args,
    **kwargs,
):
    """transformers' BertLayer.forward as two launches (forward, backward) of the fused layer
    kernel when the layer is BERT's plain encoder layer; anything else runs the stock forward."""
    import mindtorch

    stock = _Fused.stock["bert_layer"]
    if not _fusable(layer, hidden_states, attention_mask, head_mask, encoder_hidden_states, kwargs):
        return stock(
            layer, hidden_states, attention_mask, head_mask, encoder_hidden_states, *args, **kwargs
        )
    attention, ffn_out = layer.attention, layer.output
    heads = attention.self.num_attention_heads
    weights = [
        *(
            p
            for linear in (attention.self.query, attention.self.key, attention.self.value)
            for p in (linear.weight, linear.bias)
        ),
        attention.output.dense.weight,
        attention.output.dense.bias,
        attention.output.LayerNorm.weight,
        attention.output.LayerNorm.bias,
        layer.intermediate.dense.weight,
        layer.intermediate.dense.bias,
        ffn_out.dense.weight,
        ffn_out.dense.bias,
        ffn_out.LayerNorm.weight,
        ffn_out.LayerNorm.bias,
    ]
    p_attn = attention.self.dropout.p if layer.training else 0.0
    p_hidden = ffn_out.dropout.p if layer.training else 0.0
    calls = [-1, -1, -1]  # the stock layer's dropout calls, in its order, each one stream step
    for slot, p in enumerate((p_attn, p_hidden, p_hidden)):
        if p > 0:
            calls[slot] = DropoutStream.calls
            DropoutStream.calls += 1
            _step_framework_generator()

    def rate(p: float) -> list[float]:  # numpy's float32 rounding, as the dropout kernel's
        return [p, float(np.float32(1.0) / np.float32(1.0 - p))]

    if attention_mask is None:  # sdpa attention: no padding anywhere, causal or not
        attention_mask = _unmasked(hidden_states.shape[1], layer.is_decoder)
    meta = [
        heads,
        attention.output.LayerNorm.eps,
        ffn_out.LayerNorm.eps,
        *rate(p_attn),
        *rate(p_hidden),
    ]
    from mindtorch.executor import execute

    y, _ = execute(
        "fused_bert_layer",
        heads,
        hidden_states,
        attention_mask,
        *weights,
        mindtorch.tensor(np.array(meta, dtype=np.float32)),
        mindtorch.tensor(np.array([DropoutStream.seed, *calls], dtype=np.int64)),
    )
    return (y,)


@functools.lru_cache(maxsize=8)
def _unmasked(length: int, causal: bool) -> Any:
    """The additive mask sdpa attention applies when BertModel passes none: nothing masked, or
    (causal, as mindtorch's scaled_dot_product_attention builds it) the keys after the query.
    Built once per shape: every layer of every step asks for it (the kernel only reads it)."""
    import mindtorch

    if not causal:
        return mindtorch.tensor(np.zeros((1, 1, 1, length), np.float32))
    upper = np.triu(np.ones((length, length), bool), k=1)
    return mindtorch.tensor(
        np.where(upper, np.finfo(np.float32).min, 0).astype(np.float32)[None, None]
    )


def _fusable(layer, hidden_states, mask, head_mask, encoder_hidden_states, kwargs) -> bool:
    """BERT's encoder layer as the fused kernel computes it: self-attention only (eager or
    mindtorch's sdpa, the same math), absolute positions, exact GELU, all heads, float32 on the
    CPU, a broadcastable additive mask or none, and no data-parallel row split of the dropout
    draws."""
    import mindtorch

    attention = layer.attention.self
    act = layer.intermediate.intermediate_act_fn
    return (
        _Fused.encoder_layer
        and head_mask is None
        and encoder_hidden_states is None
        and kwargs.get("past_key_values") is None
        and not kwargs.get("output_attentions")
        and DropoutStream.rows is None
        and layer.chunk_size_feed_forward == 0
        and attention.position_embedding_type == "absolute"
        and attention.all_head_size == hidden_states.shape[-1]
        and type(attention).__name__ in ("BertSelfAttention", "BertSdpaSelfAttention")
        and getattr(act, "act", None) is mindtorch.nn.functional.gelu
        and hidden_states.ndim == 3
        and hidden_states.dtype == mindtorch.float32
        and hidden_states.device.type == "cpu"
        and (mask is None or _broadcastable(mask, hidden_states))
    )


def _broadcastable(mask, hidden_states) -> bool:
    import mindtorch

    return (
        mask.ndim == 4
        and mask.dtype == mindtorch.float32
        and mask.shape[1] == 1
        and mask.shape[0] in (1, hidden_states.shape[0])
        and mask.shape[2] in (1, hidden_states.shape[1])
        and mask.shape[3] == hidden_states.shape[1]
    )


def _step_framework_generator() -> None:
    """Advance mindtorch's default generator as its dropout does, so that its state after a fused
    layer is the stock layer's (it is saved with checkpoints)."""
    from mindtorch import default_generator
    from mindtorch.nn import functional

    default_generator._step(functional.generator_step_)


def fused_token_cross_entropy(logits: Any, targets: Any) -> Any | None:
    """The fused kernel's per-row cross-entropy when it applies (on, CPU float32 logits; one
    pass over the logits each way), else None for the caller's stock loss."""
    import mindtorch

    if _Fused.ops is None or logits.device.type != "cpu" or logits.dtype != mindtorch.float32:
        return None
    from mindtorch.executor import execute

    return execute("fused_cross_entropy", logits, targets)

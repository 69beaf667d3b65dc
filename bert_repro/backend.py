"""The one module that touches the MindSpore / mindtorch runtime (its API is still moving).

Everything model-side runs through mindnlp 0.5, which serves Hugging Face's model code on MindSpore
via `mindtorch` (a torch-compatible layer). Three things about that stack on CPU shape this file:
- the hub endpoint must be set before `import mindnlp` (which otherwise picks a mirror itself);
- `Tensor.backward()` is a no-op in mindtorch: gradients come from `value_and_grad`;
- the CPU dropout kernel ignores the generator's (seed, offset), so runs were not repeatable and
  could not resume exactly; `_seeded_cpu_dropout` restores torch's semantics;
- `datasets` takes mindtorch for torch and calls `Tensor.share_memory_`, which it lacks;
- tensor subtraction cut the gradient (regression losses did not train): `_sub_keeping_gradients`.
"""

from __future__ import annotations

import logging
import numbers
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import urlparse

import numpy as np

from bert_repro import cpu_kernels

_FRAMEWORK: ModuleType | None = None
# Set by load_framework for this process only (see there).
OWN_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
_USER_SET = frozenset(key for key in OWN_ENV if key in os.environ)


def without_own_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process of another stack (the benchmark's PyTorch reference): our tuning
    variables removed, unless the user had set them for both."""
    return {k: v for k, v in env.items() if k not in OWN_ENV or k in _USER_SET}


def configure_hub(endpoint: str, offline: bool = False, timeout_s: int = 10) -> None:
    """Point every hub download at `endpoint`; must run before mindnlp/datasets are imported.

    An unreachable endpoint switches to cache-only mode at once, so an offline run with the data
    cached still works and one without fails in seconds instead of waiting out retries.
    """
    os.environ["HF_ENDPOINT"] = endpoint.rstrip("/")
    os.environ["HF_HUB_ETAG_TIMEOUT"] = str(timeout_s)
    os.environ["HF_HUB_DOWNLOAD_TIMEOUT"] = str(timeout_s)
    if not offline and not hub_reachable(endpoint, timeout=min(timeout_s, 3)):
        print(f"hub {endpoint} unreachable: using local files and the hub cache only")
        offline = True
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only


def hub_reachable(endpoint: str, timeout: float) -> bool:
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def load_framework() -> ModuleType:
    """Import mindnlp (which installs mindtorch as `torch`) once, and return that `torch`."""
    global _FRAMEWORK
    if _FRAMEWORK is not None:
        return _FRAMEWORK
    if "HF_ENDPOINT" not in os.environ:
        raise RuntimeError("configure_hub() must run before the framework is loaded")
    import warnings

    # OpenMP threads of the fused kernels sleep between ops instead of spinning: on 2 cores a
    # spinning thread takes a core from MindSpore's kernels (BERT-mini step 1.62 -> 1.38 s).
    # libgomp reads it once, when first loaded, so it is set before anything can load it.
    for key, value in OWN_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore")
    _quiet_unused_libraries()
    import mindnlp  # noqa: F401  (side effect: registers mindtorch as `torch`)
    import mindtorch

    mindtorch._apis.cpu.dropout = _seeded_cpu_dropout
    mindtorch._apis.cpu.dense = _dense_as_matmul
    mindtorch.ops.sub = _sub_keeping_gradients(mindtorch.ops.sub)
    if not hasattr(mindtorch.Tensor, "share_memory_"):
        # `datasets` sees mindtorch as torch and shares streaming-dataset state with it; there
        # are no worker processes to share with here, so in place is enough.
        mindtorch.Tensor.share_memory_ = lambda self: self
    _FRAMEWORK = mindtorch
    return mindtorch


def _quiet_unused_libraries() -> None:
    """Silence what importing mindnlp makes other libraries announce, at the source.

    `datasets` logs "PyTorch version 2.7.1+dev available" (mindtorch posing as torch) through a
    logger it has not configured yet, so under Hydra's INFO root it reaches the console; mindnlp
    imports diffusers, whose modular pipelines warn that they are experimental. We use neither
    claim: datasets keeps its warnings, diffusers (never used) only its errors.
    """
    logging.getLogger("datasets").setLevel(logging.WARNING)
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


class _DropoutStream:
    """Host-side (seed, call counter) for dropout masks, saved with the framework's RNG state.

    mindtorch's CPU dropout kernel ignores the generator's (seed, offset), so the same seed gave
    different masks and a resumed run drifted. Reading that (seed, offset) back to the host costs
    a device sync per dropout call (measured: 2.86 -> 4.5 s per MiniLM step), so the stream is
    kept here instead. Philox is counter-based: key (seed, call) fixes each mask.
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
    _DropoutStream.rows = (first, count, total)
    try:
        yield
    finally:
        _DropoutStream.rows = None


def _seeded_cpu_dropout(input, p: float, seed, offset):
    import mindtorch

    key = np.array([_DropoutStream.seed, _DropoutStream.calls], dtype=np.uint64)
    _DropoutStream.calls += 1
    rng = np.random.Generator(np.random.Philox(key=key))
    shape, part = tuple(input.shape), slice(None)
    if _DropoutStream.rows is not None:
        first, count, total = _DropoutStream.rows
        per_row = shape[0] // count
        part = slice(first * per_row, (first + count) * per_row)
        shape = (total * per_row, *shape[1:])
    keep = rng.random(shape, dtype=np.float32)[part] >= p
    mask = mindtorch.tensor(keep.astype(np.float32) / (1.0 - p), dtype=input.dtype)
    return input * mask, mask


def _dense_as_matmul(input, weight, bias=None):
    """`nn.Linear` on CPU as one 2-D MatMul (weight transposed in the kernel) plus BiasAdd.

    mindtorch sends Linear to MindSpore's Dense kernel, which on CPU took 5x longer on the
    (batch, length, hidden) inputs of BERT than a MatMul of the flattened rows (bench part e:
    186 vs 37 ms forward, BERT-mini's H->4H). Same values; gradients by MindSpore's autodiff.
    """
    from mindtorch._apis import cpu
    from mindtorch._op_prim.cpu import legacy

    shape = input.shape
    rows = cpu.reshape(input, (-1, shape[-1])) if len(shape) != 2 else input
    out = legacy.mat_mul(rows, weight, False, True)
    if bias is not None:
        out = legacy.bias_add(out, bias, "NCHW")
    return cpu.reshape(out, (*shape[:-1], out.shape[-1])) if len(shape) != 2 else out


def _sub_keeping_gradients(original: Callable[..., Any]) -> Callable[..., Any]:
    """mindtorch's `a - b` moves both operands with `.to(device)` even when they already share
    a device, and that copy cuts the gradient: every loss with a tensor subtraction (MSE for
    STS-B) trained with all-zero gradients. Subtract directly when the devices agree."""
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


def seed_everything(seed: int) -> None:
    """Seed every generator a run draws from (init, dropout, data order)."""
    import mindspore

    torch = load_framework()
    torch.manual_seed(seed)
    mindspore.set_seed(seed)
    _DropoutStream.seed, _DropoutStream.calls = seed % 2**63, 0
    np.random.seed(seed % 2**32)


def rng_state() -> np.ndarray:
    """The framework generator's state and the dropout stream, to store with a checkpoint."""
    import mindspore

    framework = mindspore.Tensor.asnumpy(load_framework().get_rng_state())
    stream = np.array([_DropoutStream.seed, _DropoutStream.calls], dtype=np.int64).view(np.uint8)
    return np.concatenate([framework, stream])


def set_rng_state(state: np.ndarray) -> None:
    import mindspore

    state = np.asarray(state, dtype=np.uint8)
    load_framework().set_rng_state(mindspore.Tensor(state[:-16]))
    _DropoutStream.seed, _DropoutStream.calls = (int(v) for v in state[-16:].view(np.int64))


def to_tensor(array: np.ndarray) -> Any:
    return load_framework().tensor(array)


def to_numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().numpy()


def set_cpu_threads(count: int) -> None:
    """Size MindSpore's CPU kernel thread pool (its default, 25, oversubscribes small machines)."""
    load_framework()
    import mindspore

    mindspore.device_context.cpu.op_tuning.threads_num(count)


def use_blocking_cpu_launch(enabled: bool) -> bool:
    """On CPU, run each op when it is called instead of queueing it to MindSpore's async
    pipeline, whose worker threads spin while they wait and so take cores from the kernels
    (a 2-core machine has none to spare): a BERT-mini pre-training step went from 2.4 s to
    1.4-1.7 s, same losses (bench: `--async-launch` is the before). GPU and Ascend keep the async
    queue, where it overlaps host and device. Once on it stays on for the process (MindSpore
    has no switch back). Returns whether it is on."""
    import mindspore

    load_framework()
    if not enabled or mindspore.get_context("device_target") != "CPU":
        return False
    mindspore.runtime.launch_blocking()
    return True


class _Fused:
    """The fused CPU ops in use (None: mindtorch's stock ops) and the stock ops they replace."""

    ops: cpu_kernels.FusedOps | None = None
    stock: ClassVar[dict[str, Callable[..., Any]]] = {}


def use_fused_cpu_kernels(enabled: bool) -> bool:
    """Run exact GELU, LayerNorm and the pre-training token loss on CPU through the fused kernels
    of `cpu_kernels` (same math, fewer passes over memory); returns whether they are on. Off, or
    when the kernels cannot be built here, mindtorch's stock ops run."""
    load_framework()
    from mindtorch._apis import cpu

    if not _Fused.stock:
        _Fused.stock.update(gelu=cpu.gelu, layer_norm=cpu.layer_norm)
    cpu.gelu, cpu.layer_norm = _Fused.stock["gelu"], _Fused.stock["layer_norm"]
    _Fused.ops = None
    library = cpu_kernels.build() if enabled else None
    if library is None:
        return False
    _Fused.ops = cpu_kernels.fused_ops(library)
    cpu.gelu, cpu.layer_norm = _fused_gelu, _fused_layer_norm
    cpu.fused_cross_entropy = _Fused.ops.cross_entropy
    return True


def _fused_gelu(input, approximate):
    if approximate == "none" and input.dtype == load_framework().float32:
        return _Fused.ops.gelu(input)
    return _Fused.stock["gelu"](input, approximate)


def _fused_layer_norm(input, normalized_shape, weight, bias, eps=1e-5):
    """Returns a 1-tuple: mindtorch's caller takes [0] of the stock op's (y, mean, rstd)."""
    if (
        weight is not None
        and bias is not None
        and weight.ndim == 1
        and input.dtype == load_framework().float32
    ):
        return (_Fused.ops.layer_norm(input, weight, bias, eps),)
    return _Fused.stock["layer_norm"](input, normalized_shape, weight, bias, eps)


def token_cross_entropy(logits: Any, targets: Any) -> Any:
    """Cross-entropy of each row of (rows, vocab) logits, unreduced: the fused kernel when on
    (one pass over the logits each way, not log-softmax then gather), else torch's."""
    torch = load_framework()
    if _Fused.ops is not None and logits.device.type == "cpu" and logits.dtype == torch.float32:
        from mindtorch.executor import execute

        return execute("fused_cross_entropy", logits, targets)
    return torch.nn.functional.cross_entropy(logits, targets, reduction="none")


def value_and_grad(loss_fn: Callable[..., Any], params: Sequence[Any]) -> Callable[..., Any]:
    """`loss_fn(*args) -> loss` becomes `f(*args) -> (loss, grads)`, grads aligned with params."""
    from mindtorch import autograd

    return autograd.value_and_grad(loss_fn, list(params), attach_grads=False)


def no_grad() -> Any:
    return load_framework().no_grad()

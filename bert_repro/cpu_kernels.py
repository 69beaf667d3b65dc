"""Fused C++ kernels for the CPU ops MindSpore runs slowest (GELU, LayerNorm, softmax, biases,
embedding, dropout, cross-entropy), a two-launch optimizer step, the linear layers' matmuls
through the OpenBLAS numpy ships (faster than MindSpore's CPU MatMul: bench part a), and with
them a whole BERT encoder layer in one launch each way (at BERT-tiny/mini sizes the ~60 ops a
layer took more framework time than arithmetic).

Why our own kernels: MindSpore 2.7 on CPU runs GELU as five elementwise kernels and LayerNorm and
the softmax cross-entropy as several more, each reading and writing the whole tensor. Bench part
(e) measured GELU 23x and LayerNorm 18x slower than PyTorch at BERT-mini shapes (forward +
backward). `cpu_kernels.cc` does each op in one pass; MindSpore runs it as a Custom "aot" op, and
its gradient is a second Custom op wired in through `bprop`. Same math (erf GELU, float32), so
results match the stock ops to float rounding (tests/test_cpu_kernels.py).

The library is compiled once per machine with the system C++ compiler (`$CXX`, else g++) into
`$BERT_REPRO_CACHE/kernels` (default ~/.cache/bert_repro). Without a compiler the stock ops run;
without numpy's OpenBLAS, MindSpore's MatMul does.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
_COMMON = ("-O3", "-fopenmp", "-shared", "-fPIC", "-Wl,-z,defs")
# First choice: this CPU's vector units, with glibc's vector expf/erff (libmvec). Its header
# declares them only under __FAST_MATH__; defining the macro enables the declarations alone, not
# -ffast-math's reordering. Scalar expf made the cross-entropy slower than MindSpore's own.
# Fallback (older glibc, other compilers): the same code, scalar.
VECTOR_FLAGS = (*_COMMON, "-march=native", "-fno-math-errno", "-D__FAST_MATH__", "-lmvec")


def openblas() -> Path | None:
    """The OpenBLAS numpy's wheel ships (64-bit integer interface, `cblas_sgemm64_`), or None
    (numpy built against another BLAS): the linear layers' matmuls link against it."""
    import numpy

    found = sorted((Path(numpy.__file__).parent.parent / "numpy.libs").glob("libopenblas64_*.so"))
    return found[0] if found else None


def flag_sets() -> list[tuple[str, ...]]:
    """Compiler flags to try in order: with OpenBLAS's matmuls when numpy ships it, then without
    (MindSpore's MatMul runs); each with this CPU's vector units first, then plain."""
    sets = [VECTOR_FLAGS, _COMMON]
    blas = openblas()
    if blas is None:
        return sets
    linked = ("-DBERT_REPRO_OPENBLAS", str(blas), f"-Wl,-rpath,{blas.parent}")
    return [(*flags, *linked) for flags in sets] + sets


def cache_dir() -> Path:
    root = os.environ.get("BERT_REPRO_CACHE") or Path.home() / ".cache" / "bert_repro"
    return Path(root) / "kernels"


def _machine() -> bytes:
    """What -march=native compiled for: a cache shared across machines must not mix them."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return f"{platform.machine()} {platform.processor()} {flags}".encode()


def build(directory: Path | None = None) -> Path | None:
    """The compiled library (built on first use, keyed by source, flags and CPU), or None with the
    reason printed when this machine cannot build it."""
    directory = directory or cache_dir()
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    sets = flag_sets()
    digest = hashlib.sha256(SOURCE.read_bytes() + repr(sets).encode() + _machine())
    library = directory / f"cpu_kernels-{digest.hexdigest()[:12]}.so"
    if library.exists():
        return library
    if compiler is None:
        print("fused CPU kernels off: no C++ compiler (set CXX or install g++); stock ops run")
        return None
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        built = Path(scratch) / library.name
        for flags in sets:
            command = [compiler, "-o", str(built), str(SOURCE), *flags]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode == 0:
                os.replace(built, library)  # atomic: others see no library or a whole one
                return library
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"fused CPU kernels off: {compiler} failed ({reason}); stock ops run")
    return None


@dataclass(frozen=True)
class FusedOps:
    """MindSpore Custom primitives over the library; each takes and returns framework tensors."""

    library: Path
    gelu: Any
    layer_norm: Any
    cross_entropy: Any
    dropout: Any
    embedding: Any  # (table, ids) -> rows
    bias_add: Any  # (x (rows, d), b (d)) -> x + b
    softmax: Any  # over the last axis
    sum_of_squares: Any  # (*tensors) -> float32 (1,)
    adam: Any  # (*params, *m, *v, *grads, hyper, decay) -> (1,); the first three in place
    matmul_nt: Any | None  # (x (..., k), w (n, k)) -> x @ w^T by OpenBLAS; None: not linked
    # (heads, x, mask, 16 weights, meta, key) -> (y, saved): one encoder layer; None: not linked
    bert_layer: Callable[..., Any] | None


# While a list, every launch of a fused kernel appends the kernel's name. MindSpore's profiler
# calls each of them `Custom-opN` and lists launches in order, so this order is what names its
# rows (benchmarks.profile_step).
LAUNCHES: list[str] | None = None


def _logged(name: str, primitive: Any) -> Callable[..., Any]:
    def launch(*args: Any) -> Any:
        if LAUNCHES is not None:
            LAUNCHES.append(name)
        return primitive(*args)

    return launch


def fused_ops(library: Path) -> FusedOps:
    from mindspore import Tensor, float32, ops

    def custom(name: str, shape: Any, dtype: Any, bprop: Any = None) -> Callable[..., Any]:
        """The library's kernel `name`; `shape` and `dtype` map the inputs' to the outputs'."""
        primitive = ops.Custom(
            f"{library}:{name}", out_shape=shape, out_dtype=dtype, func_type="aot", bprop=bprop
        )
        return _logged(name, primitive)

    def op(name: str, like: Any, bprop: Any = None) -> Callable[..., Any]:
        """`like` maps the inputs to the outputs they mirror (shape and dtype alike)."""
        return custom(name, like, like, bprop)

    gelu_backward = op("GeluBackward", lambda x, dy: x)
    gelu = op("GeluForward", lambda x: x, lambda x, out, dout: (gelu_backward(x, dout),))

    norm_backward = op("LayerNormBackward", lambda x, gamma, dy, eps: (x, gamma, gamma))

    def norm_bprop(x: Any, gamma: Any, beta: Any, eps: Any, out: Any, dout: Any) -> tuple:
        return (*norm_backward(x, gamma, dout, eps), ops.zeros_like(eps))

    norm = op("LayerNormForward", lambda x, gamma, beta, eps: x, norm_bprop)

    def layer_norm(x: Any, gamma: Any, beta: Any, eps: float) -> Any:
        return norm(x, gamma, beta, Tensor(eps, float32))

    ce_backward = op("CrossEntropyBackward", lambda logits, targets, dloss: logits)

    def ce_bprop(logits: Any, targets: Any, out: Any, dout: Any) -> tuple:
        return ce_backward(logits, targets, dout), ops.zeros_like(targets)

    # out_dtype follows the logits (float32), not the integer targets
    cross_entropy = custom(
        "CrossEntropyForward",
        lambda logits, targets: targets,
        lambda logits, targets: logits,
        ce_bprop,
    )

    def dropout_bprop(x: Any, key: Any, rate: Any, out: Any, dout: Any) -> tuple:
        return ops.mul(dout[0], out[1]), ops.zeros_like(key), ops.zeros_like(rate)

    dropout = op("DropoutForward", lambda x, key, rate: (x, x), dropout_bprop)

    embedding_backward = op("EmbeddingBackward", lambda ids, dout, table: table)

    def embedding_bprop(table: Any, ids: Any, out: Any, dout: Any) -> tuple:
        return embedding_backward(ids, dout, table), ops.zeros_like(ids)

    embedding = custom(
        "EmbeddingForward",
        lambda table, ids: [*ids, table[1]],
        lambda table, ids: table,
        embedding_bprop,
    )

    bias_grad = op("BiasGrad", lambda dy, b: b)
    bias_add = op(
        "BiasAddForward", lambda x, b: x, lambda x, b, out, dout: (dout, bias_grad(dout, b))
    )
    softmax_backward = op("SoftmaxBackward", lambda y, dy: y)
    softmax = op("SoftmaxForward", lambda x: x, lambda x, out, dout: (softmax_backward(out, dout),))

    def scalar(name: str) -> Callable[..., Any]:
        """An op over any number of tensors whose output is one float32 (for the in-place
        update, a dummy: a Custom op must have an output)."""
        return custom(name, lambda *shapes: [1], lambda *dtypes: float32)

    matmul_nt = bert_layer = None
    if hasattr(ctypes.CDLL(str(library)), "MatMulNT"):  # built against numpy's OpenBLAS
        matmul_nn = custom("MatMulNN", lambda dy, w: [*dy[:-1], w[1]], lambda dy, w: dy)
        matmul_tn = op("MatMulTN", lambda dy, x, w: w)
        matmul_nt = custom(
            "MatMulNT",
            lambda x, w: [*x[:-1], w[0]],
            lambda x, w: x,
            lambda x, w, out, dout: (matmul_nn(dout, w), matmul_tn(dout, x, w)),
        )
        bert_layer = _bert_layer_ops(custom)

    return FusedOps(
        library,
        gelu,
        layer_norm,
        cross_entropy,
        dropout,
        embedding,
        bias_add,
        softmax,
        scalar("SumOfSquares"),
        scalar("AdamWeightDecayMulti"),
        matmul_nt,
        bert_layer,
    )


def _bert_layer_ops(custom: Callable[..., Any]) -> Callable[..., Any]:
    """The fused encoder layer, one primitive per head count (the saved buffer's size depends on
    it), sharing one backward."""
    from mindspore import ops

    backward = custom(
        "BertLayerBackward",
        lambda dy, saved, x, mask, *rest: [x, *rest[:16]],
        lambda dy, saved, x, mask, *rest: [x, *rest[:16]],
    )

    def bprop(*args: Any) -> tuple:
        *inputs, out, dout = args  # x, mask, 16 weights, meta, key
        dx, *grads = backward(dout[0], out[1], *inputs)
        mask, meta, key = inputs[1], inputs[-2], inputs[-1]
        return (dx, ops.zeros_like(mask), *grads, ops.zeros_like(meta), ops.zeros_like(key))

    layers: dict[int, Any] = {}

    def layer(heads: int, *inputs: Any) -> Any:
        if heads not in layers:

            def shapes(x: list, mask: list, *rest: list) -> list:
                (batch, length, hidden), inner = x, rest[10][0]
                saved = batch * length * (7 * hidden + heads * length + 2 * inner)
                return [x, [saved]]

            layers[heads] = custom("BertLayerForward", shapes, lambda x, *rest: [x, x], bprop)
        return layers[heads](*inputs)

    return layer


def set_blas_threads(count: int) -> None:
    """Size numpy's OpenBLAS pool, which the linear layers' matmuls share (if it ships one)."""
    blas = openblas()
    if blas is not None:
        ctypes.CDLL(str(blas)).openblas_set_num_threads64_(count)

"""Where the framework loads (once, lazily: the first stage, model or batch that needs it) and the
MindSpore / mindtorch runtime calls the stages make (its API is still moving); training/ and the
CPU modules call MindSpore ops of their own. data/, metrics/, paper/, report/ and results/ never
import it (tests/test_import_boundaries.py).

Everything model-side runs through mindnlp 0.5, which serves Hugging Face's model code on MindSpore
via `mindtorch` (a torch-compatible layer). What about that stack shapes this file:
- the hub endpoint must be set before `import mindnlp` (which otherwise picks a mirror itself);
- so must the device (`bert_repro.device`): mindtorch keeps every tensor on the CPU unless it is
  moved, so the model (`place`) and every batch (`to_tensor`) are put on the chosen target;
- `Tensor.backward()` is a no-op in mindtorch: gradients come from `value_and_grad`;
- `datasets` takes mindtorch for torch and calls `Tensor.share_memory_`, which it lacks;
- the CPU path needed fixes and tuning of its own: `bert_repro.cpu_backend`, applied on CPU only.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import numpy as np

from bert_repro import cpu_backend
from bert_repro import device as devices

_FRAMEWORK: ModuleType | None = None
_TARGET: devices.Target | None = None  # MindSpore's target, fixed by the first use_device


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


def use_device(choice: str) -> devices.Target:
    """Fix MindSpore's target for this process (`auto|cpu|gpu|ascend`, see `bert_repro.device`)
    and return it. The first call decides; it must come before msrun's group forms (which binds
    each rank to a device) and before mindnlp is imported. Later calls must agree with it."""
    global _TARGET
    devices.check_choice(choice)
    if _TARGET is None:
        if devices.wanted_target(choice) == "CPU":
            cpu_backend.set_process_env()  # before `import mindspore` loads libgomp
        _TARGET = devices.select(choice)
    elif devices.CHOICES[choice] not in (None, _TARGET):
        raise RuntimeError(f"device={choice} asked for, but this process runs on {_TARGET}")
    return _TARGET


def load_framework(device: str = "auto") -> ModuleType:
    """Fix the device (`use_device`), import mindnlp (which installs mindtorch as `torch`) once,
    and return that `torch`. On CPU it also installs `cpu_backend`'s fixes, elsewhere none."""
    global _FRAMEWORK
    chosen = use_device(device)
    if _FRAMEWORK is not None:
        return _FRAMEWORK
    if "HF_ENDPOINT" not in os.environ:
        raise RuntimeError("configure_hub() must run before the framework is loaded")
    import warnings

    warnings.filterwarnings("ignore")
    _quiet_unused_libraries()
    import mindnlp  # noqa: F401  (side effect: registers mindtorch as `torch`)
    import mindtorch

    if chosen == "CPU":
        cpu_backend.patch_mindtorch(mindtorch)
    if not hasattr(mindtorch.Tensor, "share_memory_"):
        # `datasets` sees mindtorch as torch and shares streaming-dataset state with it; there
        # are no worker processes to share with here, so in place is enough.
        mindtorch.Tensor.share_memory_ = lambda self: self
    _FRAMEWORK = mindtorch
    return mindtorch


def target() -> devices.Target:
    """The device this process computes on (MindSpore's name: CPU, GPU or Ascend)."""
    return use_device("auto")


def place(model: Any) -> Any:
    """`model` on the run's device. mindtorch creates it on the CPU, so there it stays as is
    (a CPU-to-CPU `.to` would copy every weight through numpy)."""
    if target() == "CPU":
        return model
    return model.to(tensor_device())


def _quiet_unused_libraries() -> None:
    """Silence what importing mindnlp makes other libraries announce, at the source.

    `datasets` logs "PyTorch version 2.7.1+dev available" (mindtorch posing as torch) through a
    logger it has not configured yet, so under Hydra's INFO root it reaches the console; mindnlp
    imports diffusers, whose modular pipelines warn that they are experimental. We use neither
    claim: datasets keeps its warnings, diffusers (never used) only its errors.
    """
    logging.getLogger("datasets").setLevel(logging.WARNING)
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def seed_everything(seed: int) -> None:
    """Seed every generator a run draws from (init, dropout, data order)."""
    import mindspore

    torch = load_framework()
    torch.manual_seed(seed)
    mindspore.set_seed(seed)
    cpu_backend.DropoutStream.seed, cpu_backend.DropoutStream.calls = seed % 2**63, 0
    np.random.seed(seed % 2**32)


def rng_state() -> np.ndarray:
    """The framework generator's state and the (CPU) dropout stream, to store with a checkpoint."""
    import mindspore

    framework = mindspore.Tensor.asnumpy(load_framework().get_rng_state())
    stream = cpu_backend.DropoutStream
    stream = np.array([stream.seed, stream.calls], dtype=np.int64).view(np.uint8)
    return np.concatenate([framework, stream])


def set_rng_state(state: np.ndarray) -> None:
    import mindspore

    state = np.asarray(state, dtype=np.uint8)
    load_framework().set_rng_state(mindspore.Tensor(state[:-16]))
    seed, calls = (int(v) for v in state[-16:].view(np.int64))
    cpu_backend.DropoutStream.seed, cpu_backend.DropoutStream.calls = seed, calls


def tensor_device() -> str:
    """mindtorch's name for the run's device: cpu, cuda or npu."""
    return devices.TENSOR_DEVICE[target()]


def to_tensor(array: np.ndarray) -> Any:
    """A batch array as a tensor on the run's device."""
    return load_framework().tensor(array, device=tensor_device())


def to_numpy(tensor: Any) -> np.ndarray:
    """Back to the host from any device (mindtorch's `.numpy()` accepts CPU tensors only)."""
    return tensor.detach().asnumpy()


def token_cross_entropy(logits: Any, targets: Any) -> Any:
    """Cross-entropy of each row of (rows, vocab) logits, unreduced: the fused kernel when on
    (one pass over the logits each way, not log-softmax then gather), else torch's."""
    fused = cpu_backend.fused_token_cross_entropy(logits, targets)
    if fused is not None:
        return fused
    return load_framework().nn.functional.cross_entropy(logits, targets, reduction="none")


def value_and_grad(loss_fn: Callable[..., Any], params: Sequence[Any]) -> Callable[..., Any]:
    """`loss_fn(*args) -> loss` becomes `f(*args) -> (loss, grads)`, grads aligned with params."""
    from mindtorch import autograd

    return autograd.value_and_grad(loss_fn, list(params), attach_grads=False)


def no_grad() -> Any:
    return load_framework().no_grad()

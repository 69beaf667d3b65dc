"""Which device a run computes on: the `device` setting, checked against the machine and the build.

MindSpore fixes its target once, before the first kernel runs, and mindtorch reads it when it is
imported (`mindtorch/configs.py`), so the choice is made before `import mindnlp`. The one wheel
carries CPU, GPU (CUDA 11.1/11.6) and Ascend plugins; a plugin loads only where its libraries do,
which `MSContext.is_pkg_support_device` reports. `auto` first looks for device files (no import:
the CPU path sets OpenMP's environment before MindSpore loads libgomp), then asks the build.
"""

from __future__ import annotations

import glob
import sys
from typing import Literal

from bert_repro.errors import UserError

Target = Literal["CPU", "GPU", "Ascend"]
CHOICES: dict[str, Target | None] = {"auto": None, "cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
# mindtorch's name for each target's tensors (its dispatcher routes ops by it).
TENSOR_DEVICE: dict[Target, str] = {"CPU": "cpu", "GPU": "cuda", "Ascend": "npu"}
# Device nodes the drivers create: what `auto` looks for before importing anything.
DEVICE_FILES: dict[Target, str] = {"Ascend": "/dev/davinci[0-9]*", "GPU": "/dev/nvidia[0-9]*"}
FIX: dict[Target, str] = {
    "CPU": "reinstall mindspore",
    "GPU": "install the CUDA 11 runtime and cuDNN 8 (requirements/gpu-cuda11.txt)",
    "Ascend": "install CANN and source its set_env.sh",
}


def check_choice(choice: str) -> None:
    if choice not in CHOICES:
        raise UserError(f"unknown device '{choice}'; choose one of: {', '.join(CHOICES)}")


def hardware_guess() -> Target:
    """The accelerator this machine appears to have (its device files), else CPU."""
    for target, pattern in DEVICE_FILES.items():
        if glob.glob(pattern):
            return target
    return "CPU"


def wanted_target(choice: str) -> Target:
    """The target `choice` asks for, before MindSpore is imported (`auto`: the hardware guess)."""
    check_choice(choice)
    return CHOICES[choice] or hardware_guess()


def build_supports(target: Target) -> tuple[bool, str]:
    """Whether the installed MindSpore can run on `target` here, and if not, why (one line)."""
    from mindspore._c_expression import MSContext

    context = MSContext.get_instance()
    if context.is_pkg_support_device(target):
        return True, ""
    errors = [line for line in context.load_plugin_error().splitlines() if target.lower() in line]
    return False, (errors[0] if errors else f"MindSpore loaded no {target} plugin")


def select(choice: str) -> Target:
    """Set MindSpore's target for `choice` and return it; call before `import mindnlp`.

    An explicit choice the build or machine cannot serve stops with one line naming the fix;
    `auto` falls back to CPU with a line saying why, and says what it picked (on stderr).
    """
    import mindspore

    target = wanted_target(choice)
    if target != "CPU":
        supported, reason = build_supports(target)
        if not supported and choice != "auto":
            raise UserError(
                f"device={choice}: MindSpore {mindspore.__version__} cannot run on {target} "
                f"here ({reason}); {FIX[target]}, or run with device=cpu"
            )
        if not supported:
            note(f"device auto: {target} found but not usable ({reason}); running on CPU")
            target = "CPU"
    mindspore.set_device(target)
    if choice == "auto":
        note(f"device auto: {target} (set device=cpu|gpu|ascend to choose)")
    return target


def note(line: str) -> None:
    """To stderr: stdout may be a command's answer (predict's labels)."""
    print(line, file=sys.stderr)

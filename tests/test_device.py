"""Device selection and the CPU-only backend: CPU gets its fixes, other targets none of them.

No GPU or Ascend is at hand, so another target is simulated: the build's availability probe says
yes and MindSpore's `set_device` only records what it was asked for.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bert_repro import cpu_kernels, device
from bert_repro.config import run_id
from bert_repro.errors import UserError
from tests.conftest import compose
from tests.test_cli import run

REPO = Path(__file__).resolve().parents[1]

_LOAD = """
import json, os, sys
import mindspore
from omegaconf import OmegaConf
from bert_repro import backend, cpu_backend, cpu_kernels, device
from bert_repro.config import SpeedConfig

calls = {"set_device": [], "kernel_builds": 0, "launch_blocking": 0}
mindspore.set_device = lambda target, device_id=None: calls["set_device"].append(target)
build = cpu_kernels.build
def counted_build(*args, **kwargs):
    calls["kernel_builds"] += 1
    return build(*args, **kwargs)
cpu_kernels.build = counted_build
mindspore.runtime.launch_blocking = lambda: calls.__setitem__("launch_blocking", 1)
if sys.argv[1] != "cpu":  # simulated: this build and machine have the accelerator
    device.build_supports = lambda target: (True, "")

backend.configure_hub("https://huggingface.co", offline=True)
torch = backend.load_framework(sys.argv[1])
import mindtorch
on = cpu_backend.tune(OmegaConf.structured(SpeedConfig))
print(json.dumps({
    **calls,
    "target": backend.target(),
    "tensor_device": backend.tensor_device(),
    "tuned": on,
    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    "patched": sorted(
        name for name, op in [
            ("dropout", mindtorch._apis.cpu.dropout),
            ("dense", mindtorch._apis.cpu.dense),
            ("sub", mindtorch.ops.sub),
            ("gelu", mindtorch._apis.cpu.gelu),
            ("layer_norm", mindtorch._apis.cpu.layer_norm),
            ("embedding", mindtorch._apis.cpu.embedding),
            ("softmax", mindtorch._apis.cpu.softmax),
        ]
        if op.__module__ == "bert_repro.cpu_backend"
    ),
}))
"""


def load_on(choice: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, choice],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cpu_target_gets_every_cpu_fix_and_speed_setting():
    seen = load_on("cpu")
    assert seen["set_device"] == ["CPU"] and seen["tensor_device"] == "cpu"
    assert seen["omp_wait_policy"] == "PASSIVE"
    fused = seen["tuned"]["fused_cpu_kernels"]  # False only where no C++ compiler exists
    kernels = ["embedding", "gelu", "layer_norm", "softmax"] if fused else []
    assert seen["patched"] == sorted(["dense", "dropout", "sub", *kernels])
    assert seen["kernel_builds"] == 1 and seen["launch_blocking"] == 1
    assert seen["tuned"]["blocking_cpu_launch"]
    # the linear layers' matmuls by OpenBLAS wherever numpy ships it and the kernels built
    assert seen["tuned"]["openblas_matmul"] == (fused and cpu_kernels.openblas() is not None)
    assert seen["tuned"]["fused_encoder_layer"] == seen["tuned"]["openblas_matmul"]


@pytest.mark.parametrize(
    ("choice", "target", "tensors"), [("gpu", "GPU", "cuda"), ("ascend", "Ascend", "npu")]
)
def test_accelerator_target_gets_none_of_the_cpu_fixes(choice, target, tensors):
    """Stock ops, MindSpore's async launch, OpenMP untouched, and nothing compiled."""
    seen = load_on(choice)
    assert seen["set_device"] == [target] and seen["target"] == target
    assert seen["tensor_device"] == tensors
    assert seen["patched"] == []
    assert seen["omp_wait_policy"] is None
    assert seen["kernel_builds"] == 0 and seen["launch_blocking"] == 0
    assert seen["tuned"] == {
        "fused_cpu_kernels": False,
        "openblas_matmul": False,
        "fused_encoder_layer": False,
        "blocking_cpu_launch": False,
    }


def test_unknown_device_is_one_line_with_the_choices():
    with pytest.raises(UserError, match="unknown device 'tpu'; choose one of: auto, cpu, gpu"):
        device.check_choice("tpu")


@pytest.mark.parametrize(("choice", "fix"), [("gpu", "CUDA 11"), ("ascend", "CANN")])
def test_a_device_the_build_lacks_stops_with_the_fix(choice, fix, monkeypatch):
    monkeypatch.setattr(device, "build_supports", lambda target: (False, "plugin did not load"))
    with pytest.raises(UserError) as err:
        device.select(choice)
    message = str(err.value)
    assert "\n" not in message and fix in message and "device=cpu" in message


def test_auto_picks_the_accelerator_it_finds_or_says_why_not(monkeypatch, capsys):
    import mindspore

    asked = []
    monkeypatch.setattr(
        mindspore, "set_device", lambda target, device_id=None: asked.append(target)
    )
    monkeypatch.setattr(device, "hardware_guess", lambda: "GPU")
    monkeypatch.setattr(device, "build_supports", lambda target: (True, ""))
    assert device.select("auto") == "GPU"
    monkeypatch.setattr(device, "build_supports", lambda target: (False, "no libcudart.so.11.0"))
    assert device.select("auto") == "CPU"
    assert asked == ["GPU", "CPU"]
    said = capsys.readouterr().err
    assert "device auto: GPU found but not usable (no libcudart.so.11.0); running on CPU" in said


def test_this_build_offers_the_cpu():
    assert device.build_supports("CPU") == (True, "")


def test_device_is_not_in_the_run_id(tmp_path):
    """A run resumes its directory on any device: the default config's id (with `device: auto`)
    equals the id without the key, and with any choice."""
    from omegaconf import OmegaConf

    cfg = compose([], tmp_path)
    base = run_id(cfg)
    container = OmegaConf.to_container(cfg, resolve=True)
    del container["device"]
    assert run_id(container) == base
    assert run_id(compose(["device=cpu"], tmp_path)) == base
    assert run_id(compose(["device=gpu"], tmp_path)) == base


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["device=gpu"], "device=gpu: MindSpore 2.7.0 cannot run on GPU here"),
        (["device=tpu"], "unknown device 'tpu'"),
    ],
)
def test_run_stops_before_loading_data_with_one_line(args, message, tmp_path):
    """This machine's build has no GPU plugin loaded (no CUDA 11 here)."""
    if args == ["device=gpu"] and device.build_supports("GPU")[0]:
        pytest.skip("this machine can run on a GPU")
    assert_one_line_error(["run.py", *args, *tmp_paths(tmp_path)], message, tmp_path)


def tmp_paths(tmp_path: Path) -> list[str]:
    return [f"paths.runs={tmp_path}/runs", f"paths.results={tmp_path}/res"]


def assert_one_line_error(args: list[str], message: str, tmp_path: Path) -> None:
    """Exit 1 with one `error:` line holding `message`, no traceback, no results written."""
    result = run(args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "res").exists()


def test_doctor_reports_the_build_and_matches_the_cpu_step():
    """`python -m bert_repro.doctor` on CPU (tiny shapes): the report, and the step run twice
    (in the child that draws the weights and here) gives the same losses."""
    command = ["-m", "bert_repro.doctor", "--device", "cpu", "--model", "bert_tiny"]
    result = run([*command, "--batch", "2", "--seq-len", "16"])
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "MindSpore 2.7.0" in out and "  CPU: usable" in out and "  GPU: " in out
    assert "loss before the update: CPU" in out and "loss after one update: CPU" in out
    assert "agree: largest relative difference 0.00e+00" in out


def test_doctor_refuses_a_device_the_build_lacks():
    if device.build_supports("GPU")[0]:
        pytest.skip("this machine can run on a GPU")
    result = run(["-m", "bert_repro.doctor", "--device", "gpu"])
    assert result.returncode == 1 and "GPU: not usable" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: device=gpu: MindSpore")

"""Device check: the MindSpore build, the devices it can use, and one training step compared
with the CPU's.

    python -m bert_repro.doctor                          # device auto, BERT-mini, fp32
    python -m bert_repro.doctor --device gpu --precision bf16

The step is a BERT pre-training step (MLM + NSP, AdamW, dropout off so that it is
deterministic) on a fixed random batch. MindSpore runs one device per process, so the CPU
reference runs in a child process, which also draws the initial weights and hands them over in
a file: both sides start from the same weights and batch. The losses before and after the update
must agree (fp32: to 1e-3 relative; bf16/fp16: 2e-2); the exit status says whether they did.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bert_repro import backend, device
from bert_repro.errors import UserError

TOLERANCE = {"fp32": 1e-3, "bf16": 2e-2, "fp16": 2e-2}


def build_report() -> list[str]:
    """What the installed MindSpore can run on here, and why not where it cannot."""
    import mindspore

    lines = [f"MindSpore {mindspore.__version__} ({Path(mindspore.__file__).parent})"]
    for target in ("CPU", "GPU", "Ascend"):
        supported, reason = device.build_supports(target)
        files = device.DEVICE_FILES.get(target)
        seen = f"; device files: {len(glob.glob(files))}" if files else ""
        state = "usable" if supported else f"not usable ({reason}): {device.FIX[target]}"
        lines.append(f"  {target}: {state}{seen}")
    return lines


def step_losses(model: str, batch: int, seq_len: int, precision: str, weights: Path) -> list[float]:
    """Losses of two training steps (before and after one update) from the weights in
    `weights`; the CPU reference (no file yet) draws them and writes the file."""
    from omegaconf import OmegaConf

    from bert_repro.config import OptimConfig
    from bert_repro.models.factory import build_pretraining_model
    from bert_repro.pretraining.objectives import get_objective
    from bert_repro.pretraining.synthetic import model_config, pretraining_batch
    from bert_repro.training.loop import load_model_weights, make_train_step, model_weights

    cfg = model_config(model)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    backend.seed_everything(0)
    net, _, _ = build_pretraining_model(cfg, get_objective("mlm_nsp"))
    if weights.exists():
        with np.load(weights) as saved:
            load_model_weights(net, dict(saved))
    else:
        np.savez(weights, **model_weights(net))
    net.train()
    data = pretraining_batch(batch, seq_len, max(1, seq_len * 15 // 100), cfg.vocab_size, 0)
    optim = OmegaConf.structured(OptimConfig)
    _, step = make_train_step(net, optim, sorted(data), precision=precision)
    return [step(data, 1e-4)[0] for _ in range(2)]


def cpu_reference(args: argparse.Namespace, weights: Path) -> list[float]:
    command = [sys.executable, "-m", "bert_repro.doctor", "--device", "cpu", "--precision", "fp32"]
    command += ["--model", args.model, "--batch", str(args.batch), "--seq-len", str(args.seq_len)]
    done = subprocess.run(
        [*command, "--reference", str(weights)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the CPU reference step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bert_repro.doctor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | gpu | ascend")
    parser.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16")
    parser.add_argument("--model", default="bert_mini", help="a size preset of conf/model/")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)  # the CPU child
    args = parser.parse_args(argv)
    from bert_repro import cpu_backend
    from bert_repro.config import SpeedConfig
    from bert_repro.training.precision import check_supported

    backend.configure_hub("https://huggingface.co", offline=True)
    try:
        target = backend.use_device(args.device)
        check_supported(args.precision, target)
    except UserError as err:
        print("\n".join(build_report()))
        raise SystemExit(f"error: {err}") from None
    backend.load_framework(args.device)
    cpu_backend.tune(SpeedConfig())  # as a run does (nothing off the CPU)
    if args.reference:
        losses = step_losses(args.model, args.batch, args.seq_len, "fp32", args.reference)
        print(json.dumps(losses))
        return
    print("\n".join(build_report()))
    print(f"checking one {args.model} training step on {target} ({args.precision}) against CPU")
    with tempfile.TemporaryDirectory(prefix="bert-repro-doctor-") as work:
        weights = Path(work) / "weights.npz"
        reference = cpu_reference(args, weights)
        ours = step_losses(args.model, args.batch, args.seq_len, args.precision, weights)
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(ours, reference, strict=True))
    for name, a, b in zip(("before the update", "after one update"), ours, reference, strict=True):
        print(f"  loss {name}: {target} {a:.6f}  CPU {b:.6f}")
    allowed = TOLERANCE[args.precision]
    print(f"{'agree' if worst <= allowed else 'DIFFER'}: largest relative difference {worst:.2e}")
    if worst > allowed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

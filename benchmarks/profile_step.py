"""Where our pre-training step's time goes, kernel by kernel: `python -m benchmarks.profile_step`.

Part (e) times blocks alone, each with a reduction to a scalar that the step never runs; this
runs MindSpore's profiler over whole training steps (forward, backward, clipping, AdamW) at the
benchmark's shapes and sums kernel time by op, each fused kernel under its own name. What the
kernels do not account for is the framework's own cost (Python, dispatch, autograd bookkeeping).
Ours only: PyTorch has no counterpart here. CPU, blocking launch and the fused kernels, as a run
uses them.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.harness import REPO
from benchmarks.part_a_step import our_train_step
from benchmarks.stats import summarize, time_calls
from bert_repro.pretraining.synthetic import model_config, pretraining_batch


def kernel_times(
    profile_dir: Path, steps: int, launches: list[str]
) -> list[tuple[str, float, float]]:
    """(op, launches per step, ms per step) from the profiler's per-op CPU summary, largest first.

    The profiler calls every fused kernel `Custom-opN`; its launch list names N in order, and
    `launches` (our own log of the same steps) says which kernel each launch was. If the two
    lists disagree in length, the fused kernels stay one "Custom" row.
    """
    (detail,) = profile_dir.glob("**/cpu_op_detail_info_*.csv")
    (framework,) = profile_dir.glob("**/cpu_framework_*.txt")
    lines = framework.read_text().splitlines()
    custom = [line.split(";")[1] for line in lines if line.startswith("Custom;")]
    kernels: dict[str, set[str]] = defaultdict(set)
    if len(custom) == len(launches):
        for op_name, kernel in zip(custom, launches, strict=True):
            kernels[op_name].add(kernel)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    with detail.open() as f:
        for row in csv.DictReader(f):
            named = kernels.get(row["op_name"], set())
            op = f"Custom {next(iter(named))}" if len(named) == 1 else row["op_type"]
            totals[op][0] += int(row["op_occurrences"])
            totals[op][1] += float(row["op_total_time(ms)"])
    rows = [(op, count / steps, ms / steps) for op, (count, ms) in totals.items()]
    return sorted(rows, key=lambda row: -row[2])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert_tiny", help="size preset (bert_tiny)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--predictions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3, help="profiled (and timed) steps")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out-dir", default=str(REPO / "results" / "bench"))
    args = parser.parse_args(argv)

    from bert_repro import backend, cpu_backend, cpu_kernels

    backend.configure_hub("https://huggingface.co", offline=True)
    backend.load_framework("cpu")
    cpu_backend.set_cpu_threads(args.threads)
    fused = cpu_backend.use_fused_cpu_kernels(True)
    cpu_backend.use_blocking_cpu_launch(True)
    import mindspore

    cfg = model_config(args.model)
    batch = pretraining_batch(args.batch, args.seq_len, args.predictions, cfg.vocab_size, 0)
    step = our_train_step(cfg, batch, seed=0)
    wall = summarize(time_calls(step, 2, args.steps), 1000)["median"]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bert-repro-profile-") as scratch:
        profiler = mindspore.Profiler(output_path=scratch)
        cpu_kernels.LAUNCHES = []
        for _ in range(args.steps):
            step()
        launches, cpu_kernels.LAUNCHES = cpu_kernels.LAUNCHES, None
        profiler.stop()
        profiler.analyse()
        rows = kernel_times(Path(scratch), args.steps, launches)
    kernels = sum(ms for _, _, ms in rows)
    lines = [
        f"# Step profile: {args.model}, {args.batch}x{args.seq_len}, {args.predictions} masked",
        "",
        f"{wall:,.0f} ms per step (median of {args.steps}, unprofiled), load average {load:.1f} "
        f"on {os.cpu_count()} cores, {args.threads} threads, fused kernels "
        f"{'on' if fused else 'off'}; kernels {kernels:,.0f} ms, the rest "
        f"({wall - kernels:,.0f} ms) is the framework's own.",
        "",
        "| op | launches/step | ms/step | share of kernel time |",
        "|---|---|---|---|",
        *(f"| {op} | {n:g} | {ms:.1f} | {ms / kernels:.0%} |" for op, n, ms in rows if ms >= 0.05),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out_dir) / f"{stamp}-profile-{args.model}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"saved {out}")


if __name__ == "__main__":
    main()

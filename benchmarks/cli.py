"""`python -m benchmarks`: run the benchmark parts, print the ratio table, save the results.

python -m benchmarks                 # everything, full shapes (minutes: see README's Benchmarks)
python -m benchmarks --quick         # smoke test: tiny shapes, 2 repetitions
python -m benchmarks --only a,d --reps 10 --ref-python .venv-ref/bin/python
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from benchmarks.harness import REPO, Context
from benchmarks.part_a_step import step_part
from benchmarks.part_b_finetune import finetune_part
from benchmarks.part_c_builder import builder_part
from benchmarks.part_d_flops import flops_part
from benchmarks.part_e_blocks import op_part
from benchmarks.table import markdown
from bert_repro.config import CONF_DIR

PARTS: dict[str, tuple[str, Callable[[Context], None]]] = {
    "a": ("pre-training step: ours vs PyTorch + HF", step_part),
    "b": ("fine-tuning epoch on SST-2 / MRPC (MiniLM)", finetune_part),
    "c": ("pre-training data builder: throughput and memory", builder_part),
    "d": ("achieved FLOP/s vs the dense matmul peak", flops_part),
    "e": ("the step's building blocks, forward + backward: where the time goes", op_part),
}
REF_PYTHONS = (".venv-bench/bin/python", ".venv-ref/bin/python")  # first found is the default
# data=corpus as the run sees it: its root is ${paths.data}/corpus (conf/config.yaml)
_CORPUS = OmegaConf.merge(
    {"paths": OmegaConf.load(CONF_DIR / "config.yaml").paths},
    {"data": OmegaConf.load(CONF_DIR / "data" / "corpus.yaml")},
).data
FULL: dict[str, Any] = {
    "models": ["bert_tiny", "bert_mini", "bert_small"],
    "batch": 32,
    "seq_len": 128,
    "predictions": 20,
    "reps": 5,
    "warmup": 2,
    "max_train_examples": None,  # per task: finetuning.DEFAULT_MAX_TRAIN
    "max_eval_examples": None,
    "corpus": list(_CORPUS.corpus),
    "matmul_size": 2048,
}
QUICK: dict[str, Any] = {
    **FULL,
    "models": ["bert_tiny"],
    "batch": 8,
    "seq_len": 64,
    "predictions": 10,
    "reps": 2,
    "warmup": 1,
    "max_train_examples": 64,
    "max_eval_examples": 64,
    "corpus": ["lines:bert_sample_text.txt"],
    "matmul_size": 512,
}


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def default_ref_python() -> str | None:
    """The benchmark venv's interpreter, else the parity reference venv's, else None."""
    found = [REPO / p for p in REF_PYTHONS if (REPO / p).is_file()]
    return str(found[0]) if found else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options, with the shape defaults of the full run or of `--quick` filled in."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke test")
    parser.add_argument("--only", type=_csv, default=list(PARTS), help="parts, e.g. a,d")
    parser.add_argument("--reps", type=int, help="timed repetitions per step (5; quick 2)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (2; quick 1)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads, both")
    parser.add_argument("--device", default="auto", help="ours on auto|cpu|gpu|ascend (auto)")
    parser.add_argument(
        "--stock-kernels",
        action="store_true",
        help="ours with mindtorch's GELU/LayerNorm/loss ops, not bert_repro/cpu_kernels (before)",
    )
    parser.add_argument(
        "--stock-matmul",
        action="store_true",
        help="ours with MindSpore's MatMul in nn.Linear, not speed.openblas_matmul (before)",
    )
    parser.add_argument(
        "--unfused-layer",
        action="store_true",
        help="ours with each encoder layer op by op, not speed.fused_encoder_layer (before)",
    )
    parser.add_argument(
        "--async-launch",
        action="store_true",
        help="ours with MindSpore's async op queue, not speed.blocking_cpu_launch (before)",
    )
    parser.add_argument("--ref-python", default=default_ref_python(), help="PyTorch interpreter")
    parser.add_argument("--models", type=_csv, help="size presets for a, d, e (all three)")
    parser.add_argument("--batch", type=int, help="pre-training batch (32)")
    parser.add_argument("--seq-len", type=int, help="pre-training sequence length (128)")
    parser.add_argument("--predictions", type=int, help="masked positions per sequence (20)")
    parser.add_argument("--tasks", type=_csv, default=["sst2", "mrpc"], help="GLUE tasks for b")
    parser.add_argument(
        "--max-train-examples", type=int, help="cap per task, 0 = all (default sst2 2000, mrpc all)"
    )
    parser.add_argument("--max-eval-examples", type=int, help="dev examples scored (all)")
    parser.add_argument("--lr", type=float, default=5e-5, help="fine-tuning learning rate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--glue-root", default=str(REPO.parent / "shared" / "data" / "glue"))
    parser.add_argument("--corpus-root", default=str((REPO / _CORPUS.root).resolve()))
    parser.add_argument("--corpus", type=_csv, help="layout:path entries (conf/data/corpus.yaml)")
    parser.add_argument("--rss-copies", type=int, default=4, help="corpus repeats for flat RSS")
    parser.add_argument("--matmul-size", type=int, help="n of the n^3 peak matmul (2048)")
    parser.add_argument("--out-dir", default=str(REPO / "results" / "bench"))
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    unknown = sorted(set(args.only) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {','.join(unknown)}; choose from {','.join(PARTS)}")
    args.only = [p for p in PARTS if p in args.only]
    if {"a", "b", "e"} & set(args.only) and not args.ref_python:
        parser.error(
            "parts a, b and e need a PyTorch interpreter: `make bench-venv` or --ref-python"
        )
    return args


def _save(ctx: Context, table: str) -> Path:
    from bert_repro.data.io import write_json_atomic
    from bert_repro.results.record import git_state, machine_info, now_iso, package_versions

    args = ctx.args
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    out = Path(args.out_dir) / stamp
    versions = {"ours": package_versions(), "reference": ctx.reference_versions}
    payload = {
        "created": now_iso(),
        "command": sys.argv,
        "settings": vars(args),
        "machine": {**machine_info(), "load_average_at_start": ctx.load_at_start},
        "versions": versions,
        "git": git_state(),
        "rows": [row.to_dict() for row in ctx.rows],
        "raw": ctx.raw,
    }
    write_json_atomic(out.with_suffix(".json"), payload)
    machine = ", ".join(f"{k} {v}" for k, v in payload["machine"].items())
    ours = ", ".join(f"{k} {v}" for k, v in versions["ours"].items() if v)
    reference = ", ".join(f"{k} {v}" for k, v in versions["reference"].items())
    out.with_suffix(".md").write_text(
        f"# Benchmark {stamp}\n\n{table}\n\n"
        f"Machine: {machine}; threads {args.threads}; "
        f"our CPU kernels: {'stock mindtorch' if args.stock_kernels else 'fused'}; "
        f"Linear matmuls: {'MindSpore' if args.stock_matmul else 'OpenBLAS when fused'}; "
        f"encoder layer: {'op by op' if args.unfused_layer else 'one fused launch each way'}; "
        f"op launch: {'async queue' if args.async_launch else 'blocking (CPU)'}.\n\n"
        f"Ours: {ours}.\n\nReference: {reference or 'not run'}.\n"
    )
    return out


def _legend(ctx: Context) -> str:
    args = ctx.args
    label = "QUICK smoke test (tiny shapes, not a measurement)" if args.quick else "Full run"
    return (
        f"{label}; load average {ctx.load_at_start[0]:.1f} at start on {os.cpu_count()} cores "
        "(other work makes every number noisier). Values: median [min–max] over "
        f"{args.reps} repetitions after {args.warmup} warm-up (one-off runs: the value); "
        "ours/ref: ratio of medians; better: which side wins on that metric."
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from bert_repro import backend, cpu_backend
    from bert_repro.errors import UserError

    backend.configure_hub("https://huggingface.co", offline=True)
    try:
        backend.load_framework(args.device)  # before anything imports transformers
    except UserError as err:
        raise SystemExit(f"error: {err}") from None
    if backend.target() == "CPU":
        cpu_backend.set_cpu_threads(args.threads)
    cpu_backend.use_fused_cpu_kernels(not args.stock_kernels)
    cpu_backend.use_openblas_matmul(not args.stock_matmul)
    cpu_backend.use_fused_encoder_layer(not args.unfused_layer)
    cpu_backend.use_blocking_cpu_launch(not args.async_launch)
    with tempfile.TemporaryDirectory(prefix="bert-repro-bench-") as work:
        ctx = Context(args, Path(work), load_at_start=os.getloadavg())
        for part in args.only:
            title, run = PARTS[part]
            print(f"({part}) {title}", flush=True)
            run(ctx)
    table = f"{_legend(ctx)}\n\n{markdown(ctx.rows)}"
    out = _save(ctx, table)
    print(f"\n{table}\n\nsaved {out}.json and .md")

"""What every benchmark part shares: its settings, scratch directory and the reference process."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmarks.table import Row
from bert_repro import cpu_backend
from bert_repro.errors import UserError
from bert_repro.models.factory import ARCH_KEYS, DROPOUT_KEYS

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Context:
    """One benchmark run: its options, a scratch directory, and results parts share."""

    args: argparse.Namespace
    work: Path
    load_at_start: tuple[float, ...] = ()  # other work on the CPU makes every number noisier
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    reference_versions: dict[str, str] = field(default_factory=dict)


def hf_arch(model_cfg: DictConfig) -> dict[str, Any]:
    """The preset as Hugging Face BertConfig keyword arguments (the reference builds from these)."""
    return {k: model_cfg[k] for k in (*ARCH_KEYS, *DROPOUT_KEYS)}


def reference_provenance(
    result: dict[str, Any],
    started: float,
    load_before: tuple[float, ...],
    cfg: DictConfig,
    module: str,
) -> dict[str, Any]:
    """What a reference record says of its run besides results: time and load, versions,
    commit, machine, command, and the composed config (the report pairs records by it)."""
    from bert_repro.results.record import git_state, machine_info, now_iso

    return {
        "wall_seconds": round(time.perf_counter() - started, 2),
        "threads": result["threads"],
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "versions": result["versions"],
        "git": git_state(),
        "machine": machine_info(),
        "command": " ".join(["python -m", module, *sys.argv[1:]]),
        "finished_at": now_iso(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def reference_options(parser: argparse.ArgumentParser, seeds: str, overrides: str) -> None:
    """The options every HF-side study takes: seeds, where records go, the bench venv, threads."""
    parser.add_argument("--seeds", default=seeds, help="comma-separated (%(default)s)")
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--ref-python", default=str(REPO / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("overrides", nargs="*", help=overrides)


def run_seeds(
    args: argparse.Namespace,
    config_of: Callable[[int], DictConfig],
    run: Callable[[DictConfig, Path, str, int], Path],
) -> int:
    """`run` each of `--seeds` in turn (exit 0), or one line and exit 2 on bad input."""
    if not Path(args.ref_python).is_file():
        print(f"error: no reference interpreter at {args.ref_python}; run `make bench-venv`")
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        print(f"error: --seeds takes comma-separated integers, e.g. 1,2,3 (got '{args.seeds}')")
        return 2
    try:
        for seed in seeds:
            run(config_of(seed), args.results, args.ref_python, args.threads)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def run_reference(ctx: Context, job: dict[str, Any], name: str) -> dict[str, Any]:
    """Run `job` in the reference interpreter (real PyTorch) and return its result."""
    job = {**job, "threads": ctx.args.threads, "seed": ctx.args.seed}
    result = call_reference(ctx.args.ref_python, job, ctx.work, name)
    ctx.reference_versions.update(result["versions"])
    return result


def call_reference(ref_python: str | Path, job: dict[str, Any], work: Path, name: str) -> dict:
    """`<ref_python> -m benchmarks.reference` on `job` (files under `work`): its result."""
    job_path, out_path = work / f"{name}-job.json", work / f"{name}-result.json"
    job_path.write_text(json.dumps(job))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRANSFORMERS_VERBOSITY": "error"}
    env = cpu_backend.without_own_env(env)  # the reference runs with PyTorch's own defaults
    command = [ref_python, "-m", "benchmarks.reference", job_path, out_path]
    print(f"  reference ({ref_python}): {name}", flush=True)
    subprocess.run([str(c) for c in command], cwd=REPO, env=env, check=True)
    return json.loads(out_path.read_text())

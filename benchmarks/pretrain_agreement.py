"""Pre-training from scratch, ours against PyTorch + Hugging Face on the same batches (issue 15):

    .venv/bin/python -m benchmarks.pretrain_agreement pretrain_tiny_mlm_nsp --seeds 42,1 \
        trainer.max_steps=1000

For each seed, the config `python run.py +experiment=<name> seed=<s> <overrides>` runs: its shards
(found in, or built into, the same cache as ours, runs/shards), and the bench venv trains HF's
BERT on them (benchmarks/hf_pretrain.py): HF's random init, or the config's weights, the same
batches in the same order, the same schedule, torch AdamW, scored on the same held-out instances
at our evaluation steps. `trainer.max_steps` cuts the run as it cuts ours: the schedule still
spans `pretrain.steps`, so a cut run's curve is the full run's first part. The record goes to
results/reference/hf_pretrain/<our run id>.json; the report pairs it with our records of the same
setup (`python -m bert_repro.report` writes results/tables/agreement_hf_pretraining.md). Finished
seeds are skipped: relaunch the same command to resume.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from benchmarks.harness import (
    call_reference,
    hf_arch,
    reference_options,
    reference_provenance,
    run_seeds,
)
from bert_repro.config import compose, run_id
from bert_repro.data.io import write_json_atomic
from bert_repro.errors import UserError

REFERENCE_DIR = Path("reference") / "hf_pretrain"
"""Where, under the results store, the HF side's pre-training records live."""


def run_config(experiment: str, seed: int, overrides: list[str]) -> DictConfig:
    """Our config of `run.py +experiment=<experiment> seed=<seed> <overrides>`, checked."""
    from bert_repro.pretraining.objectives import get_objective

    cfg = compose([f"+experiment={experiment}", f"seed={seed}", *overrides])
    if cfg.stage != "pretrain":
        raise UserError(f"{experiment} is not a pre-training experiment (stage: {cfg.stage})")
    if get_objective(cfg.objective.name).causal:
        raise UserError("the HF reference trains MLM objectives (mlm_nsp, mlm), not ltr")
    if cfg.pretrain.phase2_fraction:
        raise UserError("the HF reference replays one phase: set pretrain.phase2_fraction=0")
    if cfg.trainer.grad_accum_steps != 1:
        raise UserError("the HF reference takes whole batches: set trainer.grad_accum_steps=1")
    return cfg


def reference_job(cfg: DictConfig, threads: int) -> dict[str, Any]:
    """The bench venv's job: our shards (built if absent), schedule and hyper-parameters."""
    from bert_repro.models.factory import DROPOUT_KEYS, load_tokenizer, resolve_pretrained
    from bert_repro.pretraining.objectives import data_config, prepare_shards
    from bert_repro.stages.common import planned_steps
    from bert_repro.training.optim import warmup_steps_for

    weights = resolve_pretrained(cfg.model.pretrained)[1] if cfg.model.pretrained else None
    tokenizer = load_tokenizer(cfg.model, weights)
    settings = data_config(cfg.objective, cfg.task.max_seq_length, cfg.data.dupe_factor)
    shards = prepare_shards(
        cfg.data, settings, tokenizer, cfg.seed, Path(cfg.paths.runs) / "shards"
    )
    steps = int(cfg.pretrain.steps)
    return {
        "kind": "pretrain_curve",
        "threads": threads,
        "seed": int(cfg.seed),
        "objective": cfg.objective.name,
        "architecture": hf_arch(cfg.model),
        "weights": weights,
        "dropout": {k: cfg.model[k] for k in DROPOUT_KEYS},
        "train_shards": str(shards["train"]),
        "heldout_shards": str(shards["heldout"]),
        "eval_batch_size": int(cfg.speed.eval_batch_size),
        "max_eval_examples": cfg.data.max_eval_examples,
        "batch_size": int(cfg.trainer.batch_size),
        "steps": steps,
        "stop_at": planned_steps(steps, cfg.trainer.max_steps),
        "eval_every": int(cfg.pretrain.eval_every),
        "warmup_steps": warmup_steps_for(steps, cfg.optim.warmup_ratio),
        "lr": float(cfg.optim.lr),
        "betas": list(cfg.optim.betas),
        "eps": float(cfg.optim.eps),
        "weight_decay": float(cfg.optim.weight_decay),
        "max_grad_norm": float(cfg.optim.max_grad_norm),
    }


def run_seed(cfg: DictConfig, results: Path, ref_python: str, threads: int) -> Path:
    """Train and score one seed on the HF side; returns its record (skips a finished one)."""
    ours = run_id(cfg)
    path = results / REFERENCE_DIR / f"{ours}.json"
    if path.is_file():
        print(f"skip {path}: finished")
        return path
    job = reference_job(cfg, threads)
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = call_reference(ref_python, job, Path(work), f"pretrain-{ours}")
    run = result["run"]
    final = {k: v for k, v in run["history"][-1].items() if k not in ("step", "tokens_seen")}
    record = {
        "side": "pytorch+hf",
        "pipeline": "BertModel + BertPreTrainingHeads, torch AdamW (benchmarks/hf_pretrain.py)",
        "status": "complete",
        "pairs_with": ours,  # our run id of the same config
        "experiment": cfg.experiment,
        "task": "pretraining",
        "objective": cfg.objective.name,
        "model": {"name": cfg.model.name, "pretrained": cfg.model.pretrained},
        "seed": int(cfg.seed),
        "lr": job["lr"],
        "init": "weights" if job["weights"] else "random (Hugging Face's BERT init)",
        "bias_correction": True,  # torch AdamW
        "metrics": final,
        **run,
        **reference_provenance(result, started, load_before, cfg, "benchmarks.pretrain_agreement"),
    }
    write_json_atomic(path, record)
    print(f"{cfg.experiment} seed={cfg.seed}: {final} -> {path}", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pretrain_agreement",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", help="a pre-training preset, e.g. pretrain_tiny_mlm_nsp")
    reference_options(parser, "42", "run.py overrides, e.g. trainer.max_steps=1000")
    args = parser.parse_intermixed_args(argv)
    return run_seeds(args, lambda seed: run_config(args.experiment, seed, args.overrides), run_seed)


if __name__ == "__main__":
    raise SystemExit(main())

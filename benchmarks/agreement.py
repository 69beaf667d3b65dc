"""The PyTorch + Hugging Face side of the GLUE agreement study (issue 18), point by point:

    .venv/bin/python -m benchmarks.agreement mrpc --lr 2e-5 --seeds 1,2,3,4,5

Each seed is the same point as one of ours in experiments/table1_glue.yaml (its `cpu` scale, or
`--scale`): the same composed config (data, weights, lr, epochs, batch, warmup, weight decay,
clipping, length grouping), trained by `transformers.Trainer` in the bench venv
(benchmarks/hf_trainer.py) and scored here with the project's GLUE metrics. Its record goes to
results/reference/hf/<task>/<our run id>.json, so the report pairs it with our record of that
point (`python -m bert_repro.report` writes results/tables/agreement_hf.md). Finished seeds are
skipped: relaunch the same command to resume.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmarks.harness import (
    call_reference,
    reference_options,
    reference_provenance,
    run_seeds,
)
from bert_repro.config import run_id
from bert_repro.data.io import write_json_atomic
from bert_repro.errors import UserError
from bert_repro.results.degenerate import from_predictions

REFERENCE_DIR = Path("reference") / "hf"
"""Where, under the results store, the HF side's records live (one folder per task)."""

DEFINITION = "table1_glue"
HPARAMS = {  # the job's name -> where our config keeps it
    "lr": "optim.lr",
    "epochs": "trainer.epochs",
    "batch_size": "trainer.batch_size",
    "eval_batch_size": "speed.eval_batch_size",
    "warmup_ratio": "optim.warmup_ratio",
    "weight_decay": "optim.weight_decay",
    "betas": "optim.betas",
    "eps": "optim.eps",
    "max_grad_norm": "optim.max_grad_norm",
    "group_by_length": "trainer.group_by_length",
    "max_seq_length": "task.max_seq_length",
    "hidden_dropout_prob": "model.hidden_dropout_prob",
    "attention_probs_dropout_prob": "model.attention_probs_dropout_prob",
}


def point_config(task: str, lr: float, seed: int, scale: str, extra: list[str]) -> DictConfig:
    """Our config of the catalogue point (task, lr, seed): what `run.py` trains there."""
    from bert_repro.experiments.catalogue import expand

    runs = [r for r in expand(DEFINITION, scale, extra).runs if r.placeholders.get("task") == task]
    if not runs:
        raise UserError(f"{DEFINITION} [{scale}] has no run for task '{task}'")
    cfg = OmegaConf.masked_copy(runs[0].cfg, [k for k in runs[0].cfg if k != "hydra"])
    OmegaConf.set_struct(cfg, False)
    OmegaConf.update(cfg, "optim.lr", lr, merge=False)
    OmegaConf.update(cfg, "seed", seed, merge=False)
    return cfg


def _texts(examples: list[Any]) -> dict[str, Any]:
    pair = examples[0].text_b is not None
    return {
        "text_a": [e.text_a for e in examples],
        "text_b": [e.text_b for e in examples] if pair else None,
        "labels": [e.label for e in examples],
    }


def reference_job(cfg: DictConfig, threads: int) -> tuple[dict[str, Any], list[Any], int]:
    """The bench venv's job for this point, the dev labels, and the train set size."""
    from bert_repro.data.glue import load_examples
    from bert_repro.models.factory import resolve_pretrained
    from bert_repro.tasks.glue import get_task

    task = get_task(cfg.task.name)
    data = cfg.data
    train = load_examples(task, data.source, "train", data.root, data.hub_dataset)
    train = train[: data.max_train_examples or None]
    dev = load_examples(task, data.source, task.dev_splits[0], data.root, data.hub_dataset)
    dev = dev[: data.max_eval_examples or None]
    job = {
        "kind": "glue_trainer",
        "threads": threads,
        "seed": int(cfg.seed),
        "model_dir": resolve_pretrained(cfg.model.pretrained)[1],
        "num_labels": task.num_labels,
        "hparams": {
            name: OmegaConf.to_object(v) if OmegaConf.is_config(v) else v
            for name, key in HPARAMS.items()
            for v in [OmegaConf.select(cfg, key)]
        },
        "train": _texts(train),
        "dev": _texts(dev),
    }
    return job, [e.label for e in dev], len(train)


def run_point(cfg: DictConfig, results: Path, ref_python: str, threads: int) -> Path:
    """Train and score one point on the HF side; returns its record (skips a finished one)."""
    from bert_repro.metrics.glue import glue_metrics
    from bert_repro.tasks.glue import get_task

    task = get_task(cfg.task.name)
    ours = run_id(cfg)
    path = results / REFERENCE_DIR / task.name / f"{ours}.json"
    if path.is_file():
        print(f"skip {path}: finished")
        return path
    job, labels, train_examples = reference_job(cfg, threads)
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = call_reference(ref_python, job, Path(work), f"{task.name}-{ours}")
    run = result["run"]
    predictions = run.pop("predictions")
    metrics = glue_metrics(task.metrics, labels, predictions)
    record = {
        "side": "pytorch+hf",
        "pipeline": "transformers.Trainer (benchmarks/hf_trainer.py)",
        "status": "complete",
        "pairs_with": ours,  # our run id of the same point
        "experiment": cfg.experiment,
        "task": task.name,
        "split": "dev",
        "model": {"name": cfg.model.name, "pretrained": cfg.model.pretrained},
        "seed": int(cfg.seed),
        **job["hparams"],
        "bias_correction": True,  # torch AdamW, what Trainer uses
        "train_examples": train_examples,
        "dev_examples": len(labels),
        "metrics": metrics,
        "headline_metric": task.headline,
        "degenerate": from_predictions(predictions, task.is_regression),
        **run,
        **reference_provenance(result, started, load_before, cfg, "benchmarks.agreement"),
    }
    write_json_atomic(path, record)
    print(f"{task.name} lr={cfg.optim.lr} seed={cfg.seed}: {metrics} -> {path}", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agreement", description=__doc__)
    parser.add_argument("task", help="a GLUE task of experiments/table1_glue.yaml, e.g. mrpc")
    parser.add_argument("--lr", type=float, required=True, help="the lr our grid chose on dev")
    parser.add_argument("--scale", default="cpu", help="the definition's scale (%(default)s)")
    reference_options(parser, "1,2,3,4,5", "extra overrides, as for the catalogue")
    args = parser.parse_intermixed_args(argv)
    return run_seeds(
        args,
        lambda seed: point_config(args.task, args.lr, seed, args.scale, args.overrides),
        run_point,
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""Part (b): a fine-tuning epoch on real GLUE data from MiniLM weights: speed at equal quality.

Ours is the project's `finetune` stage itself (dynamic padding, length-grouped batches, BERT's
AdamW with warmup), composed as `run.py` would. The reference trains on the very same token ids
(written by this side) as run_glue.py does by default, and once more with dynamic padding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from benchmarks.harness import Context, run_reference
from benchmarks.inputs import pack_encoded
from benchmarks.table import Row, single
from bert_repro.config import compose
from bert_repro.pretraining.synthetic import model_config

MODEL = "minilm_l6"
BATCH = 32
DEFAULT_MAX_TRAIN = {"sst2": 2000, "mrpc": None}  # None: the whole training set
REF_VARIANTS = {
    "hf_pad128": "PyTorch + HF, run_glue defaults (pad to 128)",
    "hf_dynamic": "PyTorch + HF, dynamic padding",
}


def max_train_examples(task: str, requested: int | None) -> int | None:
    """`--max-train-examples` (0 = all), else the task's default cap (None = all)."""
    if requested is None:
        return DEFAULT_MAX_TRAIN.get(task)
    return requested or None


def _config(ctx: Context, task: str, max_train: int | None) -> DictConfig:
    args = ctx.args
    return compose(
        [
            f"task={task}",
            f"model={MODEL}",
            "data=local",
            f"data.root={args.glue_root}",
            f"data.max_train_examples={max_train or 'null'}",
            f"data.max_eval_examples={args.max_eval_examples or 'null'}",
            "trainer.epochs=1",
            f"trainer.batch_size={BATCH}",
            "trainer.resume=false",
            "trainer.keep_checkpoints=1",
            f"optim.lr={args.lr}",
            "trainer.group_by_length=true",
            f"seed={args.seed}",
            "hub.offline=true",
            f"paths.runs={ctx.work / 'runs'}",
            f"paths.results={ctx.work / 'results'}",
        ]
    )


def _write_inputs(cfg: DictConfig, path: Path) -> tuple[Any, int]:
    """Tokenize the run's train and dev examples as `finetune` does; returns (dev, train total)."""
    from bert_repro.data.batching import encode
    from bert_repro.data.glue import load_examples
    from bert_repro.models.factory import load_tokenizer, resolve_pretrained
    from bert_repro.tasks.glue import get_task

    task = get_task(cfg.task.name)
    train = load_examples(task, "local", "train", cfg.data.root)
    total = len(train)
    train = train[: cfg.data.max_train_examples or None]
    dev = load_examples(task, "local", task.dev_splits[0], cfg.data.root)
    dev = dev[: cfg.data.max_eval_examples or None]
    _, location = resolve_pretrained(cfg.model.pretrained)
    tokenizer = load_tokenizer(cfg.model, location)
    length = cfg.task.max_seq_length
    train_enc, dev_enc = (encode(e, tokenizer, length, task.is_regression) for e in (train, dev))
    np.savez(path, **pack_encoded("train", train_enc), **pack_encoded("dev", dev_enc))
    return dev_enc, total


def finetune_part(ctx: Context) -> None:
    """(b) one epoch per task: train seconds and the dev metric reached, ours vs reference."""
    from bert_repro.metrics.glue import glue_metrics
    from bert_repro.models.factory import resolve_pretrained
    from bert_repro.stages.finetune import run as finetune
    from bert_repro.tasks.glue import get_task

    args = ctx.args
    for name in args.tasks:
        task = get_task(name)
        cfg = _config(ctx, name, max_train_examples(name, args.max_train_examples))
        inputs = ctx.work / f"finetune-{name}.npz"
        dev, total = _write_inputs(cfg, inputs)
        print(f"  ours: {name} fine-tuning epoch", flush=True)
        record = finetune(cfg, ctx.work / "runs" / name)
        job = {
            "kind": "finetune",
            "inputs": str(inputs),
            "model_dir": resolve_pretrained(model_config(MODEL).pretrained)[1],
            "num_labels": task.num_labels,
            "max_seq_length": cfg.task.max_seq_length,
            "batch_size": BATCH,
            "eval_batch_size": cfg.speed.eval_batch_size,
            "pad_id": 0,
            "lr": args.lr,
            "variants": list(REF_VARIANTS),
        }
        ref = run_reference(ctx, job, f"finetune-{name}")["runs"]
        examples = record["data"]["train_examples"]
        case = f"{name} {examples}/{total} train ex, 1 epoch"
        headline = record["headline_metric"]
        ours_rate = record["tokens_per_second"]
        for variant, label in REF_VARIANTS.items():
            run = ref[variant]
            run["metrics"] = glue_metrics(task.metrics, dev.labels, run.pop("predictions"))
            ref_rate = run["real_tokens"] / run["train_seconds"]
            note = (
                f"real tokens/s {ours_rate:,.0f} vs {ref_rate:,.0f}; "
                f"ref computes {run['computed_tokens']:,} tokens"
            )
            ctx.rows.extend(
                [
                    Row(
                        "b",
                        case,
                        "train s",
                        single(record["train_seconds"]),
                        label,
                        single(run["train_seconds"]),
                        False,
                        note,
                    ),
                    Row(
                        "b",
                        case,
                        f"dev {headline} ({len(dev)} ex)",
                        single(record["metrics"][headline]),
                        label,
                        single(run["metrics"][headline]),
                        True,
                    ),
                ]
            )
        keep = ("train_seconds", "wall_seconds", "tokens_seen", "optimizer_steps", "metrics")
        ctx.raw.setdefault("finetune", {})[name] = {
            "ours": {k: record[k] for k in keep},
            "reference": ref,
            "train_examples": examples,
            "train_total": total,
        }

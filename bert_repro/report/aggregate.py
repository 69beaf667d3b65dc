"""The results store as tables: one row per run, then the paper's best-lr-on-dev selection.

Paper protocol (section 4.1): for each task, fine-tune with every learning rate of the grid and
keep the one that is best on dev. We do that per *group* (same task, model, data and every other
science setting except lr and seed): the mean over seeds of the headline dev metric picks the lr,
and the seeds at that lr give mean, std, median and n.

Nothing is dropped silently: a record that is partial, unreadable or lacks its headline metric
stays in :func:`runs_frame` with its ``status`` and ``problem``, is counted in its group's
summary row, and only complete runs with a finite headline enter the statistics.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bert_repro.config import config_hash, identified_weights, science_config, with_weights
from bert_repro.report.baselines import degenerate_reason
from bert_repro.results.record import repo_relative

METRIC_PREFIX = "metric."
"""Column prefix of the per-run metrics in :func:`runs_frame` (metric keys contain '/')."""

GROUP_KEYS: tuple[str, ...] = (
    "stage",
    "task",
    "experiment",
    "model",
    "arch",
    "scale",
    "init",
    "objective",
    "masking",
    "head",
    "data",
    "epochs",
    "batch_size",
    "setup",
)
"""What makes runs one lr sweep. ``setup`` hashes every other science setting, so runs that differ
in anything but lr and seed never share a group; the other keys are its readable part."""

SETUP_KEYS: tuple[str, ...] = ("model", "arch", "scale", "init", "objective", "masking", "head")
"""What makes one of *our systems* across tasks (a row of a paper table): the pre-trained model and
how it was pre-trained. Data used is a label of each cell, not part of the system."""

# Settings left out of the setup hash besides the non-science ones: the swept ones, and where the
# data happens to live on this machine.
_NOT_SETUP = {("optim", "lr"), ("seed",), ("data", "root")}
_LOWER_IS_BETTER = ("loss", "perplexity")


def higher_is_better(metric: str) -> bool:
    """Losses and perplexity improve downwards; every accuracy-like metric upwards."""
    return not any(word in metric for word in _LOWER_IS_BETTER)


def load_records(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every record under ``<results>/runs/<task>/*.json``; an unreadable file becomes a stub.

    The stub keeps the task (from the folder) and the error, so a corrupt record shows up as
    ``status="unreadable"`` instead of vanishing.
    """
    records = []
    for path in sorted(Path(results_dir).glob("runs/*/*.json")):
        if path.name.startswith("."):  # a temp file of an atomic write in progress
            continue
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            record = {
                "run_id": path.stem,
                "task": path.parent.name,
                "status": "unreadable",
                "error": f"{type(err).__name__}: {err}",
            }
        record["_path"] = repo_relative(str(path.absolute()))  # the same on every machine
        records.append(record)
    return records


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: group keys, seed, lr, status, problem, headline value and metrics."""
    rows = [_run_row(r) for r in records]
    metrics = sorted({key for row in rows for key in row if key.startswith(METRIC_PREFIX)})
    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *metrics])
    # Counts stay integers (nullable) even when an unreadable record leaves a gap.
    return frame.astype({**dict.fromkeys(_COUNTS, "Int64"), "ok": bool})


_COUNTS = ("seed", "params", "train_examples", "optimizer_steps", "tokens_seen")


def _run_row(record: dict[str, Any]) -> dict[str, Any]:
    config = record.get("config") or {}
    model = record.get("model") or {}
    data = record.get("data") or {}
    metrics = record.get("metrics") or {}
    headline_metric = record.get("headline_metric") or ""
    headline = metrics.get(headline_metric)
    status = record.get("status") or "unknown"
    problem = record.get("error") or ""
    if status == "partial":
        problem = f"stopped at optimizer step {record.get('optimizer_steps')} of the planned run"
    elif status == "complete" and not _finite(headline):
        status, problem = "failed", f"headline metric {headline_metric!r} missing or not finite"
    elif status not in ("complete", "unreadable"):
        problem = problem or f"unexpected status {status!r}"
    arch = model.get("architecture") or {}
    layers, hidden, heads = (arch.get(k) for k in _ARCH_KEYS)
    init = _init(record)
    objective = _pretraining(record, "objective") or ""
    tokens = _pretraining(record, "tokens_seen")
    row = {
        "run_id": record.get("run_id") or "",
        "stage": record.get("stage") or "",
        "task": record.get("task") or "",
        "experiment": record.get("experiment") or "",
        "model": model.get("name") or "",
        "arch": f"L{layers}/H{hidden}/A{heads}" if arch else "",
        "scale": scale_class(layers, hidden, heads, init, tokens),
        "params": model.get("parameters"),
        "init": init,
        "objective": objective,
        # A left-to-right LM masks nothing: no masking mix describes it.
        "masking": "" if objective == "ltr" else _masking_label(_pretraining(record, "masking")),
        "head": (config.get("model") or {}).get("head") or "linear",  # records before model.head
        "data": _data_regime(data),
        "protocol": data.get("protocol") or "",
        "train_examples": data.get("train_examples", data.get("train_questions")),
        "pretrain_tokens": tokens,
        "epochs": _epochs(record),
        "batch_size": _num(record.get("batch_size")),
        "setup": setup_hash(config, model.get("weights_sha256")) if config else "",
        "seed": record.get("seed"),
        "lr": record.get("lr"),
        "status": status,
        "ok": status == "complete",
        "problem": problem,
        "degenerate": degenerate_reason(record) if status == "complete" else "",
        "headline_metric": headline_metric,
        "headline": float(headline) if _finite(headline) else math.nan,
        "optimizer_steps": record.get("optimizer_steps"),
        "tokens_seen": record.get("tokens_seen"),
        "train_seconds": record.get("train_seconds"),
        "finished_at": record.get("finished_at") or "",
        "path": record.get("_path") or "",
    }
    for key, value in metrics.items():
        if isinstance(value, int | float):
            row[METRIC_PREFIX + key] = float(value)
    return row


_ARCH_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _epochs(record: dict[str, Any]) -> str:
    """The epochs a run trained: its schedule's, or where trainer.max_steps cut it, how far it got
    (a cut run is another setup, and its cells say `1 ep` rather than the schedule's 3)."""
    trained = record.get("epochs_trained")
    return f"{trained:g}" if _finite(trained) else _num(record.get("epochs"))


def _num(value: Any) -> str:
    """Group keys are strings so that pandas never drops a group for a missing (NaN) key."""
    return "" if value is None else str(value)


PAPER_SIZES = {"L12/H768/A12": "BERT-BASE", "L24/H1024/A16": "BERT-LARGE"}
PAPER_PRETRAIN_TOKENS = 256 * (900_000 * 128 + 100_000 * 512)
"""Tokens the paper's pre-training saw: 1M steps of 256 sequences, 90% at 128, 10% at 512 (A.2)."""
_GOOGLE_BERT = re.compile(r"(^|[/:])bert-(base|large)-(un)?cased$")


def scale_class(
    layers: int | None, hidden: int | None, heads: int | None, init: str, tokens: float | None
) -> str:
    """What a system may be compared with: a paper size, ``compact: ...`` or ``external weights``.

    A paper size needs the paper's shape *and* its pre-training (Google's released weights, or
    ours at the paper's token count); anything less is a different experiment, never a Δ.
    """
    if layers is None or hidden is None:
        return ""
    shape = f"L{layers}/H{hidden}/A{heads}"
    if init == "random":
        return f"compact: L{layers}/H{hidden}, no pre-training"
    if init.startswith("pretrain:"):
        if (tokens or 0) >= PAPER_PRETRAIN_TOKENS:
            return PAPER_SIZES.get(shape, f"paper pre-training: {shape}")
        return f"compact: L{layers}/H{hidden}, {token_amount(tokens)} tokens seen"
    if shape in PAPER_SIZES and _GOOGLE_BERT.search(init):
        return PAPER_SIZES[shape]
    return f"external weights: {init}"


def token_amount(tokens: float | None) -> str:
    """``0.8M``, ``42.6B``: one unit per order of magnitude that pre-training runs differ in."""
    if tokens is None or not _finite(tokens):
        return "unknown"
    return f"{tokens / 1e9:.1f}B" if tokens >= 1e9 else f"{tokens / 1e6:.1f}M"


def _init(record: dict[str, Any]) -> str:
    """Where the weights came from: our pre-training run, external weights, or random init."""
    if record.get("stage") == "pretrain":
        return f"pretrain:{record.get('run_id', '')}"
    model = record.get("model") or {}
    ours = (model.get("pretraining") or {}).get("run_id")
    if ours:
        return f"pretrain:{ours}"
    return model.get("pretrained") or ("random" if model else "")


def _pretraining(record: dict[str, Any], key: str) -> Any:
    """A pre-training setting: the pretrain record's own, or the one its fine-tunes carry.

    Contract for the pre-training stage: pretrain records put ``objective`` and ``masking`` in
    their config; fine-tune records of our checkpoints carry ``model.pretraining`` with
    ``run_id``, ``objective``, ``masking`` and ``tokens_seen``.
    """
    if record.get("stage") == "pretrain":
        if key in record:
            return record[key]
        config = record.get("config") or {}
        return config.get(key, (config.get("pretrain") or {}).get(key))
    return ((record.get("model") or {}).get("pretraining") or {}).get(key)


def _masking_label(masking: Any) -> str:
    """Table 8's row name for a masking mix, e.g. ``MASK 80% SAME 10% RND 10%``."""
    if not isinstance(masking, dict):
        return ""
    parts = (("MASK", "mask"), ("SAME", "keep"), ("RND", "random"))
    return " ".join(f"{name} {round(100 * masking.get(key, 0.0))}%" for name, key in parts)


def _data_regime(data: dict[str, Any]) -> str:
    if not data:
        return ""
    if data.get("source") == "sample":
        return "shipped sample"
    return "subsampled" if data.get("subsampled") else "full"


RUN_COLUMNS: tuple[str, ...] = tuple(_run_row({}))
"""The columns of :func:`runs_frame` before the metrics (also those of an empty store)."""


def setup_hash(config: dict[str, Any], weights_sha256: str | None = None) -> str:
    """Hash of the science config without lr, seed and the data's location: one lr sweep. The
    starting weights' sha256 tells apart sweeps from different weights under one path."""
    science = with_weights(science_config(config), identified_weights(config, weights_sha256))
    for path in _NOT_SETUP:
        science = _drop(science, path)
    return config_hash(science, 8)


def _drop(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``tree`` without the key at ``path``; unchanged when the path is absent."""
    head, *rest = path
    if not rest:
        return {k: v for k, v in tree.items() if k != head}
    if not isinstance(tree.get(head), dict):
        return tree
    return {**tree, head: _drop(tree[head], tuple(rest))}


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The metric keys present in a runs frame (without the column prefix)."""
    return [c[len(METRIC_PREFIX) :] for c in runs.columns if c.startswith(METRIC_PREFIX)]


def seed_stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample std (ddof=1; NaN for one seed), median and n of the finite values."""
    series = pd.Series(values, dtype=float).dropna()
    n = len(series)
    return {
        "mean": series.mean() if n else math.nan,
        "std": series.std(ddof=1) if n > 1 else math.nan,
        "median": series.median() if n else math.nan,
        "n": n,
    }


def best_lr(runs: pd.DataFrame, metric: str) -> float | None:
    """The lr whose mean over seeds of ``metric`` is best (ties: more seeds, then lower lr).

    ``runs`` is one group's complete runs; None when no run has the metric.
    """
    column = METRIC_PREFIX + metric
    if column not in runs or runs[column].isna().all():
        return None
    by_lr = runs.groupby("lr")[column].agg(["mean", "count"]).dropna()
    sign = 1 if higher_is_better(metric) else -1
    by_lr = by_lr.assign(score=sign * by_lr["mean"]).reset_index()
    best = by_lr.sort_values(["score", "count", "lr"], ascending=[False, False, True]).iloc[0]
    return float(best["lr"])


SUMMARY_COLUMNS: tuple[str, ...] = (
    *GROUP_KEYS,
    "metric",
    "selected_by",
    "best_lr",
    "mean",
    "std",
    "median",
    "n",
    "seeds",
    "lrs",
    "n_lrs",
    "degenerate",
    "n_runs",
    "n_complete",
    "n_incomplete",
    "status",
    "problems",
    "train_examples",
    "protocol",
    "params",
    "pretrain_tokens",
)


def summarize(runs: pd.DataFrame, exclude_degenerate: bool = False) -> pd.DataFrame:
    """One row per (group, metric): the lr chosen on the headline dev metric, seed statistics.

    Every metric of the group is reported at that one lr (MNLI-mm at the lr MNLI-m chose, MRPC
    accuracy at the lr F1 chose). A group without a complete run keeps one row, NaN statistics
    and ``status`` saying why. ``degenerate`` says how many runs at that lr predict a constant;
    ``exclude_degenerate`` leaves such runs out of the statistics (listed under ``problems``).
    """
    rows = []
    if runs.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    if exclude_degenerate:
        flagged = runs["ok"] & runs["degenerate"].astype(bool)
        runs = runs.assign(
            ok=runs["ok"] & ~flagged,
            status=runs["status"].where(~flagged, "degenerate"),
            problem=runs["problem"].where(~flagged, runs["degenerate"]),
        )
    for keys, group in runs.groupby(list(GROUP_KEYS), sort=True, dropna=False):
        base = dict(zip(GROUP_KEYS, keys, strict=True))
        ok = group[group["ok"]]
        bad = group[~group["ok"]]
        headline = _most_common(group["headline_metric"])
        lr = best_lr(ok, headline) if headline else None
        common = {
            **base,
            "selected_by": headline,
            "best_lr": lr,
            "lrs": ",".join(f"{v:g}" for v in sorted(group["lr"].dropna().unique())),
            "n_lrs": ok["lr"].nunique(),
            "n_runs": len(group),
            "n_complete": len(ok),
            "n_incomplete": int((group["status"] == "partial").sum()),
            "problems": "; ".join(
                f"{r.run_id} ({r.status}): {r.problem}" for r in bad.itertuples()
            ),
            "train_examples": _first(group["train_examples"]),
            "protocol": _first(group["protocol"].replace("", None)) or "",
            "params": _first(group["params"]),
            "pretrain_tokens": _first(group["pretrain_tokens"]),
        }
        left_out = ", ".join(f"{n} {s}" for s, n in sorted(bad["status"].value_counts().items()))
        if lr is None:
            status = f"no complete run ({left_out})" if ok.empty else f"no finite {headline}"
            rows.append({**common, "metric": headline, **seed_stats([]), "status": status})
            continue
        at_lr = ok[ok["lr"] == lr]
        flags = at_lr["degenerate"][at_lr["degenerate"].astype(bool)]
        degenerate = f"{len(flags)} of {len(at_lr)}: {flags.iloc[0]}" if len(flags) else ""
        for metric in metric_columns(ok):
            values = at_lr[METRIC_PREFIX + metric]
            if values.isna().all():
                continue
            stats = seed_stats(values.tolist())
            seeds = at_lr.loc[values.notna(), "seed"]
            rows.append(
                {
                    **common,
                    "metric": metric,
                    **stats,
                    "seeds": ",".join(f"{s:g}" for s in sorted(seeds)),
                    "degenerate": degenerate,
                    "status": "ok" if bad.empty else f"ok; left out: {left_out}",
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def sweep_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Per group, lr and metric: seed statistics of the complete runs, and the chosen lr marked."""
    ok = runs[runs["ok"]] if not runs.empty else runs
    rows = []
    for keys, group in ok.groupby(list(GROUP_KEYS), sort=True, dropna=False):
        base = dict(zip(GROUP_KEYS, keys, strict=True))
        headline = _most_common(group["headline_metric"])
        chosen = best_lr(group, headline)
        for metric in metric_columns(group):
            for lr, at_lr in group.groupby("lr"):
                values = at_lr[METRIC_PREFIX + metric].dropna()
                if values.empty:
                    continue
                rows.append(
                    {
                        **base,
                        "metric": metric,
                        "headline": metric == headline,
                        "lr": lr,
                        **seed_stats(values.tolist()),
                        "best": lr == chosen,
                    }
                )
    columns = [*GROUP_KEYS, "metric", "headline", "lr", "mean", "std", "median", "n", "best"]
    return pd.DataFrame(rows, columns=columns)


_POSITION = ("epoch", "step", "tokens_seen")


def history_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Learning curves from each record's ``history`` (its dev evaluations), long form.

    Each point keeps its epoch, optimizer step and tokens seen: fine-tuning is plotted per epoch,
    pre-training (one pass over a stream, evaluated every N steps) per step or token, each of its
    phases (sequence lengths, scored on their own held-out sets) apart.
    """
    rows = []
    for record in records:
        for entry in record.get("history") or []:
            for metric, value in entry.items():
                if metric in (*_POSITION, "phase") or not _finite(value):
                    continue
                rows.append(
                    {
                        "run_id": record.get("run_id", ""),
                        "stage": record.get("stage", ""),
                        "task": record.get("task", ""),
                        "experiment": record.get("experiment", ""),
                        "status": record.get("status", ""),
                        "seed": record.get("seed"),
                        "lr": record.get("lr"),
                        **{key: entry.get(key) for key in _POSITION},
                        "phase": entry.get("phase", 1),
                        "metric": metric,
                        "value": float(value),
                    }
                )
    columns = ["run_id", "stage", "task", "experiment", "status", "seed", "lr", *_POSITION, "phase"]
    return pd.DataFrame(rows, columns=[*columns, "metric", "value"])


def pending_runs(runs_dir: str | Path) -> pd.DataFrame:
    """Run dirs (``runs/<task>/<name>-<id>/``) with no record.json: still running, or crashed.

    Such runs never reach the results store, so this is the only place they can be seen.
    """
    rows = []
    for run_dir in sorted(Path(runs_dir).glob("*/*-*/")):
        if (run_dir / "record.json").exists():
            continue
        log = run_dir / "train_log.jsonl"
        last_step = None
        if log.is_file():
            lines = log.read_text().splitlines()
            for line in reversed(lines):
                try:
                    last_step = json.loads(line).get("step")
                except (ValueError, AttributeError):
                    continue
                if last_step is not None:
                    break
        rows.append(
            {
                "task": run_dir.parent.name,
                "run_dir": str(run_dir),
                "run_id": run_dir.name.rpartition("-")[2],
                "status": "no record (running or crashed)",
                "last_logged_step": last_step,
            }
        )
    return pd.DataFrame(rows, columns=["task", "run_dir", "run_id", "status", "last_logged_step"])


def _most_common(values: pd.Series) -> str:
    values = values[values.astype(bool)] if not values.empty else values
    return "" if values.empty else str(values.mode().iloc[0])


def _first(values: pd.Series) -> Any:
    values = values.dropna()
    return values.iloc[0] if not values.empty else None

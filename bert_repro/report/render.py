"""Compared tables as a reader sees them: the wide layout, each cell's text, Markdown.

Kept apart from :mod:`bert_repro.report.compare`, which decides what is compared; this module only
says it: values as the paper prints them, ours with seeds and recipe notes, ⚠ on degenerate cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pandas as pd

from bert_repro.paper.tables import TABLE_TITLES, WNLI_MAJORITY_TEST
from bert_repro.report.baselines import baseline
from bert_repro.report.compare import NO_ROW, SHADOWED, SOURCES

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
    """The printed layout of one compared table: per paper row, the paper, each system, Δ.

    Values are strings ready for Markdown: ours as ``mean ± std (n; recipe notes)``, ⚠ on a
    degenerate cell, a Δ line only where some cell is like for like, and last the constant
    predictor's dev score.
    """
    triples = zip(long["column"], long["metric"], long["paper_split"], strict=True)
    keys = list(dict.fromkeys(triples))
    headers = [column_header(*key) for key in keys]
    lines: list[tuple[str, str, dict[str, str]]] = []
    for paper_row, block in long.groupby("paper_row", sort=False):
        if paper_row != NO_ROW:
            paper = {
                column_header(r.column, r.metric, r.paper_split): format_value(
                    r.paper_value, r.metric
                )
                for r in block.drop_duplicates(["column", "metric", "paper_split"]).itertuples()
            }
            compared = block["like_for_like"].all() or (block["system"] == "").all()
            lines.append((f"paper: {paper_row}{'' if compared else ' (reference)'}", "", paper))
            if (block["system"] == "").all():
                lines.append(("ours: no run", "dev", dict.fromkeys(paper, "—")))
        for system, cells in block[block["system"] != ""].groupby("system", sort=True):
            ours, delta = {}, {}
            for r in cells.itertuples():
                if r.status == SHADOWED:
                    continue
                header = column_header(r.column, r.metric, r.paper_split)
                ours[header] = cell_text(r)
                delta[header] = "—" if math.isnan(r.diff) else f"{r.diff:+.1f}"
            name = f"ours {system}" + ("" if paper_row != NO_ROW else f": {NO_ROW}")
            lines.append((name, "dev", ours))
            if cells["diff"].notna().any():
                lines.append((f"Δ ours {system} − paper", "", delta))
    constant = {
        column_header(c, m, s): format_value(baseline(c, m), m)
        for c, m, s in keys
        if m != "glue_average" and not (s == "test" and (c, m, "dev") in keys)
    }
    if any(v != "—" for v in constant.values()):
        lines.append(("constant predictor (majority class)", "dev", constant))
    return pd.DataFrame(
        [
            {"row": name, "split": split, **{h: v.get(h, "") for h in headers}}
            for name, split, v in lines
        ],
        columns=["row", "split", *headers],
    )


def cell_text(cell: Any) -> str:
    """``81.2 ± 0.4 (n=3; 1 ep; 1 lr) ⚠ degenerate`` for one row of a compared table."""
    if math.isnan(cell.ours_mean):
        return "—"
    spread = "" if math.isnan(cell.ours_std) else f" ± {format_value(cell.ours_std, cell.metric)}"
    notes = [] if math.isnan(cell.ours_n) else [f"n={int(cell.ours_n)}"]
    notes += [cell.ours_recipe] if cell.ours_recipe else []
    flag = " ⚠ degenerate" if cell.ours_flag else ""
    bracket = f" ({'; '.join(notes)})" if notes else ""
    return f"{format_value(cell.ours_mean, cell.metric)}{spread}{bracket}{flag}"


def markdown(frame: pd.DataFrame) -> str:
    """A plain GitHub Markdown table (no tabulate dependency); pipes in cells are escaped."""
    cells = frame.astype(str).map(lambda v: v.replace("|", "\\|"))
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def table_markdown(table: str, long: pd.DataFrame, systems: pd.DataFrame) -> str:
    """One table's Markdown: title, the wide view, and the labels saying what is compared."""
    title = long["title"].iloc[0] if not long.empty else f"Table {table}: {TABLE_TITLES[table]}"
    lines = [f"### {title}", "", markdown(wide_table(long)), ""]
    splits = sorted(set(long["paper_split"]))
    lines.append(
        f"Paper cells: the paper's {' and '.join(splits)} split, as in each column's brackets. "
        "Ours: dev, mean ± sample std over seeds at the learning rate chosen on dev; in brackets "
        "n = seeds, then where the cell departs from the paper's recipe: `k ep` = epochs (recipe: "
        "3, SQuAD 2.0: 2), `k lr` = learning rates tried (the paper picks the best of 4 on dev; "
        "1 lr is no choice), `lr x` = not the paper's fixed lr, `N train ex` = subsampled "
        "training set, `dev article split` = SQuAD fine-tuned on some dev articles and scored on "
        "the others. — = no result."
    )
    lines.append(
        "Δ only where like for like: the paper's scale and pre-training, its dev split, full "
        "fine-tuning data. Constant predictor: the majority class of the task's full dev labels "
        "('no answer' for SQuAD), as a floor for every cell; — for STS-B (a constant has no "
        "correlation) and where the dev labels were not at hand (MNLI, QQP, SWAG)."
    )
    if "test" in splits and "dev" not in splits:
        lines.append(
            "**The paper's numbers here are TEST (GLUE evaluation server), ours are DEV: "
            "no Δ is computed.**"
        )
    if table == "1":
        lines.append(
            "WNLI, as the paper treats it (Appendix B.1): no column and not in the Average; the "
            f"paper submitted the majority class, {WNLI_MAJORITY_TEST:.1f} on test. That "
            "predictor (the training set's majority class, not_entailment, also dev's) scores "
            f"{format_value(baseline('wnli', 'accuracy'), 'accuracy')} on dev."
        )
    detailed = long[long["ours_details"].astype(bool)]
    if not detailed.empty:
        lines += ["", "How our cells arose (the same runs, mean ± std over seeds):"]
        lines += [
            f"- **{r.system}** {COLUMN_NAMES.get(r.column, r.column)}: {r.ours_details}"
            for r in detailed.itertuples()
        ]
    flagged = long[long["ours_flag"].astype(bool)].drop_duplicates(["system", "ours_flag"])
    if not flagged.empty:
        lines += ["", "⚠ Degenerate (a constant predictor, not a result):"]
        lines += [f"- **{r.system}** {r.column}: {r.ours_flag}" for r in flagged.itertuples()]
    shown = [s for s in dict.fromkeys(long["system"]) if s]
    if shown:
        lines += ["", "Our systems:"]
        for system in systems[systems["system"].isin(shown)].itertuples():
            cells = long[(long["system"] == system.system) & long["ours_n"].notna()]
            data = ", ".join(sorted(set(cells["ours_data"]) - {""})) or "no result yet"
            lines.append(f"- **{system.system}**: {system.label}; data: {data}")
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

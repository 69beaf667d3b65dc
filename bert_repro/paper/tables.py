"""The BERT paper's result tables as data, so our numbers can be put beside the paper's.

Source: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", arXiv:1810.04805v2 (= NAACL-HLT 2019), transcribed from the verified
``shared/reference/paper_numbers.md``. This module is the single source of truth for those numbers.

Every printed number is one :class:`PaperCell` carrying its table, row (system), column (task),
metric and split. Cells the paper leaves blank ("-") are absent, never zero. The split matters:
Table 1 is GLUE *test* (evaluation server) while our GLUE runs are dev, so a comparison must say
which is which; SQuAD, SWAG and NER give both, and the ablations (Tables 5, 6, 8) are dev only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Literal

import pandas as pd

Split = Literal["dev", "test"]

PAPER = "Devlin et al. 2019, BERT, arXiv:1810.04805v2 (NAACL-HLT 2019)"

GLUE_HEADLINE_METRICS: Mapping[str, str] = MappingProxyType(
    {
        "cola": "matthews_corr",
        "sst2": "accuracy",
        "mrpc": "f1",
        "stsb": "spearman",
        "qqp": "f1",
        "mnli_m": "accuracy",
        "mnli_mm": "accuracy",
        "qnli": "accuracy",
        "rte": "accuracy",
        "wnli": "accuracy",
    }
)
"""Metric the paper reports per GLUE task (Table 1 caption); our GLUE results use these names.

CoLA's metric is not named in the caption; Matthews correlation is what the GLUE server reports.
"""

GLUE_AVERAGE_TASKS: tuple[str, ...] = (
    "mnli_m",
    "mnli_mm",
    "qqp",
    "qnli",
    "sst2",
    "cola",
    "stsb",
    "mrpc",
    "rte",
)
"""The nine Table 1 columns that enter its "Average", in the paper's column order (no WNLI)."""

WNLI_MAJORITY_TEST = 65.1
"""WNLI test accuracy of predicting the majority class, what the paper submitted (Appendix B.1:
"every trained system ... has performed worse than the 65.1 baseline accuracy of predicting the
majority class ... we always predicted the majority class"). Not a Table 1 column."""

TABLE_TITLES: Mapping[str, str] = MappingProxyType(
    {
        "1": "GLUE test results (evaluation server)",
        "2": "SQuAD v1.1 results (leaderboard Dec 10th, 2018)",
        "3": "SQuAD v2.0 results (leaderboard Dec 10th, 2018)",
        "4": "SWAG dev and test accuracies",
        "5": "Ablation over the pre-training tasks (BERT-BASE, dev)",
        "6": "Ablation over BERT model size (dev, mean of 5 fine-tuning restarts)",
        "7": "CoNLL-2003 named entity recognition (mean of 5 restarts)",
        "8": "Ablation over masking strategies (Appendix C.2, dev)",
    }
)
"""Table id -> short title; the ids are the keys accepted by :func:`paper_cells`."""


@dataclass(frozen=True)
class PaperCell:
    """One printed number of the paper, with everything needed to compare it like for like."""

    table: str
    row: str
    column: str
    value: float
    metric: str
    split: Split
    note: str = ""


@dataclass(frozen=True)
class _Col:
    column: str
    metric: str
    split: Split
    note: str = ""


_Row = tuple[str, Sequence[float | None], str]  # (row name, one value per column or None, note)


def _table(table: str, cols: Sequence[_Col], rows: Sequence[_Row]) -> tuple[PaperCell, ...]:
    """Expand a printed grid into cells, dropping the paper's blanks (None)."""
    cells = []
    for row, values, row_note in rows:
        for col, value in zip(cols, values, strict=True):
            if value is None:
                continue
            note = "; ".join(n for n in (col.note, row_note) if n)
            cells.append(PaperCell(table, row, col.column, value, col.metric, col.split, note))
    return tuple(cells)


_COLA_NOTE = "caption names no CoLA metric; Matthews corr. is the GLUE server's"
_AVERAGE_NOTE = "unweighted mean of the 9 task columns, MNLI-m and -mm separately, WNLI excluded"

_COLUMNS: dict[str, tuple[_Col, ...]] = {
    "1": (
        *(
            _Col(t, GLUE_HEADLINE_METRICS[t], "test", _COLA_NOTE if t == "cola" else "")
            for t in GLUE_AVERAGE_TASKS
        ),
        _Col("average", "glue_average", "test", _AVERAGE_NOTE),
    ),
    "2": (
        _Col("squad_v1", "exact_match", "dev"),
        _Col("squad_v1", "f1", "dev"),
        _Col("squad_v1", "exact_match", "test"),
        _Col("squad_v1", "f1", "test"),
    ),
    "3": (
        _Col("squad_v2", "exact_match", "dev"),
        _Col("squad_v2", "f1", "dev"),
        _Col("squad_v2", "exact_match", "test"),
        _Col("squad_v2", "f1", "test"),
    ),
    "4": (_Col("swag", "accuracy", "dev"), _Col("swag", "accuracy", "test")),
    "5": (
        _Col("mnli_m", "accuracy", "dev"),
        _Col("qnli", "accuracy", "dev"),
        _Col("mrpc", "accuracy", "dev", "MRPC accuracy here, not the F1 of Table 1"),
        _Col("sst2", "accuracy", "dev"),
        _Col("squad_v1", "f1", "dev"),
    ),
    "6": (
        _Col("masked_lm", "perplexity", "dev", "masked LM perplexity of held-out training data"),
        _Col("mnli_m", "accuracy", "dev"),
        _Col("mrpc", "accuracy", "dev", "MRPC accuracy here, not the F1 of Table 1"),
        _Col("sst2", "accuracy", "dev"),
    ),
    "7": (_Col("conll2003_ner", "f1", "dev"), _Col("conll2003_ner", "f1", "test")),
    "8": (
        _Col("mnli_m", "accuracy", "dev", "header says 'MNLI Fine-tune'; read as MNLI-m"),
        _Col("conll2003_ner", "f1", "dev", "fine-tuning"),
        _Col(
            "conll2003_ner_feature_based",
            "f1",
            "dev",
            "feature-based, concatenation of the last 4 layers",
        ),
    ),
}

_LEADERBOARD = "SQuAD leaderboard, Dec 10th 2018"
_OURS = "the paper's own system"

_ROWS: dict[str, tuple[_Row, ...]] = {
    "1": (
        ("Pre-OpenAI SOTA", (80.6, 80.1, 66.1, 82.3, 93.2, 35.0, 81.0, 86.0, 61.7, 74.0), ""),
        (
            "BiLSTM+ELMo+Attn",
            (76.4, 76.1, 64.8, 79.8, 90.4, 36.0, 73.3, 84.9, 56.8, 71.0),
            "printed Average 71.0, mean of the printed cells 70.94",
        ),
        ("OpenAI GPT", (82.1, 81.4, 70.3, 87.4, 91.3, 45.4, 80.0, 82.3, 56.0, 75.1), ""),
        ("BERT-BASE", (84.6, 83.4, 71.2, 90.5, 93.5, 52.1, 85.8, 88.9, 66.4, 79.6), _OURS),
        ("BERT-LARGE", (86.7, 85.9, 72.1, 92.7, 94.9, 60.5, 86.5, 89.3, 70.1, 82.1), _OURS),
    ),
    "2": (
        ("Human", (None, None, 82.3, 91.2), _LEADERBOARD),
        ("#1 Ensemble - nlnet", (None, None, 86.0, 91.7), _LEADERBOARD),
        ("#2 Ensemble - QANet", (None, None, 84.5, 90.5), _LEADERBOARD),
        ("BiDAF+ELMo (Single)", (None, 85.6, None, 85.8), "published"),
        ("R.M. Reader (Ensemble)", (81.2, 87.9, 82.3, 88.5), "published"),
        ("BERT-BASE (Single)", (80.8, 88.5, None, None), _OURS),
        ("BERT-LARGE (Single)", (84.1, 90.9, None, None), _OURS),
        ("BERT-LARGE (Ensemble)", (85.8, 91.8, None, None), f"{_OURS}; 7 systems"),
        ("BERT-LARGE (Sgl.+TriviaQA)", (84.2, 91.1, 85.1, 91.8), f"{_OURS}; +TriviaQA data"),
        ("BERT-LARGE (Ens.+TriviaQA)", (86.2, 92.2, 87.4, 93.2), f"{_OURS}; +TriviaQA data"),
    ),
    "3": (
        ("Human", (86.3, 89.0, 86.9, 89.5), _LEADERBOARD),
        ("#1 Single - MIR-MRC (F-Net)", (None, None, 74.8, 78.0), _LEADERBOARD),
        ("#2 Single - nlnet", (None, None, 74.2, 77.1), _LEADERBOARD),
        ("unet (Ensemble)", (None, None, 71.4, 74.9), "published"),
        ("SLQA+ (Single)", (None, None, 71.4, 74.4), "published"),
        ("BERT-LARGE (Single)", (78.7, 81.9, 80.0, 83.1), _OURS),
    ),
    "4": (
        ("ESIM+GloVe", (51.9, 52.7), ""),
        ("ESIM+ELMo", (59.1, 59.2), ""),
        ("OpenAI GPT", (None, 78.0), ""),
        ("BERT-BASE", (81.6, None), _OURS),
        ("BERT-LARGE", (86.6, 86.3), _OURS),
        ("Human (expert)", (None, 85.0), "100 samples, from the SWAG paper"),
        ("Human (5 annotations)", (None, 88.0), "100 samples, from the SWAG paper"),
    ),
    "5": (
        ("BERT-BASE", (84.4, 88.4, 86.7, 92.7, 88.5), "masked LM + NSP"),
        ("No NSP", (83.9, 84.9, 86.5, 92.6, 87.9), "masked LM, no NSP"),
        ("LTR & No NSP", (82.1, 84.3, 77.5, 92.1, 77.8), "left-to-right LM, no NSP"),
        ("+ BiLSTM", (82.1, 84.1, 75.7, 91.6, 84.9), "LTR & No NSP + BiLSTM at fine-tuning"),
    ),
    "6": (
        ("L=3 H=768 A=12", (5.84, 77.9, 79.8, 88.4), ""),
        ("L=6 H=768 A=3", (5.24, 80.6, 82.2, 90.7), ""),
        ("L=6 H=768 A=12", (4.68, 81.9, 84.8, 91.3), ""),
        ("L=12 H=768 A=12", (3.99, 84.4, 86.7, 92.9), "BERT-BASE"),
        ("L=12 H=1024 A=16", (3.54, 85.7, 86.9, 93.3), ""),
        ("L=24 H=1024 A=16", (3.23, 86.6, 87.8, 93.7), "BERT-LARGE"),
    ),
    "7": (
        ("ELMo", (95.7, 92.2), "Peters et al. 2018a"),
        ("CVT", (None, 92.6), "Clark et al. 2018"),
        ("CSE", (None, 93.1), "Akbik et al. 2018"),
        ("BERT-LARGE", (96.6, 92.8), f"{_OURS}; fine-tuning"),
        ("BERT-BASE", (96.4, 92.4), f"{_OURS}; fine-tuning"),
        ("Feature-based: Embeddings", (91.0, None), "BERT-BASE features"),
        ("Feature-based: Second-to-Last Hidden", (95.6, None), "BERT-BASE features"),
        ("Feature-based: Last Hidden", (94.9, None), "BERT-BASE features"),
        ("Feature-based: Weighted Sum Last Four Hidden", (95.9, None), "BERT-BASE features"),
        ("Feature-based: Concat Last Four Hidden", (96.1, None), "BERT-BASE features"),
        ("Feature-based: Weighted Sum All 12 Layers", (95.5, None), "BERT-BASE features"),
    ),
    "8": (
        ("MASK 80% SAME 10% RND 10%", (84.2, 95.4, 94.9), "BERT default"),
        ("MASK 100% SAME 0% RND 0%", (84.3, 94.9, 94.0), ""),
        ("MASK 80% SAME 0% RND 20%", (84.1, 95.2, 94.6), ""),
        ("MASK 80% SAME 20% RND 0%", (84.4, 95.2, 94.7), ""),
        ("MASK 0% SAME 20% RND 80%", (83.7, 94.8, 94.6), ""),
        ("MASK 0% SAME 0% RND 100%", (83.6, 94.9, 94.6), ""),
    ),
}

_CELLS: dict[str, tuple[PaperCell, ...]] = {t: _table(t, _COLUMNS[t], _ROWS[t]) for t in _ROWS}
_FIELDS = [f.name for f in fields(PaperCell)]


def _check_table(table: str) -> None:
    if table not in _CELLS:
        raise ValueError(f"unknown paper table {table!r}; known: {', '.join(_CELLS)}")


def paper_cells(table: str | None = None) -> list[PaperCell]:
    """All cells of one table ("1".."8"), or of every table, in the paper's row-major order."""
    if table is None:
        return [cell for cells in _CELLS.values() for cell in cells]
    _check_table(table)
    return list(_CELLS[table])


def paper_cell(
    table: str, row: str, column: str, *, metric: str | None = None, split: Split | None = None
) -> PaperCell:
    """The one cell matching the keys; metric/split are needed only where the column has several.

    Raises KeyError when nothing or more than one cell matches, so a comparison never silently
    picks the wrong split or metric.
    """
    found = [
        c
        for c in paper_cells(table)
        if c.row == row
        and c.column == column
        and metric in (None, c.metric)
        and split in (None, c.split)
    ]
    if len(found) != 1:
        keys = f"table={table} row={row!r} column={column!r} metric={metric} split={split}"
        raise KeyError(f"{len(found)} paper cells match {keys}")
    return found[0]


def paper_frame(table: str | None = None, *, wide: bool = False) -> pd.DataFrame:
    """The cells as a DataFrame for notebooks: long (one row per cell) or, for one table, wide.

    The wide form is the printed layout: one row per system, columns (column, metric, split),
    NaN where the paper has a blank.
    """
    cells = paper_cells(table)
    long = pd.DataFrame([asdict(c) for c in cells], columns=_FIELDS)
    if not wide:
        return long
    if table is None:
        raise ValueError("wide=True needs one table: different tables' rows do not line up")
    keys = ["column", "metric", "split"]
    cols = pd.MultiIndex.from_tuples(
        [(c.column, c.metric, c.split) for c in _COLUMNS[table]], names=keys
    )
    grid = long.pivot(index="row", columns=keys, values="value")
    return grid.reindex(index=[r[0] for r in _ROWS[table]], columns=cols)


def glue_average(scores: Mapping[str, float]) -> float:
    """Table 1's "Average" (section 4.1, Table 1 caption): plain mean of nine task scores.

    MNLI-m and MNLI-mm count as two tasks and WNLI is excluded (Appendix B.1: no system beat its
    majority baseline), so this is not the official GLUE score (80.5 for BERT-LARGE, with WNLI).
    ``scores`` maps the keys of :data:`GLUE_AVERAGE_TASKS` to scores in the headline metrics of
    :data:`GLUE_HEADLINE_METRICS`; other keys (e.g. ``wnli``) are ignored.
    """
    missing = [t for t in GLUE_AVERAGE_TASKS if t not in scores]
    if missing:
        raise KeyError(f"glue_average needs all of {GLUE_AVERAGE_TASKS}; missing {missing}")
    return sum(scores[t] for t in GLUE_AVERAGE_TASKS) / len(GLUE_AVERAGE_TASKS)

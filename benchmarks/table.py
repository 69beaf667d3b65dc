"""The results table: one row per comparison, ours against a reference, with their ratio."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TIE_TOLERANCE = 0.02  # ratios within 2% of 1 are reported as a tie


@dataclass(frozen=True)
class Row:
    """`ours` and `ref` are summaries from `stats.summarize` (a single value has n = 1).

    `higher_is_better` picks the winner column; None where "better" means nothing (a fraction
    of the hardware peak, memory at two corpus sizes).
    """

    part: str
    case: str
    metric: str
    ours: dict[str, float]
    reference: str
    ref: dict[str, float]
    higher_is_better: bool | None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours["median"] / self.ref["median"]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "better": better(self)}


def single(value: float) -> dict[str, float]:
    """A one-off measurement in the summary shape."""
    return {"median": value, "min": value, "max": value, "q1": value, "q3": value, "n": 1}


def better(row: Row) -> str:
    """'ours', 'ref', 'tie', or '' when the row has no direction."""
    if row.higher_is_better is None:
        return ""
    if abs(row.ratio - 1.0) <= TIE_TOLERANCE:
        return "tie"
    return "ours" if (row.ratio > 1.0) == row.higher_is_better else "ref"


def fmt(value: float) -> str:
    """Three significant figures, without exponents in the range benchmarks produce."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def fmt_summary(summary: dict[str, float]) -> str:
    """`median [min-max]`, or the bare value for a one-off measurement."""
    if summary["n"] <= 1:
        return fmt(summary["median"])
    return f"{fmt(summary['median'])} [{fmt(summary['min'])}–{fmt(summary['max'])}]"


COLUMNS = ("part", "case", "metric", "ours", "reference", "ref", "ours/ref", "better", "note")


def markdown(rows: list[Row]) -> str:
    """A GitHub-markdown table of the rows (values: median [min–max] over repetitions)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = (
            row.part,
            row.case,
            row.metric,
            fmt_summary(row.ours),
            row.reference,
            fmt_summary(row.ref),
            f"{row.ratio:.2f}",
            better(row),
            row.note,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

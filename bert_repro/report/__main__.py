"""``python -m bert_repro.report``: write the comparison tables, optionally refresh the README."""

from __future__ import annotations

import argparse
from pathlib import Path

from bert_repro.report import build_report, update_readme, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bert_repro.report",
        description="Aggregate results/ the paper's way and compare it with the paper's tables.",
    )
    parser.add_argument(
        "--results", default="results", help="the results store (default: %(default)s)"
    )
    parser.add_argument("--out", default=None, help="where tables go (default: <results>/tables)")
    parser.add_argument(
        "--runs",
        default="runs",
        help="run dirs, to list runs that never wrote a record ('' to skip; default: %(default)s)",
    )
    parser.add_argument("--readme", default=None, help="also replace this README's results section")
    parser.add_argument(
        "--exclude-degenerate",
        action="store_true",
        help="leave constant-predictor runs out of the statistics (default: count and mark them)",
    )
    args = parser.parse_args(argv)

    out = Path(args.out) if args.out else Path(args.results) / "tables"
    report = build_report(args.results, args.runs or None, args.exclude_degenerate)
    written = write_report(report, out)
    statuses = report.runs["status"].value_counts().to_dict() if not report.runs.empty else {}
    print(f"{len(report.records)} records in {args.results}: {statuses or 'none'}")
    if not report.pending.empty:
        print(f"{len(report.pending)} run dir(s) without a record (running or crashed)")
    problems = report.runs[~report.runs["ok"]] if not report.runs.empty else report.runs
    for row in problems.itertuples():
        print(f"  not in the statistics: {row.task}/{row.run_id} [{row.status}] {row.problem}")
    print(f"wrote {len(written)} files to {out}/")
    if args.readme:
        changed = update_readme(args.readme, out)
        print(f"{args.readme}: results section {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

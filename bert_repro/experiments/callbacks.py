"""Hydra callbacks: keep the comparison tables current when a sweep ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class RegenerateReport(Callback):
    """After a multirun, rebuild ``<results>/tables`` from the results store.

    Registered for every run (conf/config.yaml) but only multiruns call it. It is bookkeeping: a
    failure prints one line and never fails the sweep whose records are already safely written.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            from bert_repro.report import build_report, write_report

            results = Path(config.paths.results)
            report = build_report(results, config.paths.runs)
            written = write_report(report, results / "tables")
            print(
                f"report: {len(report.records)} records -> {len(written)} files in {results}/tables"
            )
        except Exception as err:  # any failure here must not fail the sweep
            print(f"report: tables not regenerated ({type(err).__name__}: {err})")

"""Reporting on a synthetic results store: best-lr selection, seed statistics, visibility of
failed runs, paper-vs-ours tables with split labels, the CLI and the README section."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bert_repro.paper.tables import GLUE_AVERAGE_TASKS, glue_average
from bert_repro.report import (
    build_report,
    history_frame,
    load_records,
    pending_runs,
    runs_frame,
    summarize,
    train_log_frame,
    update_readme,
)
from bert_repro.report.__main__ import main
from bert_repro.report.aggregate import METRIC_PREFIX, best_lr, seed_stats
from bert_repro.report.compare import SOURCES
from tests.report_fixtures import GLUE_BASE, LRS, SEEDS, make_record, score, write_synthetic_store

README = "# x\n\n## Results\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\n## Tests\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_synthetic_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def report(store: Path):
    return build_report(store, store.parent / "runs")


def _minilm(summary: pd.DataFrame, task: str, metric: str) -> pd.Series:
    rows = summary[
        (summary["task"] == task)
        & (summary["model"] == "minilm_l6")
        & (summary["metric"] == metric)
    ]
    assert len(rows) == 1, rows
    return rows.iloc[0]


@pytest.mark.parametrize("task", sorted(GLUE_BASE))
def test_best_lr_and_seed_statistics(report, task: str) -> None:
    headline = GLUE_BASE[task][0]
    row = _minilm(report.summary, task, headline)
    values = [score(task, 5e-5, s) for s in SEEDS]
    assert row["best_lr"] == 5e-5
    assert row["selected_by"] == headline
    assert row["n"] == len(SEEDS)
    assert row["mean"] == pytest.approx(sum(values) / 3)
    assert row["std"] == pytest.approx(pd.Series(values).std(ddof=1))
    assert row["median"] == pytest.approx(sorted(values)[1])
    assert row["seeds"] == "1,2,3"


def test_every_metric_is_reported_at_the_lr_the_headline_chose(report) -> None:
    mm = _minilm(report.summary, "mnli", "dev_mismatched/accuracy")
    assert mm["best_lr"] == 5e-5 and mm["selected_by"] == "dev_matched/accuracy"
    assert mm["mean"] == pytest.approx(score("mnli", 5e-5, 2) + 0.5)


def test_best_lr_uses_the_mean_over_seeds_not_the_best_seed() -> None:
    runs = pd.DataFrame(
        {"lr": [1e-5, 1e-5, 2e-5, 2e-5], METRIC_PREFIX + "f1": [99.0, 50.0, 80.0, 80.0]}
    )
    assert best_lr(runs, "f1") == 2e-5  # 1e-5 has the best single seed but mean 74.5


def test_best_lr_prefers_lower_perplexity_and_breaks_ties_by_seeds() -> None:
    runs = pd.DataFrame({"lr": [1e-4, 5e-4], METRIC_PREFIX + "perplexity": [4.0, 6.0]})
    assert best_lr(runs, "perplexity") == 1e-4
    tie = pd.DataFrame({"lr": [1e-5, 2e-5, 2e-5], METRIC_PREFIX + "accuracy": [80.0, 80.0, 80.0]})
    assert best_lr(tie, "accuracy") == 2e-5


def test_seed_stats_of_one_seed_has_no_std() -> None:
    stats = seed_stats([56.3])
    assert stats["n"] == 1 and stats["mean"] == 56.3 and math.isnan(stats["std"])
    assert seed_stats([])["n"] == 0 and math.isnan(seed_stats([])["mean"])


def test_partial_and_unreadable_runs_are_visible_not_counted(report) -> None:
    runs = report.runs
    statuses = dict(zip(runs["run_id"], runs["status"], strict=True))
    assert statuses["corrupt"] == "unreadable"
    partial = runs[runs["status"] == "partial"]
    assert len(partial) == 1 and "stopped at optimizer step" in partial.iloc[0]["problem"]
    rte = _minilm(report.summary, "rte", "accuracy")
    assert rte["n"] == 3 and rte["n_runs"] == 7 and rte["n_incomplete"] == 1
    assert "partial" in rte["status"] and partial.iloc[0]["run_id"] in rte["problems"]
    assert "3e-05" in rte["lrs"]  # the partial run's lr is listed though not selectable
    corrupt = report.summary[report.summary["problems"].str.contains("corrupt")]
    assert len(corrupt) == 1 and corrupt.iloc[0]["n"] == 0 and math.isnan(corrupt.iloc[0]["mean"])
    assert "no complete run" in corrupt.iloc[0]["status"]


def test_a_complete_record_without_its_headline_is_failed(tmp_path: Path) -> None:
    record = make_record("rte", lr=2e-5, seed=1, metrics={}, headline="accuracy")
    runs = runs_frame([record])
    assert runs.iloc[0]["status"] == "failed" and not runs.iloc[0]["ok"]
    summary = summarize(runs)
    assert len(summary) == 1 and summary.iloc[0]["n"] == 0


def test_runs_differing_in_more_than_lr_and_seed_are_separate_groups() -> None:
    base = {"metrics": {"accuracy": 70.0}, "headline": "accuracy"}
    a = make_record("rte", lr=2e-5, seed=1, **base)
    b = make_record("rte", lr=5e-5, seed=2, **base)
    c = make_record("rte", lr=2e-5, seed=1, **base)
    c["config"]["optim"]["warmup_ratio"] = 0.0
    c["run_id"] = "other-warmup"
    summary = summarize(runs_frame([a, b, c]))
    assert sorted(summary["n_runs"]) == [1, 2]


def test_table1_labels_splits_and_computes_the_average_as_the_paper(report) -> None:
    table = report.tables["1"]
    ours = table[table["ours_n"].notna()]
    assert not ours.empty
    assert set(ours["paper_split"]) == {"test"} and set(ours["ours_split"]) == {"dev"}
    assert ours["status"].str.contains("TEST").all() and ours["status"].str.contains("DEV").all()
    minilm = table[table["ours_scale"].str.startswith("minilm_l6")]
    means = minilm.set_index("column")["ours_mean"]
    expected = glue_average({t: means[t] for t in GLUE_AVERAGE_TASKS})
    assert means["average"] == pytest.approx(expected)
    average = minilm[minilm["column"] == "average"].iloc[0]
    assert average["diff"] == pytest.approx(expected - 79.6)
    mrpc = minilm[minilm["column"] == "mrpc"].iloc[0]
    assert mrpc["ours_mean"] == pytest.approx(score("mrpc", 5e-5, 2))
    assert mrpc["diff"] == pytest.approx(mrpc["ours_mean"] - 88.9)
    assert mrpc["ours_data"] == "full train set (1,000 train ex)"
    assert "22.7M params" in mrpc["ours_scale"] and "not pre-trained here" in mrpc["ours_scale"]
    assert mrpc["paper_scale"].startswith("L12/H768/A12, 110M params")


def test_missing_cells_are_nan_never_zero(report) -> None:
    table1 = report.tables["1"]
    large = table1[table1["paper_row"] == "BERT-LARGE"]
    assert len(large) == 10 and large["ours_mean"].isna().all()
    assert set(large["status"]) == {"no run"} and (large["system"] == "").all()
    # A system with MRPC only has no Table 1 average.
    tiny = table1[table1["ours_scale"].str.contains("pre-trained here (", regex=False)]
    assert tiny.set_index("column")["ours_mean"].notna().sum() == 1
    assert math.isnan(tiny.set_index("column").loc["average", "ours_mean"])
    for t in ("2", "3", "4", "7", "8"):
        assert report.tables[t]["ours_mean"].isna().all(), t
        assert not report.tables[t].empty


def test_every_compared_cell_carries_both_splits(report) -> None:
    for t, table in report.tables.items():
        assert table["paper_split"].isin(["dev", "test"]).all(), t
        assert (table["ours_split"] == "dev").all(), t
        compared = table[table["ours_n"].notna()]
        assert compared["diff"].notna().all(), t


def test_our_pretraining_fills_the_matching_table5_row(report) -> None:
    table5 = report.tables["5"]
    no_nsp = table5[(table5["paper_row"] == "No NSP") & (table5["column"] == "mrpc")].iloc[0]
    assert no_nsp["ours_mean"] == pytest.approx(67.0) and no_nsp["ours_n"] == 3
    assert "pre-trained here (mlm" in no_nsp["ours_scale"]
    bert = table5[table5["paper_row"] == "BERT-BASE"]
    assert bert["ours_mean"].isna().all()


def test_the_shipped_sample_is_never_compared(report) -> None:
    for table in report.tables.values():
        assert not table["ours_scale"].str.contains("random init").any()
    demo = report.summary[report.summary["data"] == "shipped sample"]
    assert len(demo) == 1 and demo.iloc[0]["mean"] == 55.0


def test_sources_name_record_metrics_of_the_paper_columns() -> None:
    mnli = SOURCES[("mnli_m", "accuracy")]
    assert (mnli.stage, mnli.task, mnli.metric) == ("finetune", "mnli", "dev_matched/accuracy")
    assert ("conll2003_ner", "f1") not in SOURCES  # NER is not reproduced: shown as missing


def test_learning_curves_come_from_history_and_an_optional_train_log(store: Path) -> None:
    records = load_records(store)
    history = history_frame(records)
    mrpc = history[(history["task"] == "mrpc") & (history["metric"] == "f1")]
    assert set(mrpc["epoch"]) == {1, 2, 3}
    demo = next(r for r in records if r.get("experiment") == "default")
    log = train_log_frame(demo)
    assert list(log["step"]) == list(range(1, 11)) and "loss" in log
    elsewhere = next(r for r in records if r.get("task") == "mrpc")
    assert train_log_frame(elsewhere).empty


def test_run_dirs_without_a_record_are_listed(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "rte" / "glue_rte-abc123"
    run_dir.mkdir(parents=True)
    (run_dir / "train_log.jsonl").write_text('{"step": 7, "loss": 0.5}\n{"step": 8, "loss"')
    done = tmp_path / "runs" / "rte" / "glue_rte-def456"
    done.mkdir()
    (done / "record.json").write_text("{}")
    pending = pending_runs(tmp_path / "runs")
    assert list(pending["run_id"]) == ["abc123"] and pending.iloc[0]["last_logged_step"] == 7


def test_cli_writes_tables_and_the_readme_section(store: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    out = tmp_path / "tables"
    runs = store.parent / "runs"
    args = ["--results", str(store), "--out", str(out), "--runs", str(runs)]
    assert main([*args, "--readme", str(readme)]) == 0
    for name in ("runs", "summary", "sweep", "systems", *(f"table{t}" for t in "12345678")):
        assert (out / f"{name}.csv").is_file(), name
    table1 = (out / "table1.md").read_text()
    assert "[test]" in table1 and "| dev |" in table1 and "TEST" in table1
    assert "78.9" in table1  # the MiniLM average: mean of its nine dev means
    text = readme.read_text()
    assert text.startswith("# x\n") and text.endswith("## Tests\n") and "old" not in text
    assert (out / "summary.md").read_text().strip() in text
    assert not update_readme(readme, out)  # a second run changes nothing
    runs_csv = pd.read_csv(out / "runs.csv")
    assert {"partial", "unreadable", "no record (running or crashed)"} <= set(runs_csv["status"])
    sweep = pd.read_csv(out / "sweep.csv")
    rte = sweep[(sweep["task"] == "rte") & (sweep["metric"] == "accuracy")]
    assert sorted(rte["lr"]) == sorted(LRS) and rte.loc[rte["best"], "lr"].tolist() == [5e-5]


def test_readme_without_markers_is_an_error(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "tables"
    main(["--results", str(store), "--out", str(out), "--runs", ""])
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="results:start"):
        update_readme(readme, out)


def test_an_empty_store_gives_paper_cells_with_our_side_missing(tmp_path: Path) -> None:
    report = build_report(tmp_path / "results")
    assert report.runs.empty and report.summary.empty
    for table in report.tables.values():
        assert not table.empty and table["ours_mean"].isna().all()


def test_a_record_file_is_json_the_loader_can_read(store: Path) -> None:
    path = next((store / "runs" / "mrpc").glob("*.json"))
    assert json.loads(path.read_text())["headline_metric"] == "f1"

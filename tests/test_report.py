"""Reporting on a synthetic results store: best-lr selection, seed statistics, visibility of
failed runs, paper-vs-ours tables with split labels, the CLI and the README section."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bert_repro.data.glue import load_local
from bert_repro.metrics.glue import glue_metrics
from bert_repro.paper.tables import GLUE_AVERAGE_TASKS, glue_average
from bert_repro.predict import majority_label
from bert_repro.report import (
    build_report,
    glance,
    history_frame,
    load_records,
    pending_runs,
    runs_frame,
    summarize,
    update_readme,
)
from bert_repro.report.__main__ import main
from bert_repro.report.aggregate import METRIC_PREFIX, best_lr, scale_class, seed_stats
from bert_repro.report.baselines import BASELINES, majority_baseline
from bert_repro.report.compare import NO_ROW, SOURCES
from bert_repro.report.render import table_markdown, wide_table
from bert_repro.results.degenerate import from_predictions
from bert_repro.results.record import REPO, repo_relative
from bert_repro.tasks.glue import get_task
from tests.report_fixtures import (
    GLUE_BASE,
    LRS,
    SEEDS,
    TINY,
    make_record,
    score,
    write_record,
    write_synthetic_store,
)

SHARED_GLUE = REPO.parent / "shared" / "data" / "glue"

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
    assert ours["diff"].isna().all()  # paper test vs our dev: never a Δ
    minilm = table[table["ours_scale"].str.startswith("minilm_l6")]
    assert set(minilm["paper_row"]) == {NO_ROW}
    means = minilm.set_index("column")["ours_mean"]
    expected = glue_average({t: means[t] for t in GLUE_AVERAGE_TASKS})
    assert means["average"] == pytest.approx(expected)
    mrpc = minilm[minilm["column"] == "mrpc"].iloc[0]
    assert mrpc["ours_mean"] == pytest.approx(score("mrpc", 5e-5, 2))
    assert mrpc["ours_data"] == "full train set (1,000 train ex)"
    assert "22.7M params" in mrpc["ours_scale"] and "SNLI" in mrpc["ours_scale"]
    assert mrpc["baseline"] == pytest.approx(81.2227, abs=1e-3)
    bert = table[(table["paper_row"] == "BERT-BASE") & (table["column"] == "sst2")].iloc[0]
    assert bert["paper_scale"].startswith("L12/H768/A12, 110M params")
    assert bert["ours_mean"] == pytest.approx(94.0) and bert["like_for_like"]


def test_missing_cells_are_nan_never_zero(report) -> None:
    table1 = report.tables["1"]
    large = table1[table1["paper_row"] == "BERT-LARGE"]
    assert len(large) == 10 and large["ours_mean"].isna().all()
    assert set(large["status"]) == {"no run"} and (large["system"] == "").all()
    # A system with SST-2 only has no Table 1 average.
    bert = table1[table1["paper_row"] == "BERT-BASE"].set_index("column")
    assert bert["ours_mean"].notna().sum() == 1 and math.isnan(bert.loc["average", "ours_mean"])
    for t in ("2", "3", "4", "7", "8"):
        assert report.tables[t]["ours_mean"].isna().all(), t
        assert not report.tables[t].empty


def test_a_delta_only_where_like_for_like(report) -> None:
    for t, table in report.tables.items():
        assert table["paper_split"].isin(["dev", "test"]).all(), t
        assert (table["ours_split"] == "dev").all(), t
        with_delta = table[table["diff"].notna()]
        assert with_delta["like_for_like"].all() and (with_delta["paper_split"] == "dev").all()
        assert (with_delta["ours_scale"].str.contains(r"\[BERT-(BASE|LARGE)\]")).all(), t
    sst2 = report.tables["5"]
    cell = sst2[(sst2["paper_row"] == "BERT-BASE") & (sst2["column"] == "sst2")]
    assert cell.empty or cell["diff"].isna().all()  # Google's weights are not an ablation system


def test_a_compact_model_never_lands_in_a_bert_base_row(report) -> None:
    compact = set(report.systems.loc[report.systems["scale"].str.startswith("compact"), "system"])
    assert compact
    for key, table in report.tables.items():
        in_paper_rows = table[table["paper_row"].str.startswith("BERT") & table["like_for_like"]]
        assert not set(in_paper_rows["system"]) & compact, key
        if key in "1234":  # fine-tuning tables: no CPU-scale ablation system at all
            assert not set(table["system"]) & compact, key
    cpu = report.tables["5_cpu_bert_tiny"]
    assert cpu["title"].iloc[0] == "Table 5 at CPU scale: bert_tiny L2/H128/A2, 1.0M tokens seen"
    no_nsp = cpu[(cpu["paper_row"] == "No NSP") & (cpu["column"] == "mrpc")].iloc[0]
    assert no_nsp["ours_mean"] == pytest.approx(67.0) and no_nsp["ours_n"] == 3
    assert math.isnan(no_nsp["diff"]) and "scale differs" in no_nsp["status"]
    assert "[compact: L2/H128, 1.0M tokens seen]" in no_nsp["ours_scale"]
    assert "Δ" not in wide_table(cpu)["row"].str.cat()
    assert report.tables["5"]["ours_mean"].isna().all()


def test_scale_classes() -> None:
    assert scale_class(12, 768, 12, "hub:bert-base-uncased", None) == "BERT-BASE"
    assert scale_class(24, 1024, 16, "google-bert/bert-large-cased", None) == "BERT-LARGE"
    assert scale_class(6, 384, 12, "pypi:x", None) == "external weights: pypi:x"
    assert scale_class(12, 768, 12, "pretrain:abc", 1.6e6) == "compact: L12/H768, 1.6M tokens seen"
    assert scale_class(12, 768, 12, "pretrain:abc", 5e10) == "BERT-BASE"
    assert scale_class(4, 256, 4, "random", None) == "compact: L4/H256, no pre-training"


def test_ltr_systems_are_described_without_masking() -> None:
    masking = {"mask": 0.8, "random": 0.1, "keep": 0.1}
    model = {**TINY, "pretraining": {"run_id": "p", "objective": "ltr", "masking": masking}}
    record = make_record("mrpc", lr=2e-5, seed=1, metrics={"f1": 70.0}, headline="f1", model=model)
    assert runs_frame([record]).iloc[0]["masking"] == ""
    model["pretraining"]["objective"] = "mlm"
    assert runs_frame([record]).iloc[0]["masking"] == "MASK 80% SAME 10% RND 10%"


def test_a_cell_with_one_epoch_or_one_lr_says_so(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for task in ("sst2", "rte"):
        record = make_record(task, lr=2e-5, seed=1, metrics={"accuracy": 70.0}, headline="accuracy")
        record["epochs"] = 1 if task == "sst2" else 3
        write_record(results, record)
    report = build_report(results)
    table1 = report.tables["1"]
    table1 = table1[table1["system"] != ""].set_index("column")
    assert table1.loc["sst2", "ours_recipe"] == "1 ep; 1 lr"
    assert table1.loc["rte", "ours_recipe"] == "1 lr"
    wide = wide_table(report.tables["1"]).set_index("row")
    assert wide.loc[f"ours A: {NO_ROW}", "SST-2 acc [test]"] == "70.0 (n=1; 1 ep; 1 lr)"
    assert "off-recipe: 1 ep, 1 lr" in glance(report)["caveat"].iloc[0]


def test_a_run_cut_by_max_steps_counts_the_epochs_it_trained(tmp_path: Path) -> None:
    """Cut after one of its schedule's three epochs (trainer.max_steps): its cell says 1 ep."""
    record = make_record("sst2", lr=2e-5, seed=1, metrics={"accuracy": 70.0}, headline="accuracy")
    record["epochs"], record["epochs_trained"] = 3, 1.0
    write_record(tmp_path / "results", record)
    report = build_report(tmp_path / "results")
    assert runs_frame([record]).iloc[0]["epochs"] == "1"
    table1 = report.tables["1"]
    table1 = table1[table1["system"] != ""].set_index("column")
    assert table1.loc["sst2", "ours_recipe"] == "1 ep; 1 lr"


def test_a_constant_predictor_is_flagged(tmp_path: Path) -> None:
    assert (
        from_predictions([1] * 96 + [0] * 4, regression=False) == "predicts class 1 for 96% of dev"
    )
    assert from_predictions([1] * 90 + [0] * 10, regression=False) == ""
    assert from_predictions([2.5] * 10, regression=True).startswith("constant regressor")
    results = tmp_path / "results"
    constant = {"f1": 81.22270742358079, "accuracy": 68.38235294117648}  # MRPC all-positive
    for seed in SEEDS:
        write_record(
            results, make_record("mrpc", lr=2e-5, seed=seed, metrics=constant, headline="f1")
        )
    wnli = make_record(
        "wnli", lr=2e-5, seed=1, metrics={"accuracy": 56.33802816901409}, headline="accuracy"
    )
    write_record(results, wnli)
    squad = {"exact": 49.2, "f1": 49.2, "best_f1": 49.2, "HasAns_f1": 0.0, "NoAns_exact": 100.0}
    v2 = make_record(
        "squad_v2",
        lr=5e-5,
        seed=1,
        metrics=squad,
        headline="best_f1",
        stage="squad",
        experiment="squad_v2",
    )
    write_record(results, v2)
    flagged_at_end = make_record(
        "rte", lr=2e-5, seed=1, metrics={"accuracy": 60.0}, headline="accuracy"
    )
    flagged_at_end["degenerate"] = "predicts class 0 for 99% of dev"
    write_record(results, flagged_at_end)
    fine = make_record(
        "stsb", lr=2e-5, seed=1, metrics={"spearman": 80.0, "pearson": 81.0}, headline="spearman"
    )
    write_record(results, fine)
    report = build_report(results)
    flags = report.runs.set_index("task")["degenerate"]
    assert flags["mrpc"].str.startswith("positive class for every example").all()
    assert "majority class" in flags["wnli"] and "answers no question" in flags["squad_v2"]
    assert flags["rte"] == "predicts class 0 for 99% of dev" and flags["stsb"] == ""
    table1 = report.tables["1"]
    mrpc = table1[(table1["column"] == "mrpc") & (table1["system"] != "")].iloc[0]
    assert mrpc["ours_flag"].startswith("3 of 3: positive class")
    assert "⚠" in wide_table(table1).to_string()
    assert "⚠ Degenerate" in table_markdown("1", table1, report.systems)
    excluded = build_report(results, exclude_degenerate=True).summary
    assert excluded.loc[excluded["task"] == "mrpc", "n"].tolist() == [0]
    assert excluded.loc[excluded["task"] == "stsb", "n"].min() == 1


def test_table3_says_how_the_tuned_threshold_reached_its_f1(tmp_path: Path) -> None:
    # Two seeds: tau = 0 answers everything; the tuned tau trades HasAns for NoAns.
    for seed, (f1, tuned, has, no) in enumerate(
        [(40.0, 55.0, 30.0, 80.0), (42.0, 57.0, 34.0, 80.0)]
    ):
        metrics = {
            "exact": f1 - 5,
            "f1": f1,
            "best_exact": tuned - 5,
            "best_f1": tuned,
            "HasAns_f1": f1 + 20,
            "NoAns_f1": 20.0,
            "best_f1_HasAns_f1": has,
            "best_f1_NoAns_f1": no,
        }
        record = make_record(
            "squad_v2", lr=5e-5, seed=seed + 1, metrics=metrics, headline="best_f1", stage="squad"
        )
        write_record(tmp_path, {**record, "experiment": "squad_v2"})
    report = build_report(tmp_path)
    text = table_markdown("3", report.tables["3"], report.systems)
    assert (
        "SQuAD 2.0: F1 at tau = 0 41.0 ± 1.4; HasAns F1 61.0 ± 1.4; NoAns F1 20.0 ± 0.0; "
        "F1 at the tuned tau 56.0 ± 1.4; HasAns F1 32.0 ± 2.8; NoAns F1 80.0 ± 0.0"
    ) in text


def test_a_squad_cell_shows_the_run_at_the_papers_settings(tmp_path: Path) -> None:
    """Two setups of one cell: a short run at a larger lr (2 seeds) and the paper's 3 epochs at
    5e-5 (1 seed). The cell shows the recipe's run (n=1), not the one with more seeds."""
    for seed, (epochs, lr, f1) in enumerate([(1, 1e-4, 34.0), (1, 1e-4, 33.0), (3, 5e-5, 51.5)]):
        record = make_record(
            "squad_v1",
            lr=lr,
            seed=seed,
            metrics={"exact_match": f1 - 13, "f1": f1},
            headline="f1",
            stage="squad",
            experiment="squad_v1_offline",
        )
        record["epochs"] = epochs
        record["config"]["trainer"]["epochs"] = epochs
        write_record(tmp_path, {**record, "run_id": f"{record['run_id']}-{epochs}"})
    report = build_report(tmp_path)
    text = table_markdown("2", report.tables["2"], report.systems)
    assert "| 51.5 (n=1) |" in text and "34.0" not in text and "33.5" not in text


@pytest.mark.skipif(not SHARED_GLUE.is_dir(), reason="full GLUE dev sets not on this machine")
@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "qnli", "rte", "wnli"])
def test_stored_majority_baselines_recompute_from_the_dev_labels(task: str) -> None:
    glue = get_task(task)
    labels = [e.label for e in load_local(glue, SHARED_GLUE, "dev")]
    assert majority_baseline(glue.metrics, labels) == pytest.approx(dict(BASELINES[task]))


@pytest.mark.skipif(not SHARED_GLUE.is_dir(), reason="full GLUE train/dev sets not on this machine")
def test_table1_scores_wnli_as_the_paper_submitted_it(tmp_path: Path) -> None:
    """The paper submitted train's majority class for WNLI; Table 1's note gives its dev score."""
    wnli = get_task("wnli")
    dev = [e.label for e in load_local(wnli, SHARED_GLUE, "dev")]
    submitted = majority_label(wnli, str(SHARED_GLUE))
    accuracy = glue_metrics(["accuracy"], dev, [submitted] * len(dev))["accuracy"]
    report = build_report(tmp_path)
    note = table_markdown("1", report.tables["1"], report.systems)
    assert f"scores {accuracy:.1f} on dev" in note


def test_the_majority_baseline_predicts_the_most_common_label() -> None:
    assert majority_baseline(["accuracy", "f1"], [1, 1, 0]) == pytest.approx(
        {"accuracy": 200 / 3, "f1": 80.0}
    )


def test_records_store_repository_relative_paths() -> None:
    record = {"run_dir": f"{REPO}/runs/mrpc/x", "model": {"path": [f"{REPO}/a"]}, "n": 1}
    assert repo_relative(record) == {"run_dir": "runs/mrpc/x", "model": {"path": ["a"]}, "n": 1}
    assert repo_relative({"run_dir": "/elsewhere/x"}) == {"run_dir": "/elsewhere/x"}
    for path in Path(REPO, "results", "runs").glob("*/*.json"):
        assert f'"{REPO}/' not in path.read_text() and '"/work/' not in path.read_text(), path


def test_the_shipped_sample_is_never_compared(report) -> None:
    for table in report.tables.values():
        assert not table["ours_scale"].str.contains("random init").any()
    demo = report.summary[report.summary["data"] == "shipped sample"]
    assert len(demo) == 1 and demo.iloc[0]["mean"] == 55.0


def test_sources_name_record_metrics_of_the_paper_columns() -> None:
    mnli = SOURCES[("mnli_m", "accuracy")]
    assert (mnli.stage, mnli.task, mnli.metric) == ("finetune", "mnli", "dev_matched/accuracy")
    assert ("conll2003_ner", "f1") not in SOURCES  # NER is not reproduced: shown as missing


def test_learning_curves_come_from_the_records_history(store: Path) -> None:
    history = history_frame(load_records(store))
    mrpc = history[(history["task"] == "mrpc") & (history["metric"] == "f1")]
    assert set(mrpc["epoch"]) == {1, 2, 3}


def test_pretraining_curves_keep_each_phase_apart() -> None:
    """A two-phase run's 128-token evaluations are another held-out set: kept as phase 2."""
    history = [
        {"step": 2, "tokens_seen": 64, "mlm_accuracy": 25.0, "phase": 1},
        {"step": 4, "tokens_seen": 128, "mlm_accuracy": 17.0, "phase": 2},
    ]
    one_phase = {"run_id": "b", "stage": "pretrain", "history": [{"step": 2, "mlm_accuracy": 9.0}]}
    frame = history_frame([{"run_id": "a", "stage": "pretrain", "history": history}, one_phase])
    assert list(zip(frame["run_id"], frame["phase"], frame["value"], strict=True)) == [
        ("a", 1, 25.0),
        ("a", 2, 17.0),
        ("b", 1, 9.0),
    ]


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
    tables = (*(f"table{t}" for t in "12345678"), "table5_cpu_bert_tiny")
    for name in ("runs", "summary", "sweep", "systems", *tables):
        assert (out / f"{name}.csv").is_file(), name
    table1 = (out / "table1.md").read_text()
    assert "[test]" in table1 and "| dev |" in table1 and "TEST" in table1
    assert "78.9" in table1  # the MiniLM average: mean of its nine dev means
    assert "constant predictor (majority class)" in table1
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

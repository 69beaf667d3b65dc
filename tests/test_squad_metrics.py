"""SQuAD scoring: hand-computed cases, and the official leaderboard figures on the real dev sets."""

import gzip
import json
import re

import pytest

from bert_repro.data.squad import load_squad_json
from bert_repro.metrics.squad import (
    apply_null_threshold,
    exact_match,
    f1_score,
    gold_answers,
    normalize_answer,
    squad_v1_scores,
    squad_v2_scores,
)

TINY_DATASET = {
    "version": "2.0",
    "data": [
        {
            "title": "T",
            "paragraphs": [
                {
                    "context": "Paris is in France.",
                    "qas": [
                        {
                            "id": "has",
                            "question": "Where is Paris?",
                            "answers": [
                                {"text": "France", "answer_start": 12},
                                {"text": "in France", "answer_start": 9},
                            ],
                            "is_impossible": False,
                        },
                        {"id": "none", "question": "Why?", "answers": [], "is_impossible": True},
                    ],
                }
            ],
        }
    ],
}


# --- normalisation, EM, F1 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Quick, brown FOX!", "quick brown fox"),
        ("an apple a day", "apple day"),
        ("theater another", "theater another"),  # articles only as whole words
        ("A-B", "ab"),  # punctuation goes before articles, so "a" is not a word here
        ("  \t\n ", ""),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_and_articles() -> None:
    assert exact_match("The Denver Broncos!", "denver broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    assert exact_match("", "") == 1.0


def test_f1_partial_overlap() -> None:
    # pred {quick, brown, fox}, gold {quick, red, fox, jumps}: 2 shared, P = 2/3, R = 1/2.
    assert f1_score("the quick brown fox", "quick red fox jumps") == pytest.approx(4 / 7)


def test_f1_counts_repeated_tokens_once_per_occurrence() -> None:
    # Shared multiset {x, y}: P = R = 2/3.
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)


def test_f1_articles_and_punctuation_do_not_count() -> None:
    assert f1_score("The fox.", "a fox") == 1.0


def test_f1_empty_answers() -> None:
    assert f1_score("", "") == 1.0
    assert f1_score("the", ".") == 1.0  # both normalise to nothing
    assert f1_score("", "fox") == 0.0
    assert f1_score("fox", "") == 0.0
    assert f1_score("fox", "dog") == 0.0


# --- v1.1 ---------------------------------------------------------------------------------------


def test_v1_takes_max_over_golds() -> None:
    # "brown fox" vs "red fox": F1 1/2; vs "quick brown fox": P = 1, R = 2/3, F1 0.8.
    scores = squad_v1_scores({"q": ["red fox", "quick brown fox"]}, {"q": "brown fox"})
    assert scores["exact_match"] == 0.0
    assert scores["f1"] == pytest.approx(80.0)


def test_v1_missing_prediction_scores_zero_and_extra_ids_are_ignored() -> None:
    scores = squad_v1_scores({"a": ["x"], "b": ["y"]}, {"a": "x", "not-in-gold": "y"})
    assert scores == {"exact_match": 50.0, "f1": 50.0, "total": 2, "missing": 1}


def test_v1_empty_prediction_gets_no_f1_even_against_empty_gold() -> None:
    # The official v1.1 script: EM 1 but F1 0 when gold "." and prediction both have no tokens.
    scores = squad_v1_scores({"q": ["."]}, {"q": ""})
    assert (scores["exact_match"], scores["f1"]) == (100.0, 0.0)


# --- v2.0 ---------------------------------------------------------------------------------------


def test_v2_no_answer_handling_and_splits() -> None:
    gold = {"h1": ["Paris", "the city of Paris"], "h2": ["1990"], "n1": [], "n2": []}
    preds = {"h1": "paris", "h2": "in 1990 or 1991", "n1": "", "n2": "London"}
    # F1: h1 1, h2 P = 1/4 R = 1 -> 0.4, n1 1 (empty vs no-answer), n2 0.
    scores = squad_v2_scores(gold, preds)
    assert scores == pytest.approx(
        {
            "exact": 50.0,
            "f1": 60.0,
            "total": 4,
            "missing": 0,
            "HasAns_exact": 50.0,
            "HasAns_f1": 70.0,
            "HasAns_total": 2,
            "NoAns_exact": 50.0,
            "NoAns_f1": 50.0,
            "NoAns_total": 2,
        }
    )


def test_v2_gold_that_normalises_to_nothing_becomes_empty_answer() -> None:
    # The question is answerable (it has an answer), but its only gold "." is dropped, leaving "".
    scores = squad_v2_scores({"q": ["."]}, {"q": ""})
    assert (scores["HasAns_exact"], scores["HasAns_f1"]) == (100.0, 100.0)
    assert "NoAns_total" not in scores


def test_v2_missing_prediction_is_wrong_even_for_unanswerable() -> None:
    scores = squad_v2_scores({"h": ["x"], "n": []}, {"h": "x"}, na_probs={"h": 0.0})
    assert (scores["exact"], scores["NoAns_exact"], scores["missing"]) == (50.0, 0.0, 1)
    assert scores["best_exact"] == 50.0


# Best non-null answers and no-answer scores for the threshold search.
GOLD = {"A": ["x"], "B": ["y z"], "C": [], "D": []}
PREDS = {"A": "x", "B": "y", "C": "w", "D": "v"}  # B: EM 0, F1 2/3 (P = 1, R = 1/2)
NA_PROBS = {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.9}


def test_v2_threshold_search_by_hand() -> None:
    # Start from all no-answer: C and D right, 2 of 4. Answer by rising na_prob:
    #   EM: A +1 -> 3 (thresh 0.1), B +0 -> 3, C -1 -> 2, D -1 -> 1; best 3/4 at 0.1.
    #   F1: A +1 -> 3, B +2/3 -> 3.667 (thresh 0.2), C -1, D -1; best 3.667/4 at 0.2.
    scores = squad_v2_scores(GOLD, PREDS, na_probs=NA_PROBS)
    assert scores["best_exact"] == pytest.approx(75.0)
    assert scores["best_exact_thresh"] == 0.1
    assert scores["best_f1"] == pytest.approx(100 * (3 + 2 / 3) / 4)
    assert scores["best_f1_thresh"] == 0.2
    # The default threshold 1.0 answers every question: EM 1/4, F1 (1 + 2/3)/4.
    assert scores["exact"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)


def test_v2_splits_the_scores_at_the_tuned_threshold() -> None:
    # At best_f1's tau 0.2: A and B answered (F1 1 and 2/3), C and D no-answer (both right).
    scores = squad_v2_scores(GOLD, PREDS, na_probs=NA_PROBS)
    assert scores["best_f1_HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert (scores["best_f1_NoAns_f1"], scores["best_f1_NoAns_total"]) == (100.0, 2)
    assert scores["best_f1_HasAns_exact"] == pytest.approx(50.0)
    # The two splits recompose best_f1, weighted by their question counts.
    halves = scores["best_f1_HasAns_f1"] * 2 + scores["best_f1_NoAns_f1"] * 2
    assert halves / 4 == pytest.approx(scores["best_f1"])


def test_v2_fixed_threshold_scores_no_answer_predictions() -> None:
    # na_prob > 0.2 predicts no-answer for C and D, both right; A and B answered.
    scores = squad_v2_scores(GOLD, PREDS, na_probs=NA_PROBS, na_prob_thresh=0.2)
    assert scores["exact"] == pytest.approx(75.0)
    assert scores["f1"] == pytest.approx(100 * (3 + 2 / 3) / 4)
    assert (scores["NoAns_exact"], scores["HasAns_exact"]) == (100.0, 50.0)


def test_tuned_threshold_reproduces_best_f1() -> None:
    tau = squad_v2_scores(GOLD, PREDS, na_probs=NA_PROBS)["best_f1_thresh"]
    final = apply_null_threshold(PREDS, NA_PROBS, tau)
    assert final == {"A": "x", "B": "y", "C": "", "D": ""}
    assert squad_v2_scores(GOLD, final)["f1"] == pytest.approx(100 * (3 + 2 / 3) / 4)


def test_tuned_threshold_answers_nothing_when_that_is_best_even_with_negative_odds() -> None:
    # Every answer is wrong, so the best is all no-answer; BERT's null odds can be negative.
    gold, preds = {"h": ["x"], "n": []}, {"h": "wrong", "n": "y"}
    odds = {"h": -2.0, "n": -1.0}
    scores = squad_v2_scores(gold, preds, na_probs=odds)
    assert scores["best_f1"] == 50.0 and scores["best_f1_NoAns_f1"] == 100.0
    final = apply_null_threshold(preds, odds, scores["best_f1_thresh"])
    assert final == {"h": "", "n": ""}


def test_v2_needs_na_prob_for_every_prediction() -> None:
    with pytest.raises(ValueError, match=r"na_probs has no entry for 1 question\(s\), e.g. 'D'"):
        squad_v2_scores(GOLD, PREDS, na_probs={"A": 0.1, "B": 0.2, "C": 0.3})


def test_apply_null_threshold_is_strict_and_needs_every_odds() -> None:
    preds = {"a": "x", "b": "y"}
    odds = {"a": 0.5, "b": -1.0}
    assert apply_null_threshold(preds, odds, 0.0) == {"a": "", "b": "y"}
    assert apply_null_threshold(preds, odds, 0.5) == preds
    with pytest.raises(ValueError, match="null_odds has no entry"):
        apply_null_threshold(preds, {"a": 0.5}, 0.0)


# --- files --------------------------------------------------------------------------------------


def test_load_json_and_gzip_and_gold_answers(tmp_path) -> None:
    plain = tmp_path / "dev.json"
    plain.write_text(json.dumps(TINY_DATASET), encoding="utf-8")
    packed = tmp_path / "dev.json.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as f:
        json.dump(TINY_DATASET, f)
    assert load_squad_json(plain) == load_squad_json(str(packed)) == TINY_DATASET
    assert gold_answers(TINY_DATASET) == {"has": ["France", "in France"], "none": []}


@pytest.mark.parametrize("content", [{"q1": "an answer"}, [1, 2]])
def test_load_rejects_file_without_data(tmp_path, content) -> None:
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*'data'.*dataset file"):
        load_squad_json(path)


# --- official leaderboard predictions on the real dev sets -------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("predictions", "exact", "f1", "missing"),
    [
        ("v1.1_BERT_ensemble_GoogleAI.json", 86.2, 92.2, 0),  # BERT paper, Table 2 dev row
        ("v1.1_LogisticRegression_baseline.json", 40.1, 51.0, 13),
    ],
)
def test_v1_leaderboard_figures(shared_data, predictions, exact, f1, missing) -> None:
    squad = shared_data / "squad"
    gold = gold_answers(load_squad_json(squad / "dev-v1.1.rebuilt.json.gz"))
    preds = json.loads((squad / "leaderboard_predictions" / predictions).read_text())
    scores = squad_v1_scores(gold, preds)
    assert (scores["total"], scores["missing"]) == (10570, missing)
    assert scores["exact_match"] == pytest.approx(exact, abs=0.1)
    assert scores["f1"] == pytest.approx(f1, abs=0.1)


@pytest.mark.realdata
def test_v2_leaderboard_figures(shared_data) -> None:
    squad = shared_data / "squad"
    gold = gold_answers(load_squad_json(squad / "dev-v2.0.rebuilt.json.gz"))
    path = squad / "leaderboard_predictions" / "v2.0_BERT_single_GoogleAI.json"
    scores = squad_v2_scores(gold, json.loads(path.read_text()))
    assert (scores["total"], scores["HasAns_total"], scores["NoAns_total"]) == (11873, 5928, 5945)
    assert scores["missing"] == 0
    assert scores["exact"] == pytest.approx(78.7, abs=0.1)
    assert scores["f1"] == pytest.approx(81.8, abs=0.1)

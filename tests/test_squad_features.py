"""SQuAD loading and windowed features: Google's windows and max-context rule, exact answer spans.

Runs on the shipped sample (real dev articles) with the shipped uncased WordPiece vocabulary.
Small windows (128 tokens, stride 32) make most answers span several windows. The tokenizer
fixture loads the framework first: transformers must be imported after mindnlp.
"""

import gzip
import json

import numpy as np
import pytest

from bert_repro.data.squad import (
    SAMPLES_DIR,
    hub_rows_to_squad,
    load_squad,
    local_squad_file,
    parse_examples,
    read_squad_file,
    split_articles,
)
from bert_repro.data.squad_features import build_features
from bert_repro.errors import UserError
from bert_repro.models.factory import SHIPPED_VOCAB


@pytest.fixture(scope="module")
def tokenizer(framework):
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab_file=str(SHIPPED_VOCAB), do_lower_case=True)


@pytest.fixture(scope="module")
def v1_examples():
    examples, repaired = parse_examples(
        read_squad_file(SAMPLES_DIR / "dev-v1.1.json.gz"), False, "sample"
    )
    assert repaired == 0
    return examples


def google_windows(n_tokens: int, max_tokens_for_doc: int, doc_stride: int) -> list[tuple]:
    """run_squad.py's doc spans: (start, length), starts `doc_stride` apart, last one at the end."""
    spans, start = [], 0
    while start < n_tokens:
        length = min(n_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length == n_tokens:
            break
        start += min(length, doc_stride)
    return spans


def google_is_max_context(spans, span_index: int, position: int) -> bool:
    """run_squad.py's _check_is_max_context, verbatim in logic."""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return span_index == best_index


def windows_by_example(features):
    out = {}
    for window, example in enumerate(features.example_index):
        out.setdefault(int(example), []).append(window)
    return out


def context_tokens(features, window):
    offsets = features.offsets[window]
    return offsets[offsets[:, 0] >= 0]


@pytest.mark.parametrize(("max_len", "stride"), [(128, 32), (96, 128), (384, 128)])
def test_windows_and_max_context_follow_googles_run_squad(tokenizer, v1_examples, max_len, stride):
    examples = v1_examples[:120]
    features = build_features(examples, tokenizer, max_len, stride, 64, training=False)
    contexts = tokenizer(
        [e.context for e in examples], add_special_tokens=False, return_offsets_mapping=True
    )["offset_mapping"]
    for index, windows in windows_by_example(features).items():
        full = np.asarray(contexts[index])
        question = len(features.encoded.token_type_ids[windows[0]]) - len(
            context_tokens(features, windows[0])
        )
        spans = google_windows(len(full), max_len - question, stride)
        assert len(spans) == len(windows)
        for k, ((start, length), window) in enumerate(zip(spans, windows, strict=True)):
            ctx = context_tokens(features, window)
            assert np.array_equal(ctx, full[start : start + length])  # the same tokens, in place
            flags = features.max_context[window][features.offsets[window][:, 0] >= 0]
            expected = [google_is_max_context(spans, k, start + p) for p in range(length)]
            assert flags.tolist() == expected
        # every context token has exactly one max-context window
        owners = np.zeros(len(full), int)
        for (start, length), window in zip(spans, windows, strict=True):
            flags = features.max_context[window][features.offsets[window][:, 0] >= 0]
            owners[start : start + length] += flags
        assert (owners == 1).all()


def check_labels(examples, features, tokenizer) -> tuple[int, int]:
    """Training labels point at tokens whose characters are exactly the answer (when it starts
    and ends on token boundaries), in every window holding it; elsewhere at [CLS].

    Returns how many answers were labelled in several windows, and how many windows got [CLS]
    because their answer lay outside them.
    """
    full = tokenizer(
        [e.context for e in examples], add_special_tokens=False, return_offsets_mapping=True
    )["offset_mapping"]
    multi_window = truncated = aligned = answered = 0
    for index, windows in windows_by_example(features).items():
        if not examples[index].answers:
            continue
        answered += 1
        answer = examples[index].answers[0]
        start, end = answer.start, answer.start + len(answer.text)
        tokens = np.asarray(full[index])
        is_aligned = start in tokens[:, 0] and end in tokens[:, 1]
        aligned += is_aligned
        labelled = 0
        for window in windows:
            s, e = features.start_positions[window], features.end_positions[window]
            ctx = context_tokens(features, window)
            if not (ctx[0, 0] <= start and end <= ctx[-1, 1]):
                assert s == e == 0, "an answer outside the window must be labelled at [CLS]"
                truncated += 1
                continue
            offsets = features.offsets[window]
            assert 0 < s <= e and offsets[s, 0] >= 0 and offsets[e, 0] >= 0
            span = examples[index].context[offsets[s, 0] : offsets[e, 1]]
            if is_aligned:
                assert span == answer.text
            else:  # the answer starts or ends inside a word piece: the smallest covering span
                assert answer.text in span and offsets[s, 0] <= start < offsets[s, 1]
            labelled += 1
        assert labelled >= 1, f"answer of {examples[index].qid} fits no window"
        multi_window += labelled > 1
    assert aligned >= 0.97 * answered
    return multi_window, truncated


def test_every_gold_answer_that_fits_a_window_maps_back_to_its_span(tokenizer, v1_examples):
    features = build_features(v1_examples, tokenizer, 128, 32, 64, training=True)
    multi_window, truncated = check_labels(v1_examples, features, tokenizer)
    assert multi_window > 50 and truncated > 50  # both cases are exercised


@pytest.mark.realdata
@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_labels_are_exact_on_the_full_dev_sets(tokenizer, shared_data, version):
    """The paper's windows (384 tokens, stride 128) over every dev question (about 10 s each)."""
    dataset = read_squad_file(shared_data / "squad" / f"dev-v{version}.rebuilt.json.gz")
    examples, repaired = parse_examples(dataset, version == "2.0", "dev")
    assert repaired == 0
    features = build_features(examples, tokenizer, 384, 128, 64, training=True)
    multi_window, truncated = check_labels(examples, features, tokenizer)
    assert multi_window > 0 and truncated > 0


def test_questions_are_cut_to_max_query_length(tokenizer, v1_examples):
    long_question = " ".join(["why"] * 100) + "?"
    example = v1_examples[0].__class__(
        "q", "t", "   " + long_question, v1_examples[0].context, v1_examples[0].answers
    )
    features = build_features([example], tokenizer, 384, 128, 64, training=True)
    types = features.encoded.token_type_ids[0]
    assert int((types == 0).sum()) == 64 + 2  # [CLS] + 64 question tokens + [SEP]
    assert features.encoded.input_ids[0][1] == tokenizer.convert_tokens_to_ids("why")


def test_no_room_for_context_is_a_one_line_error(tokenizer, v1_examples):
    with pytest.raises(UserError, match="max_seq_length"):
        build_features(v1_examples[:1], tokenizer, 16, 128, 64, training=True)


def test_unanswerable_questions_are_labelled_at_cls(tokenizer):
    dataset = read_squad_file(SAMPLES_DIR / "dev-v2.0.json.gz")
    examples, _ = parse_examples(dataset, True, "sample")
    features = build_features(examples[:60], tokenizer, 384, 128, 64, training=True)
    for window, index in enumerate(features.example_index):
        if not examples[index].answers:
            assert features.start_positions[window] == features.end_positions[window] == 0


# --- loading and bad input -------------------------------------------------------------------


def write_json(path, payload):
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_file_without_data_is_a_one_line_error(tmp_path):
    write_json(tmp_path / "dev-v1.1.json", {"version": "1.1"})
    with pytest.raises(UserError, match="no top-level 'data'") as err:
        load_squad("local", "dev", str(tmp_path), "", False)
    assert "\n" not in str(err.value)


def test_answer_not_in_its_context_is_a_one_line_error():
    dataset = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paris is in France.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where?",
                                "answers": [{"text": "Spain", "answer_start": 12}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    with pytest.raises(UserError, match="answer 'Spain' of question q1 is not in its context"):
        parse_examples(dataset, False, "f.json")


def test_misplaced_answer_start_moves_to_the_nearest_occurrence():
    context = "one two one two"
    qa = {"id": "q", "question": "?", "answers": [{"text": "two", "answer_start": 10}]}
    dataset = {"data": [{"paragraphs": [{"context": context, "qas": [qa]}]}]}
    (example,), repaired = parse_examples(dataset, False, "f")
    assert example.answers[0].start == 12 and repaired == 1


def test_v2_data_with_the_v1_task_is_an_error_not_f1_44():
    dataset = read_squad_file(SAMPLES_DIR / "dev-v2.0.json.gz")
    with pytest.raises(UserError, match="use task=squad_v2"):
        parse_examples(dataset, False, "sample")


def test_local_files_are_found_by_official_name_or_variant(tmp_path):
    with pytest.raises(UserError, match=r"no train-v1\.1\.json"):
        local_squad_file(tmp_path, "train", False)
    raw = gzip.decompress((SAMPLES_DIR / "dev-v1.1.json.gz").read_bytes())
    (tmp_path / "dev-v1.1.rebuilt.json.gz").write_bytes(gzip.compress(raw))
    assert local_squad_file(tmp_path, "dev", False).name == "dev-v1.1.rebuilt.json.gz"
    (tmp_path / "dev-v1.1.json").write_bytes(raw)
    assert local_squad_file(tmp_path, "dev", False).name == "dev-v1.1.json"
    assert len(load_squad("local", "dev", str(tmp_path), "", False)["data"]) == 3


def test_hub_rows_regroup_into_the_official_layout(v1_examples):
    rows = [
        {
            "id": e.qid,
            "title": e.title,
            "context": e.context,
            "question": e.question,
            "answers": {
                "text": [a.text for a in e.answers],
                "answer_start": [a.start for a in e.answers],
            },
        }
        for e in v1_examples
    ]
    regrouped, _ = parse_examples(hub_rows_to_squad(rows, False), False, "hub")
    assert regrouped == v1_examples


def test_dev_article_split_is_seeded_and_disjoint():
    dataset = read_squad_file(SAMPLES_DIR / "dev-v1.1.json.gz")
    train, held_out, info = split_articles(dataset, 0.5, seed=0)
    again = split_articles(dataset, 0.5, seed=0)
    assert train == again[0] and held_out == again[1]
    titles = [{a["title"] for a in part["data"]} for part in (train, held_out)]
    assert not titles[0] & titles[1]
    assert titles[0] | titles[1] == {a["title"] for a in dataset["data"]}
    assert info["protocol"] == "dev-article-split"
    assert (info["train_articles"], info["eval_articles"]) == (2, 1)
    contexts = [
        {p["context"] for a in part["data"] for p in a["paragraphs"]} for part in (train, held_out)
    ]
    assert not contexts[0] & contexts[1]
    with pytest.raises(UserError, match="dev_split_train_fraction"):
        split_articles(dataset, 1.0, seed=0)

"""GLUE readers (TSV edge cases, every task's layout) and batching."""

from pathlib import Path

import numpy as np
import pytest

from bert_repro.data.batching import collate, encode, epoch_batches, eval_batches
from bert_repro.data.glue import Example, load_examples, load_local, read_glue_tsv
from bert_repro.errors import UserError
from bert_repro.tasks.glue import GLUE_TASKS, get_task
from tests.glue_fixture import write_tiny_glue


def test_quote_characters_inside_sentences_are_kept(tmp_path):
    # With csv quoting on, the first line would swallow the tab and the next line.
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_text(
        "index\tsentence1\tsentence2\tlabel\n"
        '0\tHe said "hello\tand left.\tentailment\n'
        "1\tIt's a \"quoted\" word\t'single' quotes\tnot_entailment\n"
    )
    examples = load_local(get_task("rte"), tmp_path, "train")
    assert [e.text_a for e in examples] == ['He said "hello', 'It\'s a "quoted" word']
    assert [e.text_b for e in examples] == ["and left.", "'single' quotes"]
    assert [e.label for e in examples] == [0, 1]


def test_cola_has_no_header_and_mrpc_has_a_bom(tmp_path):
    write_tiny_glue(tmp_path, n=4)
    cola = load_local(get_task("cola"), tmp_path, "train")
    assert len(cola) == 4 and cola[0].text_a.startswith("cola sentence")
    mrpc_file = tmp_path / "MRPC" / "train.tsv"
    mrpc_file.write_bytes(b"\xef\xbb\xbf" + mrpc_file.read_bytes())
    assert len(load_local(get_task("mrpc"), tmp_path, "train")) == 4


def test_every_task_reads_train_dev_and_test(tmp_path):
    write_tiny_glue(tmp_path, n=5)
    for task in GLUE_TASKS.values():
        assert len(load_local(task, tmp_path, "train")) == 5
        for split in task.dev_splits:
            dev = load_local(task, tmp_path, split)
            assert len(dev) == 5 and all(e.label is not None for e in dev)
        for split in task.local_test:
            test = load_local(task, tmp_path, split)
            assert all(e.label is None for e in test) and test[0].guid == "0"
        assert (dev[0].text_b is not None) == task.is_pair


def test_mnli_has_matched_and_mismatched_dev():
    assert get_task("mnli").dev_splits == ("dev_matched", "dev_mismatched")
    assert get_task("stsb").is_regression and get_task("stsb").num_labels == 1
    assert get_task("mnli").num_labels == 3


def test_malformed_line_names_file_and_line(tmp_path):
    write_tiny_glue(tmp_path, n=3)
    path = tmp_path / "SST-2" / "train.tsv"
    path.write_text(path.read_text() + "a line without a tab\n")
    with pytest.raises(UserError, match=rf"{path}:5: malformed line") as err:
        load_local(get_task("sst2"), tmp_path, "train")
    assert "\n" not in str(err.value)


def test_bad_label_names_file_and_line(tmp_path):
    write_tiny_glue(tmp_path, n=2)
    path = tmp_path / "RTE" / "dev.tsv"
    path.write_text(path.read_text() + "9\ta\tb\tmaybe\n")
    with pytest.raises(UserError, match=r"dev.tsv:4: label 'maybe'"):
        load_local(get_task("rte"), tmp_path, "dev")


def test_missing_directory_names_the_fix(tmp_path):
    with pytest.raises(UserError, match=r"data=local data.root="):
        load_local(get_task("mrpc"), tmp_path / "nope", "train")


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError, match="cola, sst2, mrpc"):
        get_task("squad")


def test_shipped_samples_load():
    examples = load_examples(get_task("sst2"), "sample", "dev")
    assert len(examples) == 872  # the full SST-2 dev set ships
    with pytest.raises(UserError, match="no shipped sample for qqp"):
        load_examples(get_task("qqp"), "sample", "train")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import BertTokenizerFast

    from bert_repro.models.factory import SHIPPED_VOCAB

    return BertTokenizerFast(vocab_file=str(SHIPPED_VOCAB), do_lower_case=True)


def test_pairs_get_segment_ids_and_truncation(tokenizer):
    examples = [
        Example("0", "the cat sat", "on the mat", 1),
        Example("1", "a " * 200, "b " * 200, 0),
    ]
    enc = encode(examples, tokenizer, max_seq_length=16, regression=False)
    ids, types = enc.input_ids[0], enc.token_type_ids[0]
    tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
    assert tokens == ["[CLS]", "the", "cat", "sat", "[SEP]", "on", "the", "mat", "[SEP]"]
    assert types.tolist() == [0] * 5 + [1] * 4
    assert len(enc.input_ids[1]) == 16 and enc.labels.dtype == np.int64


def test_dynamic_padding_pads_to_the_batch_longest(tokenizer):
    examples = [Example(str(i), "word " * (i + 1), None, 0) for i in range(6)]
    enc = encode(examples, tokenizer, 128, regression=False)
    batch = collate(enc, np.array([0, 2]), pad_id=0)
    assert batch["input_ids"].shape == (2, 5)  # [CLS] + 3 words + [SEP]
    assert batch["attention_mask"].sum(1).tolist() == [3, 5]


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    lengths = np.arange(100) % 17
    a = epoch_batches(lengths, 8, seed=1, epoch=0, group_by_length=False)
    b = epoch_batches(lengths, 8, seed=1, epoch=0, group_by_length=False)
    c = epoch_batches(lengths, 8, seed=1, epoch=1, group_by_length=False)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert sorted(np.concatenate(a).tolist()) == list(range(100))


def test_length_grouping_covers_every_example_and_cuts_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=2000)
    grouped = epoch_batches(lengths, 32, seed=0, epoch=0, group_by_length=True)
    plain = epoch_batches(lengths, 32, seed=0, epoch=0, group_by_length=False)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(2000))

    def padded(batches):
        return sum(len(b) * lengths[b].max() for b in batches)

    assert padded(grouped) < 0.7 * padded(plain)


def test_eval_batches_cover_all_examples_once():
    lengths = np.array([5, 1, 3, 9, 2])
    order = np.concatenate(eval_batches(lengths, 2))
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.realdata
def test_real_glue_row_counts(shared_data: Path):
    expected = {
        ("cola", "train"): 8551,
        ("cola", "dev"): 1043,
        ("sst2", "train"): 67349,
        ("sst2", "dev"): 872,
        ("mrpc", "train"): 3668,
        ("mrpc", "dev"): 408,
        ("mrpc", "test"): 1725,
        ("stsb", "dev"): 1500,
        ("rte", "dev"): 277,
        ("wnli", "train"): 635,
        ("qnli", "dev"): 5463,
    }
    for (name, split), count in expected.items():
        assert len(load_local(get_task(name), shared_data / "glue", split)) == count, (name, split)


@pytest.mark.realdata
def test_real_tsv_with_quotes_parses_every_line(shared_data: Path):
    path = shared_data / "glue" / "MRPC" / "train.tsv"
    task = get_task("mrpc")
    rows = read_glue_tsv(path, task.local_train, task)
    lines_with_quotes = sum('"' in line for line in path.read_text(encoding="utf-8").splitlines())
    assert sum('"' in e.text_a + e.text_b for e in rows) == lines_with_quotes == 769


def test_hub_rows_map_to_examples_and_splits(monkeypatch):
    """Up to the network boundary: `datasets.load_dataset` is replaced by the rows it would give."""
    import datasets

    calls = []

    def fake_load(name, config, split):
        calls.append((name, config, split))
        return [
            {"premise": "p0", "hypothesis": "h0", "label": 2, "idx": 0},
            {"premise": "p1", "hypothesis": "h1", "label": -1, "idx": 1},
        ]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    examples = load_examples(get_task("mnli"), "hub", "dev_mismatched", hub_dataset="nyu-mll/glue")
    assert calls == [("nyu-mll/glue", "mnli", "validation_mismatched")]
    assert examples[0] == Example("0", "p0", "h0", 2) and examples[1].label is None


def test_hub_failure_names_the_offline_alternative(monkeypatch):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(UserError, match=r"data=local data.root=/path/to/glue") as err:
        load_examples(get_task("sst2"), "hub", "train", hub_dataset="nyu-mll/glue")
    assert "\n" not in str(err.value)

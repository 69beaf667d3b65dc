"""Pre-training data builder: reading, pairing, masking, shards, label statistics, memory."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bert_repro.data.corpus import (
    documents_from_records,
    iter_file_documents,
    load_hub_documents,
    read_documents,
    resolve_files,
    select_file_shard,
    split_sentences,
)
from bert_repro.models.factory import SHIPPED_VOCAB
from bert_repro.pretraining.instances import (
    IS_NEXT,
    NO_DOCUMENT,
    NOT_NEXT,
    MaskingMix,
    PretrainingDataConfig,
    iter_instances,
)
from bert_repro.pretraining.shards import (
    MANIFEST,
    build_pretraining_shards,
    iter_shards,
    load_manifest,
    write_pretraining_shards,
)
from bert_repro.pretraining.vocab import VocabInfo, load_wordpiece_tokenizer, train_wordpiece_vocab
from tests.binomial import assert_binomial
from tests.binomial import binomial_ok as _binomial_ok

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "pretraining"
SAMPLE = DATA / "bert_sample_text.txt"
EMMA = DATA / "austen-emma-excerpt.txt"
WIKITEXT = DATA / "wikitext-format.txt"


@pytest.fixture(scope="session")
def tokenizer():
    """BERT's uncased vocabulary, shipped in the package: the same with or without ../shared."""
    return load_wordpiece_tokenizer(SHIPPED_VOCAB)


def _trained_vocab(out_dir: Path) -> Path:
    documents = iter_file_documents([SAMPLE, EMMA])
    return train_wordpiece_vocab(documents, out_dir, vocab_size=400, min_frequency=1)


@pytest.fixture(scope="session")
def vocab(tokenizer) -> VocabInfo:
    return VocabInfo.from_tokenizer(tokenizer)


def _small_sources() -> list[tuple[Path, str]]:
    return [(SAMPLE, "lines"), (EMMA, "file"), (WIKITEXT, "wikitext")]


def _small_documents():
    for path, layout in _small_sources():
        yield from read_documents(path, layout)


def _load(out_dir: Path) -> dict[str, np.ndarray]:
    shards = list(iter_shards(out_dir))
    return {name: np.concatenate([s[name] for s in shards]) for name in shards[0]}


def _instances(tokenizer, config: PretrainingDataConfig, documents=None) -> list:
    """One pass over the shipped corpus (or ``documents``) with seed 0."""
    documents = _small_documents() if documents is None else documents
    return list(iter_instances(documents, tokenizer, config, random.Random(0)))


def _assert_label_statistics(
    arrays: dict[str, np.ndarray], vocab: VocabInfo, config, document_passes: int
) -> None:
    """Google's labelling, checked with tolerances derived from this build's own counts.

    - Prediction counts are deterministic: min(cap, max(1, round(15% of maskable))) per instance.
    - Each prediction is [MASK] / random / kept with 80/10/10; a random draw equals the original
      with probability 1/len(replacements), which then reads as kept.
    - Each chunk's IsNext coin is fair, except that a chunk holding only its document's last
      sentence has no continuation and is NotNext by force: at most one per document pass, so
      IsNext ~ Binomial(n - E, 0.5) for some E in [0, document_passes].
    """
    ids, positions = arrays["input_ids"], arrays["masked_lm_positions"]
    weighted = arrays["masked_lm_weights"] > 0
    rows, slots = np.nonzero(weighted)
    original = ids.copy()
    original[rows, positions[rows, slots]] = arrays["masked_lm_ids"][rows, slots]
    maskable = ((arrays["attention_mask"] > 0) & ~vocab.is_special[original]).sum(1)
    expected = np.minimum(
        config.max_predictions_per_seq,
        np.maximum(1, np.round(maskable * config.masked_lm_prob)),
    )
    assert np.array_equal(weighted.sum(1), np.minimum(expected, maskable))

    seen = ids[rows, positions[rows, slots]]
    truth = arrays["masked_lm_ids"][rows, slots]
    is_mask = seen == vocab.mask_id
    is_keep = ~is_mask & (seen == truth)
    mix, n_masked = config.masking, len(seen)
    same_by_chance = mix.random / len(vocab.replacement_ids)
    assert_binomial(int(is_mask.sum()), n_masked, mix.mask, "[MASK] share")
    assert_binomial(int(is_keep.sum()), n_masked, mix.keep + same_by_chance, "kept share")
    assert_binomial(
        int((~is_mask & ~is_keep).sum()), n_masked, mix.random - same_by_chance, "random share"
    )

    n = len(ids)
    is_next = int(np.sum(arrays["next_sentence_label"] == IS_NEXT))
    assert any(
        _binomial_ok(is_next, n - forced, config.random_next_prob)
        for forced in range(min(document_passes, n) + 1)
    ), f"IsNext {is_next}/{n}: no number of forced NotNext <= {document_passes} explains it"


def _check_invariants(arrays: dict[str, np.ndarray], vocab: VocabInfo, config) -> None:
    """Properties every built instance must have, whatever the corpus."""
    ids, types, attention = arrays["input_ids"], arrays["token_type_ids"], arrays["attention_mask"]
    positions, weights = arrays["masked_lm_positions"], arrays["masked_lm_weights"]
    length = attention.sum(1)
    assert ids.shape[1] == config.max_seq_length and positions.shape[1] == (
        config.max_predictions_per_seq
    )
    assert np.all(attention == (np.arange(ids.shape[1]) < length[:, None]))
    assert np.all(ids[attention == 0] == vocab.pad_id)
    assert np.all(ids[:, 0] == vocab.cls_id)
    assert np.all(ids[np.arange(len(ids)), length - 1] == vocab.sep_id)
    rows, slots = np.nonzero(weights > 0)
    masked_at = positions[rows, slots]
    assert np.all(masked_at < length[rows])
    assert not np.any(vocab.is_special[arrays["masked_lm_ids"][rows, slots]])  # never a special
    padded_after = ids.shape[1] + np.arange(positions.shape[1])  # keeps the check strict
    assert np.all(np.diff(np.where(weights > 0, positions, padded_after), axis=1) > 0)
    seps = (ids == vocab.sep_id) & (attention > 0)
    pair = arrays["doc_b"] != NO_DOCUMENT
    assert np.all(seps.sum(1) == np.where(pair, 2, 1))
    first_sep = np.argmax(seps, axis=1)
    assert np.all(first_sep >= 2) and np.all(first_sep[pair] < length[pair] - 2)  # A, B non-empty
    expected_types = (
        (np.arange(ids.shape[1]) > first_sep[:, None]) & (attention > 0) & pair[:, None]
    )
    assert np.all(types == expected_types)
    not_next = arrays["next_sentence_label"] == NOT_NEXT
    assert np.all(arrays["doc_a"][not_next] != arrays["doc_b"][not_next])  # never its own doc
    assert np.all(arrays["doc_a"][pair & ~not_next] == arrays["doc_b"][pair & ~not_next])


# --- documents -------------------------------------------------------------------------------


def test_split_sentences_keeps_abbreviations_initials_and_text():
    text = (
        'Mr. Smith met Harry S. Truman in the U.S. Senate. "Go!" he said. Then they left at '
        "4 A. M., tired. The <unk> of H. americanus is red . The end"
    )
    assert split_sentences(text) == [
        "Mr. Smith met Harry S. Truman in the U.S. Senate.",
        '"Go!" he said.',
        "Then they left at 4 A. M., tired.",
        "The <unk> of H. americanus is red .",
        "The end",
    ]
    assert "".join(split_sentences(text)).replace(" ", "") == text.replace(" ", "")


def test_layouts_map_files_to_documents():
    sample = list(read_documents(SAMPLE, "lines", sentence_split=False))
    assert [len(d) for d in sample] == [3, 13, 15]  # one sentence a line, 3 documents
    (emma,) = read_documents(EMMA, "file")  # a whole book excerpt is one document
    assert emma[0] == "[Emma by Jane Austen 1816]"
    assert any(s.startswith("Emma Woodhouse, handsome, clever, and rich, with a") for s in emma)
    articles = list(read_documents(WIKITEXT, "wikitext"))
    assert len(articles) == 2  # " = Title = " starts a document; sub-headings are dropped
    assert articles[0][0] == "The Example River is a short river in a made-up valley ."
    assert "It is about 12.5 km long and drains an area of 1,200 hectares ." in articles[0]
    assert "[UNK] family" in " ".join(articles[0])
    assert not any("=" in s for a in articles for s in a)
    with pytest.raises(ValueError, match="layout"):
        list(read_documents(SAMPLE, "csv"))  # type: ignore[arg-type]


def test_files_resolve_and_shard_disjointly():
    files = resolve_files([DATA])
    assert files == sorted(files) and {f.name for f in files} == {
        SAMPLE.name,
        EMMA.name,
        WIKITEXT.name,
    }
    shards = [select_file_shard(files, 2, i) for i in range(2)]
    assert sorted(shards[0] + shards[1]) == files and not set(shards[0]) & set(shards[1])
    with pytest.raises(FileNotFoundError):
        resolve_files([DATA / "missing.txt"])


def test_hub_reader_streams_up_to_the_network(monkeypatch):
    datasets = pytest.importorskip("datasets")
    rows = [
        {"text": "First article. It has two sentences.\n\nA second paragraph."},
        {"text": "Second article."},
    ]
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return datasets.Dataset.from_list(rows).to_iterable_dataset()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    documents = list(load_hub_documents("wikimedia/wikipedia", "20231101.en"))
    assert calls == [("wikimedia/wikipedia", "20231101.en", {"split": "train", "streaming": True})]
    assert documents == [
        ["First article.", "It has two sentences.", "A second paragraph."],
        ["Second article."],
    ]
    sentences = ({"sentence": f"Sentence {i}."} for i in range(5))  # BookCorpus-style rows
    grouped = list(documents_from_records(sentences, "sentence", rows_per_document=2))
    assert [len(d) for d in grouped] == [2, 2, 1]


def test_trained_vocab_loads_and_builds(tmp_path):
    vocab_file = _trained_vocab(tmp_path)
    assert vocab_file.read_text().split("\n")[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trained = load_wordpiece_tokenizer(vocab_file)
    info = VocabInfo.from_tokenizer(trained)
    assert info.is_continuation.any() and len(trained) <= 400
    config = PretrainingDataConfig(max_seq_length=64, whole_word_masking=True)
    instances = list(iter_instances(_small_documents(), trained, config, random.Random(0)))
    assert instances and all(len(i.input_ids) <= 64 for i in instances)


# --- config ----------------------------------------------------------------------------------


def test_config_defaults_follow_bert():
    c = PretrainingDataConfig()
    assert (c.max_seq_length, c.max_predictions_per_seq, c.dupe_factor) == (128, 20, 10)
    assert (c.masked_lm_prob, c.short_seq_prob, c.random_next_prob) == (0.15, 0.1, 0.5)
    assert c.masking == MaskingMix(0.8, 0.1, 0.1)
    derived = {
        n: PretrainingDataConfig(max_seq_length=n).max_predictions_per_seq for n in (32, 64, 512)
    }
    assert derived == {32: 5, 64: 10, 512: 80}
    with pytest.raises(ValueError):
        MaskingMix(0.8, 0.1, 0.2)
    with pytest.raises(ValueError):
        PretrainingDataConfig(objective="sop")  # type: ignore[arg-type]


# --- instances on the shipped corpus ---------------------------------------------------------


@pytest.fixture(scope="module")
def small_build(tmp_path_factory, tokenizer):
    """The shipped corpus built with many dupes, so its label statistics are meaningful."""
    out = tmp_path_factory.mktemp("small")
    config = PretrainingDataConfig(dupe_factor=150, instances_per_shard=1000)
    write_pretraining_shards(_small_documents, out, tokenizer, config, seed=1)
    return config, _load(out)


def test_small_corpus_invariants(small_build, vocab):
    config, arrays = small_build
    _check_invariants(arrays, vocab, config)


def test_small_corpus_label_statistics(small_build, vocab):
    config, arrays = small_build
    documents = sum(1 for _ in _small_documents())
    _assert_label_statistics(arrays, vocab, config, documents * config.dupe_factor)


def test_prediction_count_is_fifteen_percent_of_maskable_capped(tokenizer, vocab):
    config = PretrainingDataConfig(max_seq_length=256, max_predictions_per_seq=20)
    counts = []
    for instance in _instances(tokenizer, config):
        original = instance.input_ids.copy()
        original[instance.masked_lm_positions] = instance.masked_lm_ids
        maskable = int((~vocab.is_special[original]).sum())
        expected = min(20, max(1, round(maskable * 0.15)), maskable)
        assert len(instance.masked_lm_positions) == expected
        counts.append(expected)
    assert max(counts) == 20  # the cap was exercised (256-token sequences want up to 38)


def test_truncation_keeps_sequences_within_length(tokenizer, vocab):
    config = PretrainingDataConfig(max_seq_length=24, max_predictions_per_seq=4)
    instances = _instances(tokenizer, config)
    assert max(len(i.input_ids) for i in instances) == 24
    for instance in instances:
        assert len(instance.input_ids) <= 24
        sep_at = np.flatnonzero(instance.input_ids == vocab.sep_id)
        assert sep_at[0] >= 2 and np.all(np.diff(sep_at) >= 2)  # no segment is empty


def test_not_next_never_from_the_same_document(tokenizer):
    instances = _instances(tokenizer, PretrainingDataConfig(random_next_prob=0.9))
    not_next = [i for i in instances if i.next_sentence_label == NOT_NEXT]
    assert len(not_next) > len(instances) / 2
    assert all(i.doc_a != i.doc_b for i in not_next)


def test_single_document_corpus_makes_no_not_next(tokenizer, caplog):
    (emma,) = read_documents(EMMA, "file")
    with caplog.at_level(logging.WARNING):
        instances = _instances(
            tokenizer, PretrainingDataConfig(max_seq_length=32), documents=[emma]
        )
    assert len(instances) > 10
    assert all(i.next_sentence_label == IS_NEXT and i.doc_b == i.doc_a == 0 for i in instances)
    assert "only one document" in caplog.text


def test_not_next_partner_comes_from_the_bounded_window(tokenizer):
    documents = [[f"Document {d} sentence {s} is here." for s in range(6)] for d in range(60)]
    config = PretrainingDataConfig(max_seq_length=32, window_documents=6)
    instances = _instances(tokenizer, config, documents=documents)
    distances = [abs(i.doc_a - i.doc_b) for i in instances if i.next_sentence_label == NOT_NEXT]
    assert distances and min(distances) >= 1 and max(distances) <= 6


def test_mlm_objective_never_emits_not_next(tokenizer):
    config = PretrainingDataConfig(objective="mlm")
    instances = _instances(tokenizer, config)
    assert instances and all(i.next_sentence_label == IS_NEXT for i in instances)
    assert all(i.doc_b in (i.doc_a, NO_DOCUMENT) for i in instances)
    assert all(len(i.masked_lm_positions) > 0 for i in instances)


def test_ltr_objective_is_unmasked_contiguous_text(vocab, tokenizer):
    instances = _instances(tokenizer, PretrainingDataConfig(objective="ltr", short_seq_prob=0.0))
    documents = [
        np.array(tokenizer(" ".join(d), add_special_tokens=False)["input_ids"])
        for d in _small_documents()
    ]
    for instance in instances:
        assert len(instance.masked_lm_positions) == 0 and not instance.token_type_ids.any()
        assert instance.doc_b == NO_DOCUMENT and instance.input_ids[-1] == vocab.sep_id
        body = instance.input_ids[1:-1]
        text = documents[instance.doc_a]
        starts = np.flatnonzero(text[: len(text) - len(body) + 1] == body[0])
        assert any(np.array_equal(text[s : s + len(body)], body) for s in starts)


@pytest.mark.parametrize(
    ("mix", "expected"), [(MaskingMix(1.0, 0.0, 0.0), "mask"), (MaskingMix(0.0, 0.0, 1.0), "keep")]
)
def test_masking_mix_is_configurable(tokenizer, vocab, mix, expected):
    for instance in _instances(tokenizer, PretrainingDataConfig(masking=mix)):
        seen = instance.input_ids[instance.masked_lm_positions]
        if expected == "mask":
            assert np.all(seen == vocab.mask_id)
        else:
            assert np.array_equal(seen, instance.masked_lm_ids)


def test_whole_word_masking_masks_all_pieces_together(tokenizer, vocab):
    config = PretrainingDataConfig(whole_word_masking=True, masked_lm_prob=0.3)
    multi_piece_words = 0
    for instance in _instances(tokenizer, config):
        original = instance.input_ids.copy()
        original[instance.masked_lm_positions] = instance.masked_lm_ids
        masked = set(instance.masked_lm_positions.tolist())
        word: list[int] = []
        for position in range(len(original) + 1):
            continues = (
                position < len(original)
                and word
                and vocab.is_continuation[original[position]]
                and not vocab.is_special[original[position]]
            )
            if continues:
                word.append(position)
                continue
            chosen = [p in masked for p in word]
            assert all(chosen) or not any(chosen), (word, masked)
            multi_piece_words += len(word) > 1 and all(chosen)
            is_word_start = position < len(original) and not vocab.is_special[original[position]]
            word = [position] if is_word_start else []
    assert multi_piece_words > 10


# --- shards ----------------------------------------------------------------------------------


def test_build_is_deterministic_and_atomic(tmp_path, tokenizer):
    config = PretrainingDataConfig(dupe_factor=3, instances_per_shard=16)
    files = [SAMPLE, WIKITEXT]
    manifests = [
        build_pretraining_shards(files, tmp_path / name, tokenizer, config, seed=seed)
        for name, seed in (("a", 7), ("b", 7), ("c", 8))
    ]
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted([MANIFEST] + [s["file"] for s in manifests[0]["shards"]])  # no temps
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    differs = [
        (tmp_path / "a" / s["file"]).read_bytes() != (tmp_path / "c" / s["file"]).read_bytes()
        for s in manifests[0]["shards"]
        if (tmp_path / "c" / s["file"]).exists()
    ]
    assert any(differs)
    manifest = load_manifest(tmp_path / "a")
    assert manifest == json.loads(json.dumps(manifests[0]))
    arrays = _load(tmp_path / "a")
    assert len(arrays["input_ids"]) == manifest["totals"]["instances"]
    assert sum(s["num_instances"] for s in manifest["shards"]) == manifest["totals"]["instances"]
    assert int(arrays["attention_mask"].sum()) == manifest["totals"]["tokens"]
    assert manifest["config"]["max_predictions_per_seq"] == 20
    assert PretrainingDataConfig(**manifest["config"]) == config
    with pytest.raises(FileExistsError):
        build_pretraining_shards(files, tmp_path / "a", tokenizer, config, seed=7)
    smaller = replace(config, dupe_factor=1)
    rebuilt = build_pretraining_shards(files, tmp_path / "a", tokenizer, smaller, 7, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        [MANIFEST] + [s["file"] for s in rebuilt["shards"]]
    )


# --- real corpora ----------------------------------------------------------------------------

REAL_SLICES = {
    "wikitext-2-valid": (["corpus/wikitext-2/valid.txt"], "wikitext", 3),
    "gutenberg-4-books": (
        [f"corpus/gutenberg/{b}.txt" for b in ("austen-persuasion", "chesterton-brown")]
        + [f"corpus/gutenberg/{b}.txt" for b in ("milton-paradise", "shakespeare-hamlet")],
        "file",
        2,
    ),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REAL_SLICES))
def test_real_corpus_label_statistics(name, shared_data, tmp_path, tokenizer, vocab):
    files, layout, dupes = REAL_SLICES[name]
    config = PretrainingDataConfig(dupe_factor=dupes)
    paths = [shared_data / f for f in files]
    manifest = build_pretraining_shards(paths, tmp_path, tokenizer, config, seed=0, layout=layout)
    arrays = _load(tmp_path)
    assert manifest["totals"]["instances"] == len(arrays["input_ids"]) > 5000
    _check_invariants(arrays, vocab, config)
    documents = sum(1 for path in paths for _ in read_documents(path, layout))
    _assert_label_statistics(arrays, vocab, config, documents * dupes)


# --- memory ----------------------------------------------------------------------------------

_MEASURE = """
import json, random, resource, sys, time, tracemalloc
from bert_repro.pretraining.instances import PretrainingDataConfig
from bert_repro.pretraining.shards import build_pretraining_shards
from bert_repro.pretraining.vocab import load_wordpiece_tokenizer

vocab, out, layout, window_documents, window_tokens, trace, *files = sys.argv[1:]
tokenizer = load_wordpiece_tokenizer(vocab)
config = PretrainingDataConfig(dupe_factor=1, window_documents=int(window_documents),
                               window_tokens=int(window_tokens), instances_per_shard=2000)
before_kb = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
if trace == "1":
    tracemalloc.start()
start = time.perf_counter()
manifest = build_pretraining_shards(files, out, tokenizer, config, seed=0, layout=layout)
seconds = time.perf_counter() - start
print(json.dumps({
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_before_build_mb": before_kb / 1024,
    "traced_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20 if trace == "1" else None,
    "tokens": manifest["totals"]["tokens"], "seconds": seconds,
}))
"""


def measure_build(
    vocab_file: Path,
    files: list[Path],
    copies: int,
    work: Path,
    layout: str = "lines",
    window: tuple[int, int] = (1000, 2_000_000),
    trace: bool = True,
) -> dict:
    """Build ``copies`` concatenated copies of ``files`` in a fresh interpreter; its peak memory.

    ``traced_peak_mb`` (tracemalloc: Python and numpy allocations during the build) isolates the
    builder from the interpreter and library baseline that dominates ``peak_rss_mb``.
    """
    work.mkdir(parents=True, exist_ok=True)
    inputs = [str(f) for _ in range(copies) for f in files]
    command = [sys.executable, "-c", _MEASURE, str(vocab_file), str(work / f"out{copies}"), layout]
    command += [str(window[0]), str(window[1]), "1" if trace else "0", *inputs]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_memory_stays_flat_as_the_corpus_grows(tmp_path, tokenizer):
    vocab_file = Path(tokenizer.save_vocabulary(str(tmp_path))[0])
    documents = [
        [f"Document {d} has sentence number {s} with some words." for s in range(8)]
        for d in range(2000)
    ]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(d) for d in documents))
    one, four = (
        measure_build(vocab_file, [corpus], copies, tmp_path, window=(20, 5000))
        for copies in (1, 4)
    )
    print("1x", one, "4x", four)
    assert four["tokens"] > 3.5 * one["tokens"]
    assert four["traced_peak_mb"] < 1.1 * one["traced_peak_mb"] + 0.5
    assert four["peak_rss_mb"] < one["peak_rss_mb"] + 20

"""SQuAD v1.1 / v2.0: loading (hub, official JSON, shipped sample), the offline dev-article split,
and BERT's windowed features (paper section 4.2-4.3, Google's run_squad.py).

The fast tokenizer cuts the context into overlapping windows and gives character offsets; the rest
is the paper's recipe written out here: questions cut to `max_query_length` tokens, window starts
`doc_stride` tokens apart (Google's meaning: the step, not Hugging Face's overlap), the max-context
rule for tokens seen in several windows, and answers not inside a window labelled at [CLS].
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bert_repro.data.batching import Encoded
from bert_repro.errors import UserError
from bert_repro.metrics.squad import load_squad_json

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "samples" / "squad"
HUB_SPLITS = {"train": "train", "dev": "validation"}


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context


@dataclass(frozen=True)
class SquadExample:
    qid: str
    title: str
    question: str
    context: str
    answers: tuple[Answer, ...]  # empty: unanswerable (v2.0)


@dataclass
class SquadSplits:
    """Training and evaluation questions, and how they were obtained (for the result record)."""

    train: list[SquadExample]
    eval: list[SquadExample]
    protocol: dict[str, Any] = field(default_factory=dict)


# --- loading -------------------------------------------------------------------------------------


def version_of(version_2: bool) -> str:
    return "2.0" if version_2 else "1.1"


def read_squad_file(path: Path) -> dict[str, Any]:
    """An official-layout SQuAD file; a wrong kind of file is a one-line error."""
    try:
        return load_squad_json(path)
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not JSON ({err.msg}, line {err.lineno})") from None
    except (EOFError, OSError, UnicodeDecodeError, zlib.error) as err:  # cut short, not gzip
        reason = str(err) or type(err).__name__
        raise UserError(f"{path} is truncated or damaged ({reason}); download it again") from None
    except ValueError as err:  # no top-level 'data': the message names the file and the fix
        raise UserError(str(err)) from None


def local_squad_file(root: str | Path, split: str, version_2: bool) -> Path:
    """<root>/<split>-v<version>.json, .json.gz, or a variant like dev-v1.1.rebuilt.json.gz."""
    root = Path(root).expanduser()
    stem = f"{split}-v{version_of(version_2)}"
    if not root.is_dir():
        raise UserError(f"data directory not found: {root} (data.root=<folder with {stem}.json>)")
    exact = [root / f"{stem}.json", root / f"{stem}.json.gz"]
    found = [p for p in exact if p.is_file()] or sorted(root.glob(f"{stem}.*json*"))
    if not found:
        raise UserError(
            f"no {stem}.json or {stem}.json.gz in {root}; put the official SQuAD file there "
            "(or use data=hub)"
        )
    return found[0]


def hub_rows_to_squad(rows: Sequence[dict[str, Any]], version_2: bool) -> dict[str, Any]:
    """Hub rows (one per question) regrouped into the official layout: articles > paragraphs."""
    articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        paragraphs = articles.setdefault(row["title"], {})
        answers = row["answers"]
        paragraphs.setdefault(row["context"], []).append(
            {
                "id": row["id"],
                "question": row["question"],
                "answers": [
                    {"text": t, "answer_start": s}
                    for t, s in zip(answers["text"], answers["answer_start"], strict=True)
                ],
            }
        )
    data = [
        {"title": title, "paragraphs": [{"context": c, "qas": q} for c, q in paragraphs.items()]}
        for title, paragraphs in articles.items()
    ]
    return {"version": version_of(version_2), "data": data}


def load_hub(hub_dataset: str, split: str, version_2: bool) -> dict[str, Any]:
    if hub_dataset == "nyu-mll/glue":
        expected = "rajpurkar/squad_v2" if version_2 else "rajpurkar/squad"
        raise UserError(
            f"data.hub_dataset={hub_dataset} is GLUE; for SQuAD set data.hub_dataset={expected} "
            "(the squad_v1/squad_v2 experiments do)"
        )
    try:
        import datasets

        rows = datasets.load_dataset(hub_dataset, split=HUB_SPLITS[split])
    except Exception as err:  # network, missing cache, wrong name: all need the same fix
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise UserError(
            f"could not load {hub_dataset} [{HUB_SPLITS[split]}] from the hub ({reason}); "
            f"offline, use data=local data.root=<folder holding {split}-v{version_of(version_2)}"
            ".json>"
        ) from None
    return hub_rows_to_squad(rows, version_2)


def load_squad(
    source: str, split: str, root: str | None, hub_dataset: str, version_2: bool
) -> dict[str, Any]:
    """The official-layout dataset of one split from the configured source."""
    if source == "hub":
        return load_hub(hub_dataset, split, version_2)
    if source == "sample":
        root = SAMPLES_DIR
    elif source != "local":
        raise UserError(f"unknown data.source '{source}': choose hub, local or sample")
    elif not root:
        raise UserError("data=local needs data.root=<folder holding the SQuAD JSON files>")
    return read_squad_file(local_squad_file(root, split, version_2))


def parse_examples(
    dataset: dict[str, Any], version_2: bool, origin: str
) -> tuple[list[SquadExample], int]:
    """Flatten and check a dataset: (questions, how many answer_start values were repaired).

    An answer whose text is not at `answer_start` is moved to the nearest occurrence of its text;
    one absent from the context is an error. Unanswerable questions need task=squad_v2: training
    v1.1-style on v2.0 data would silently score about F1 44 (the peers' known failure).
    """
    if not isinstance(dataset.get("data"), list):
        raise UserError(f"{origin} has no top-level 'data' list; pass an official SQuAD file")
    examples, repaired, unanswerable = [], 0, 0
    for a_index, article in enumerate(dataset["data"]):
        title = str(article.get("title", f"article-{a_index}"))
        for p_index, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{origin}: article '{title}' paragraph {p_index}"
            if "context" not in paragraph or "qas" not in paragraph:
                raise UserError(f"{where} lacks 'context' or 'qas'; fix the file's layout")
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = []
                for answer in qa.get("answers", []):
                    start = _locate(context, answer["text"], answer.get("answer_start", 0))
                    if start is None:
                        raise UserError(
                            f"{where}: answer {answer['text']!r} of question {qa['id']} is not in "
                            "its context; fix its text or remove the question"
                        )
                    repaired += start != answer.get("answer_start")
                    answers.append(Answer(answer["text"], start))
                unanswerable += not answers
                examples.append(
                    SquadExample(str(qa["id"]), title, qa["question"], context, tuple(answers))
                )
    if not version_2 and (unanswerable or str(dataset.get("version", "")).lstrip("v") == "2.0"):
        raise UserError(
            f"{origin} is SQuAD v2.0 ({unanswerable} unanswerable questions) but the task is v1.1; "
            "use task=squad_v2 (or +experiment=squad_v2) so null answers are handled"
        )
    return examples, repaired


def _locate(context: str, text: str, start: int) -> int | None:
    """`start` if the answer text is there, else the nearest occurrence, else None."""
    if not text:
        return None
    if context[start : start + len(text)] == text:
        return start
    hits, at = [], context.find(text)
    while at != -1:
        hits.append(at)
        at = context.find(text, at + 1)
    return min(hits, key=lambda h: abs(h - start)) if hits else None


def split_articles(
    dataset: dict[str, Any], train_fraction: float, seed: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The offline protocol: a seeded split of the dev file's articles into train and eval parts.

    No SQuAD training set is available offline, so fine-tuning uses some dev articles and scoring
    the others; no article (hence no context) is in both. Not comparable to the paper's dev score.
    """
    articles = dataset["data"]
    if len(articles) < 2 or not 0.0 < train_fraction < 1.0:
        raise UserError(
            f"the dev-article split needs >= 2 articles and 0 < data.dev_split_train_fraction < 1 "
            f"(got {len(articles)} articles, fraction {train_fraction})"
        )
    order = np.random.default_rng(seed).permutation(len(articles))
    n_train = min(len(articles) - 1, max(1, round(train_fraction * len(articles))))
    train = [articles[i] for i in order[:n_train]]
    held_out = [articles[i] for i in order[n_train:]]
    info = {
        "protocol": "dev-article-split",
        "note": "fine-tuned on some SQuAD dev articles, scored on the others: not the paper's dev",
        "seed": seed,
        "train_fraction": train_fraction,
        "train_articles": len(train),
        "eval_articles": len(held_out),
        "eval_titles": [str(a.get("title")) for a in held_out],
    }
    return {**dataset, "data": train}, {**dataset, "data": held_out}, info


def load_splits(data_cfg: Any, version_2: bool) -> SquadSplits:
    """Train/eval questions from the configured source, or the offline dev-article split."""
    args = (data_cfg.source, data_cfg.root, data_cfg.hub_dataset, version_2)
    fraction = data_cfg.dev_split_train_fraction
    if fraction is not None:
        train_set, eval_set, protocol = split_articles(
            load_squad(args[0], "dev", *args[1:]), fraction, data_cfg.dev_split_seed
        )
    else:
        if data_cfg.source == "sample":
            raise UserError(
                "the shipped SQuAD sample holds dev articles only: add "
                "data.dev_split_train_fraction=0.5 (the offline dev-article split)"
            )
        train_set, eval_set = (load_squad(args[0], s, *args[1:]) for s in ("train", "dev"))
        protocol = {"protocol": "train/dev"}
    train, train_fixed = parse_examples(train_set, version_2, f"{data_cfg.source} train")
    evals, eval_fixed = parse_examples(eval_set, version_2, f"{data_cfg.source} dev")
    protocol["answer_starts_repaired"] = train_fixed + eval_fixed
    if data_cfg.max_train_examples:
        train = train[: data_cfg.max_train_examples]
    if data_cfg.max_eval_examples:
        evals = evals[: data_cfg.max_eval_examples]
    return SquadSplits(train, evals, protocol)


# --- features ------------------------------------------------------------------------------------


@dataclass
class SquadFeatures:
    """One row per context window; several windows may come from one question."""

    encoded: Encoded  # input_ids / token_type_ids per window, for `collate`
    example_index: np.ndarray  # window -> index of its question
    offsets: list[np.ndarray]  # (length, 2) character span per token; -1 outside the context
    max_context: list[np.ndarray]  # bool per token: this window is the token's max-context one
    start_positions: np.ndarray  # training labels (token index; 0 = [CLS] = no answer here)
    end_positions: np.ndarray

    def __len__(self) -> int:
        return len(self.encoded)


def truncate_questions(
    questions: Sequence[str], tokenizer: Any, max_query_length: int
) -> list[str]:
    """Cut each question after its first `max_query_length` WordPiece tokens (BERT: 64)."""
    questions = [q.lstrip() for q in questions]  # some SQuAD questions start with many spaces
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        q[: offs[max_query_length - 1][1]] if len(offs) > max_query_length else q
        for q, offs in zip(questions, enc["offset_mapping"], strict=True)
    ]


def build_features(
    examples: Sequence[SquadExample],
    tokenizer: Any,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    training: bool,
) -> SquadFeatures:
    """[CLS] question [SEP] context-window [SEP] rows, with labels and max-context flags.

    Questions are tokenized in groups of equal length so each group gets the tokenizer stride
    (overlap) that makes consecutive windows start exactly `doc_stride` tokens apart.
    """
    questions = truncate_questions([e.question for e in examples], tokenizer, max_query_length)
    q_lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    rows: dict[int, list] = {}  # example index -> its windows (token ids, types, offsets, ctx)
    strides: dict[int, int] = {}  # question length -> tokenizer stride (window overlap)
    by_length = sorted(range(len(examples)), key=q_lengths.__getitem__)
    for q_len, group in itertools.groupby(by_length, key=q_lengths.__getitem__):
        group = list(group)
        window = max_seq_length - q_len - 3
        if window <= 0:
            raise UserError(
                f"task.max_seq_length={max_seq_length} leaves no room for the context after a "
                f"{q_len}-token question; raise it or lower task.max_query_length"
            )
        enc = tokenizer(
            [questions[i] for i in group],
            [examples[i].context for i in group],
            truncation="only_second",
            max_length=max_seq_length,
            stride=strides.setdefault(q_len, max(window - doc_stride, 0)),
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_token_type_ids=True,
        )
        for f, sample in enumerate(enc["overflow_to_sample_mapping"]):
            in_context = np.asarray([s == 1 for s in enc.sequence_ids(f)])
            offsets = np.asarray(enc["offset_mapping"][f], np.int64).reshape(-1, 2)
            offsets[~in_context] = -1
            rows.setdefault(group[sample], []).append(
                (enc["input_ids"][f], enc["token_type_ids"][f], offsets, in_context)
            )
    ids, types, owner, all_offsets, max_ctx, starts, ends = [], [], [], [], [], [], []
    for index in range(len(examples)):
        windows = rows[index]
        overlap = strides[q_lengths[index]]
        spans = _window_spans([int(w[3].sum()) for w in windows], overlap)
        flags = _max_context_flags(spans)
        answer = examples[index].answers[0] if training and examples[index].answers else None
        doc_offsets = _document_offsets(windows, spans)
        for (token_ids, type_ids, offsets, in_context), (doc_start, _), flag in zip(
            windows, spans, flags, strict=True
        ):
            first = int(np.argmax(in_context))  # where the context starts in the row
            is_max = np.zeros(len(token_ids), bool)
            is_max[first : first + len(flag)] = flag
            start = end = 0
            if answer is not None:
                start, end = _label(answer, doc_offsets, doc_start, first, len(flag))
            ids.append(np.asarray(token_ids, np.int64))
            types.append(np.asarray(type_ids, np.int64))
            owner.append(index)
            all_offsets.append(offsets)
            max_ctx.append(is_max)
            starts.append(start)
            ends.append(end)
    return SquadFeatures(
        Encoded(ids, types, None),
        np.asarray(owner, np.int64),
        all_offsets,
        max_ctx,
        np.asarray(starts, np.int64),
        np.asarray(ends, np.int64),
    )


def _window_spans(lengths: Sequence[int], overlap: int) -> list[tuple[int, int]]:
    """(index of the window's first token in the whole context, window length) per window.

    Each window repeats the last `overlap` context tokens of the one before (tokenizer stride).
    """
    spans, start = [], 0
    for length in lengths:
        spans.append((start, length))
        start += length - overlap
    return spans


def _max_context_flags(spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Google's _check_is_max_context for every token of every window.

    A token seen in several windows belongs to the one where min(left context, right context)
    + 0.01 * window length is largest (the first such window on ties); predictions may start only
    at tokens whose window is their max-context window.
    """
    total = max(start + length for start, length in spans)
    best = np.full(total, -np.inf)
    owner = np.full(total, -1)
    for k, (start, length) in enumerate(spans):
        position = np.arange(length)
        score = np.minimum(position, length - 1 - position) + 0.01 * length
        better = score > best[start : start + length]
        best[start : start + length][better] = score[better]
        owner[start : start + length][better] = k
    return [owner[start : start + length] == k for k, (start, length) in enumerate(spans)]


def _document_offsets(windows: Sequence[tuple], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Character spans of all context tokens, in context order, stitched from the windows."""
    total = max(start + length for start, length in spans)
    doc = np.zeros((total, 2), np.int64)
    for (_, _, offsets, in_context), (start, length) in zip(windows, spans, strict=True):
        doc[start : start + length] = offsets[in_context]
    return doc


def _label(
    answer: Answer, doc_offsets: np.ndarray, doc_start: int, first: int, length: int
) -> tuple[int, int]:
    """Token positions of the answer in this row, or (0, 0) at [CLS] if it is not wholly inside."""
    char_start, char_end = answer.start, answer.start + len(answer.text)
    token_start = int(np.searchsorted(doc_offsets[:, 1], char_start, side="right"))
    token_end = int(np.searchsorted(doc_offsets[:, 0], char_end, side="left")) - 1
    if not doc_start <= token_start <= token_end < doc_start + length:
        return 0, 0
    return first + token_start - doc_start, first + token_end - doc_start

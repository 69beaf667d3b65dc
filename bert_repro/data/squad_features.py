"""BERT's windowed SQuAD features (paper sections 4.2-4.3, Google's run_squad.py).

The fast tokenizer cuts the context into overlapping windows and gives character offsets; the rest
is the paper's recipe written out here: questions cut to `max_query_length` tokens, window starts
`doc_stride` tokens apart (Google's meaning: the step, not Hugging Face's overlap), the max-context
rule for tokens seen in several windows, and answers not inside a window labelled at [CLS].
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bert_repro.data.batching import Encoded
from bert_repro.data.squad import Answer, SquadExample
from bert_repro.errors import UserError


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

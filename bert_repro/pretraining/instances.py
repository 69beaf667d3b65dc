"""Pre-training instances with the semantics of Google's ``create_pretraining_data.py``.

One pass over a document stream turns each document into segment pairs (NSP), truncates them
and masks them (MLM). Unlike Google's script it streams: instead of holding every document to
draw "a random other document" from, it keeps a bounded window of recent and upcoming documents
(:class:`DocumentWindow`), so memory stays flat however large the corpus is.

Objectives (the paper's Table 5 ablations):

- ``"mlm_nsp"``: BERT — masked pairs, B is the true continuation or (50%) from another document.
- ``"mlm"`` (No NSP): the same masked pairs but B is always the true continuation (a document's
  last sentence alone becomes a single segment); ``next_sentence_label`` is always IsNext and
  meant to be ignored.
- ``"ltr"`` (left-to-right LM): one unmasked contiguous segment ``[CLS] text [SEP]`` per chunk;
  the training side shifts ``input_ids`` to get next-token labels.

Deliberate differences from Google's script, each for a stated reason:

- The NotNext segment always comes from a *different* document (sampled from the window without
  the current one). Google's script may draw the current document again (it only retries ten
  times) and label a same-document span NotNext; with a one-document corpus it always does. Here a
  one-document corpus yields no NotNext pairs at all: every chunk keeps its true continuation
  (IsNext), the document's last sentence, if left alone in a chunk, is dropped (it has no
  continuation), and a warning is logged — such a corpus is only useful with
  ``objective="mlm"``.
- The IsNext/NotNext coin decides every chunk, as the paper describes (50% IsNext). Google's
  script forces NotNext whenever a chunk holds one sentence (a sentence longer than the target,
  or a short target), which on book text gives only ~47% IsNext (measured on the Gutenberg books:
  46.9%; Milton and Whitman ~42%). Here a one-sentence chunk that draws IsNext takes the
  document's next sentence as segment B; only a document's last sentence, which has no
  continuation, is forced to NotNext.
- The target length (``short_seq_prob``) is drawn per chunk, not once per document: with
  book-length documents a per-document draw would make whole books short.
- The number of predictions is ``masked_lm_prob`` times the *maskable* tokens; Google's counts
  [CLS] and [SEP] too, which over-masks short sequences (a full 128-token pair gets 19 either
  way).
- Every special token ([CLS], [SEP], [PAD], [MASK], [UNK]) is excluded from masking, and random
  replacements never draw a special or ``[unusedN]`` token.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Literal

import numpy as np

from bert_repro.pretraining.vocab import VocabInfo

if TYPE_CHECKING:  # transformers loads after mindnlp (backend.load_framework)
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

Objective = Literal["mlm_nsp", "mlm", "ltr"]
OBJECTIVES: tuple[str, ...] = ("mlm_nsp", "mlm", "ltr")
IS_NEXT, NOT_NEXT = 0, 1  # HF BertForPreTraining's next_sentence_label convention
NO_DOCUMENT = -1  # doc_b of a single-segment instance
_TOKENIZE_BATCH_SENTENCES = 4096


@dataclass(frozen=True)
class MaskingMix:
    """What happens to a token chosen for prediction (the paper's Table 8 ablation knob)."""

    mask: float = 0.8  # replaced by [MASK]
    random: float = 0.1  # replaced by a random vocabulary token
    keep: float = 0.1  # left unchanged

    def __post_init__(self) -> None:
        parts = (self.mask, self.random, self.keep)
        if min(parts) < 0 or not math.isclose(sum(parts), 1.0, abs_tol=1e-9):
            raise ValueError(f"masking probabilities must be >= 0 and sum to 1, got {parts}")


@dataclass(frozen=True)
class PretrainingDataConfig:
    """Knobs of instance creation; defaults are BERT's (Devlin et al., 2019, Appendix A.2)."""

    max_seq_length: int = 128
    # None -> masked_lm_prob * max_seq_length rounded up to a multiple of five: BERT's 20 at 128
    # and 80 at 512, and at a short CPU-scale phase (5 at 32) no padded slots, which would cost
    # a small model's output layer, most of its step, as much as real predictions.
    max_predictions_per_seq: int | None = None
    masked_lm_prob: float = 0.15
    dupe_factor: int = 10
    short_seq_prob: float = 0.1
    random_next_prob: float = 0.5
    masking: MaskingMix = field(default_factory=MaskingMix)
    whole_word_masking: bool = False
    objective: Objective = "mlm_nsp"
    # Bounds of the pool NotNext segments are drawn from (see DocumentWindow).
    window_documents: int = 1000
    window_tokens: int = 2_000_000
    instances_per_shard: int = 10_000

    def __post_init__(self) -> None:
        if self.max_predictions_per_seq is None:
            derived = math.ceil(self.max_seq_length * self.masked_lm_prob / 5) * 5
            object.__setattr__(self, "max_predictions_per_seq", derived)
        if isinstance(self.masking, dict):  # e.g. from a manifest or a Hydra config
            object.__setattr__(self, "masking", MaskingMix(**self.masking))
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; expected one of {OBJECTIVES}")
        if self.max_seq_length < 5:
            raise ValueError("max_seq_length must leave room for [CLS] A [SEP] B [SEP]")
        for name in ("masked_lm_prob", "short_seq_prob", "random_next_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if self.dupe_factor < 1 or self.instances_per_shard < 1 or self.window_documents < 2:
            raise ValueError("dupe_factor, instances_per_shard >= 1 and window_documents >= 2")


@dataclass(frozen=True, eq=False)
class TokenizedDocument:
    """A document as one id array plus sentence end offsets, so segments are index ranges."""

    doc_id: int
    ids: np.ndarray  # int32, all sentences concatenated
    ends: list[int]  # ends[i] = offset one past sentence i

    def start(self, sentence: int) -> int:
        return self.ends[sentence - 1] if sentence else 0


@dataclass(frozen=True, eq=False)
class PretrainingInstance:
    """One example before padding (the shard writer pads it to the fixed shapes)."""

    input_ids: np.ndarray  # int32 [CLS] A [SEP] (B [SEP]), with the masking applied
    token_type_ids: np.ndarray  # int32, 0 for [CLS] A [SEP], 1 for B [SEP]
    masked_lm_positions: np.ndarray  # int32, ascending
    masked_lm_ids: np.ndarray  # int32, the original ids at those positions
    next_sentence_label: int  # IS_NEXT or NOT_NEXT (always IS_NEXT unless objective "mlm_nsp")
    doc_a: int  # doc_id segment A came from
    doc_b: int  # doc_id segment B came from, NO_DOCUMENT for a single segment


def tokenize_documents(
    documents: Iterable[Sequence[str]], tokenizer: PreTrainedTokenizerFast
) -> Iterator[TokenizedDocument]:
    """Tokenize documents in batches of sentences (the Rust tokenizer is fast only in bulk).

    Documents get consecutive ``doc_id`` s in stream order; empty sentences and documents that
    tokenize to nothing are dropped.
    """
    encode = tokenizer.backend_tokenizer.encode_batch
    doc_id = 0
    pending: list[Sequence[str]] = []
    pending_sentences = 0
    for document in chain(documents, [None]):
        if document is not None:
            pending.append(document)
            pending_sentences += len(document)
            if pending_sentences < _TOKENIZE_BATCH_SENTENCES:
                continue
        encodings = iter(encode([s for d in pending for s in d], add_special_tokens=False))
        for doc in pending:
            sentences = [ids for ids in (next(encodings).ids for _ in doc) if ids]
            if sentences:
                ids = np.fromiter(chain.from_iterable(sentences), dtype=np.int32)
                yield TokenizedDocument(
                    doc_id, ids, np.cumsum([len(s) for s in sentences]).tolist()
                )
                doc_id += 1
        pending, pending_sentences = [], 0


class DocumentWindow:
    """Iterates documents while holding a bounded window of past and upcoming ones.

    NotNext segments are drawn from the window (any document but the current one), standing in
    for Google's "random document of the whole corpus". Up to ``max_documents // 2`` documents
    are read ahead (so the first documents have partners too) and past ones are dropped once the
    window exceeds ``max_documents`` or ``max_tokens``; the current document and one other are
    always kept, so a partner exists whenever the stream has two documents.
    """

    def __init__(
        self, documents: Iterable[TokenizedDocument], max_documents: int, max_tokens: int
    ) -> None:
        self._source = iter(documents)
        self._docs: deque[TokenizedDocument] = deque()
        self._cur = 0  # index in _docs of the document being processed
        self._tokens = 0
        self._max_documents = max_documents
        self._max_tokens = max_tokens
        self._exhausted = False

    def __iter__(self) -> Iterator[TokenizedDocument]:
        while True:
            self._fill()
            if self._cur >= len(self._docs):
                return
            yield self._docs[self._cur]
            self._cur += 1
            self._evict()

    def _fill(self) -> None:
        while not self._exhausted:
            ahead = len(self._docs) - self._cur  # includes the document about to be processed
            full = ahead > self._max_documents // 2 or self._tokens >= self._max_tokens
            if ahead >= 2 and full:
                return
            doc = next(self._source, None)
            if doc is None:
                self._exhausted = True
            else:
                self._docs.append(doc)
                self._tokens += len(doc.ids)

    def _evict(self) -> None:
        while (
            self._cur > 0
            and len(self._docs) > 2
            and (len(self._docs) > self._max_documents or self._tokens > self._max_tokens)
        ):
            self._tokens -= len(self._docs.popleft().ids)
            self._cur -= 1

    def random_other(self, rng: random.Random) -> TokenizedDocument | None:
        """A uniformly drawn window document other than the current one (None if there is none)."""
        if len(self._docs) < 2:
            return None
        index = rng.randrange(len(self._docs) - 1)
        return self._docs[index + (index >= self._cur)]


class _InstanceMaker:
    """Chunking, pairing, truncation and masking for one pass (shares one rng and window)."""

    def __init__(
        self,
        config: PretrainingDataConfig,
        vocab: VocabInfo,
        rng: random.Random,
        window: DocumentWindow,
    ) -> None:
        self.config = config
        self.vocab = vocab
        self.rng = rng
        self.window = window
        self._warned_single_document = False

    def _target_length(self) -> int:
        max_num_tokens = self.config.max_seq_length - 3
        if self.rng.random() < self.config.short_seq_prob:
            return self.rng.randint(2, max_num_tokens)
        return max_num_tokens

    def from_document(self, doc: TokenizedDocument) -> Iterator[PretrainingInstance]:
        """Accumulate sentences into chunks of about the target length; one instance each."""
        ends = doc.ends
        first = 0
        target = self._target_length()
        i = 0
        while i < len(ends):
            if i == len(ends) - 1 or ends[i] - doc.start(first) >= target:
                i, instance = self._chunk_instance(doc, first, i, target)
                if instance is not None:
                    yield instance
                first = i + 1
                target = self._target_length()
            i += 1

    def _chunk_instance(
        self, doc: TokenizedDocument, first: int, last: int, target: int
    ) -> tuple[int, PretrainingInstance | None]:
        """The instance of sentences ``first..last``, and the last sentence it consumed."""
        if self.config.objective == "ltr":
            return last, self._finish(doc, (doc.start(first), doc.ends[last]), None, None, IS_NEXT)
        nsp = self.config.objective == "mlm_nsp"
        other = None
        if nsp and self.rng.random() < self.config.random_next_prob:
            other = self._other_document()
        if other is None and last == first:  # a true continuation needs a second sentence
            if last + 1 < len(doc.ends):
                last += 1
            elif nsp:  # the document's last sentence: there is no continuation
                other = self._other_document()
        num = last - first + 1
        a_end = first + (self.rng.randint(1, num - 1) if num >= 2 else 1)
        span_a = (doc.start(first), doc.ends[a_end - 1])
        if other is not None:
            span_b = self._random_span(other, target - (span_a[1] - span_a[0]))
            # Sentences after segment A were not used: put them back for the next chunk.
            return a_end - 1, self._finish(doc, span_a, other, span_b, NOT_NEXT)
        if a_end <= last:
            span_b = (span_a[1], doc.ends[last])
            return last, self._finish(doc, span_a, doc, span_b, IS_NEXT)
        if not nsp:
            return last, self._finish(doc, span_a, None, None, IS_NEXT)
        return last, None  # last sentence of a one-document corpus: no pair possible

    def _other_document(self) -> TokenizedDocument | None:
        other = self.window.random_other(self.rng)
        if other is None and not self._warned_single_document:
            logger.warning("only one document: no NotNext pairs can be made (use objective 'mlm')")
            self._warned_single_document = True
        return other

    def _random_span(self, doc: TokenizedDocument, target_length: int) -> tuple[int, int]:
        """Whole sentences of ``doc`` from a random one on, until ``target_length`` is reached."""
        start = self.rng.randrange(len(doc.ends))
        end = start
        while end < len(doc.ends) - 1 and doc.ends[end] - doc.start(start) < target_length:
            end += 1
        return doc.start(start), doc.ends[end]

    def _truncate(
        self, span_a: tuple[int, int], span_b: tuple[int, int], limit: int
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Drop tokens from the longer segment, each from the front or back at random."""
        (a0, a1), (b0, b1) = span_a, span_b
        while (a1 - a0) + (b1 - b0) > limit:
            front = self.rng.random() < 0.5
            if a1 - a0 > b1 - b0:
                a0, a1 = (a0 + 1, a1) if front else (a0, a1 - 1)
            else:
                b0, b1 = (b0 + 1, b1) if front else (b0, b1 - 1)
        return (a0, a1), (b0, b1)

    def _finish(
        self,
        doc_a: TokenizedDocument,
        span_a: tuple[int, int],
        doc_b: TokenizedDocument | None,
        span_b: tuple[int, int] | None,
        label: int,
    ) -> PretrainingInstance:
        pair = doc_b is not None and span_b is not None
        limit = self.config.max_seq_length - (3 if pair else 2)
        (a0, a1), (b0, b1) = self._truncate(span_a, span_b if pair else (0, 0), limit)
        len_a, len_b = a1 - a0, b1 - b0
        length = len_a + 2 + (len_b + 1 if pair else 0)
        input_ids = np.empty(length, dtype=np.int32)
        input_ids[0] = self.vocab.cls_id
        input_ids[1 : 1 + len_a] = doc_a.ids[a0:a1]
        input_ids[1 + len_a] = self.vocab.sep_id
        token_type_ids = np.zeros(length, dtype=np.int32)
        if pair:
            input_ids[2 + len_a : -1] = doc_b.ids[b0:b1]
            input_ids[-1] = self.vocab.sep_id
            token_type_ids[2 + len_a :] = 1
        if self.config.objective == "ltr":
            positions = np.zeros(0, dtype=np.int32)
            original = positions
        else:
            positions, original = self._mask(input_ids)
        return PretrainingInstance(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            masked_lm_positions=positions,
            masked_lm_ids=original,
            next_sentence_label=label,
            doc_a=doc_a.doc_id,
            doc_b=doc_b.doc_id if pair else NO_DOCUMENT,
        )

    def _mask(self, input_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Choose prediction positions and corrupt them in place; returns (positions, originals)."""
        config, vocab, rng = self.config, self.vocab, self.rng
        candidates = np.flatnonzero(~vocab.is_special[input_ids]).tolist()
        budget = min(
            config.max_predictions_per_seq,
            max(1, round(len(candidates) * config.masked_lm_prob)),
            len(candidates),
        )
        if config.whole_word_masking:
            chosen: list[int] = []
            words = self._words(input_ids, candidates)
            rng.shuffle(words)
            for word in words:
                if len(chosen) + len(word) <= budget:
                    chosen.extend(word)
                    if len(chosen) == budget:
                        break
        else:
            chosen = rng.sample(candidates, budget)
        positions = np.array(sorted(chosen), dtype=np.int32)
        original = input_ids[positions]
        mix = config.masking
        replacements = vocab.replacement_ids
        for position in positions.tolist():
            draw = rng.random()
            if draw < mix.mask:
                input_ids[position] = vocab.mask_id
            elif draw < mix.mask + mix.random:
                input_ids[position] = replacements[rng.randrange(len(replacements))]
        return positions, original

    def _words(self, input_ids: np.ndarray, candidates: list[int]) -> list[list[int]]:
        """Group candidate positions into words: a ``##`` piece joins the piece just before it."""
        continuation = self.vocab.is_continuation[input_ids].tolist()
        words: list[list[int]] = []
        previous = -2
        for position in candidates:
            if continuation[position] and position == previous + 1:
                words[-1].append(position)
            else:
                words.append([position])
            previous = position
        return words


def iter_instances(
    documents: Iterable[Sequence[str]],
    tokenizer: PreTrainedTokenizerFast,
    config: PretrainingDataConfig,
    rng: random.Random,
    vocab: VocabInfo | None = None,
) -> Iterator[PretrainingInstance]:
    """One pass over ``documents`` (lists of sentences): every pre-training instance, in order.

    ``dupe_factor`` is not applied here (a stream can be read only once); the shard builder
    repeats the pass, passing ``vocab`` (the tokenizer's tables) so they are built once.
    Deterministic given the documents, tokenizer, config and ``rng`` state.
    """
    window = DocumentWindow(
        tokenize_documents(documents, tokenizer), config.window_documents, config.window_tokens
    )
    vocab = VocabInfo.from_tokenizer(tokenizer) if vocab is None else vocab
    maker = _InstanceMaker(config, vocab, rng, window)
    for doc in window:
        yield from maker.from_document(doc)

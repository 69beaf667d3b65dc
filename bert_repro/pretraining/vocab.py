"""WordPiece vocabularies: load BERT's ``vocab.txt`` into a fast tokenizer, or train one.

The builder needs more than ``encode``: which ids are special (never masked), which pieces
continue a word (``##``, for whole-word masking) and which ids may replace a masked token.
:class:`VocabInfo` computes those once per tokenizer as numpy lookup tables.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # transformers loads after mindnlp (backend.load_framework)
    from transformers import BertTokenizerFast, PreTrainedTokenizerFast

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# BERT's [unusedN] slots and the special tokens: never a sensible random replacement.
_BRACKETED = re.compile(r"^\[.+\]$")


def load_wordpiece_tokenizer(
    vocab_file: str | Path, lowercase: bool = True, model_max_length: int = 512
) -> BertTokenizerFast:
    """A fast BERT tokenizer over an existing ``vocab.txt`` (``lowercase`` for uncased vocabs)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(
        vocab_file=str(vocab_file), do_lower_case=lowercase, model_max_length=model_max_length
    )


def train_wordpiece_vocab(
    documents: Iterable[Sequence[str]],
    out_dir: str | Path,
    vocab_size: int = 30522,
    lowercase: bool = True,
    min_frequency: int = 2,
) -> Path:
    """Train a WordPiece vocabulary on streamed documents; returns the written ``vocab.txt``.

    For corpora whose domain or language BERT's released vocabulary does not cover; load the
    result with :func:`load_wordpiece_tokenizer`. Train once and keep the file: the trainer
    breaks frequency ties in hash-map order, so two processes can give different vocabularies
    (three PYTHONHASHSEEDs gave three on the shipped test corpus).
    """
    from tokenizers import BertWordPieceTokenizer  # deferred: only vocabulary training needs it

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = BertWordPieceTokenizer(lowercase=lowercase)
    tokenizer.train_from_iterator(
        (sentence for document in documents for sentence in document),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    return Path(tokenizer.save_model(str(out_dir))[0])


@dataclass(frozen=True, eq=False)
class VocabInfo:
    """Per-id lookup tables the instance builder needs, derived from a fast tokenizer."""

    cls_id: int
    sep_id: int
    mask_id: int
    pad_id: int
    is_special: np.ndarray  # bool[vocab]: never masked ([CLS], [SEP], [PAD], [MASK], [UNK])
    is_continuation: np.ndarray  # bool[vocab]: "##" pieces, joined to the previous word
    replacement_ids: np.ndarray  # int32: ids a "random token" replacement draws from
    fingerprint: str  # sha256 of the id -> token table, recorded in shard manifests

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerFast) -> VocabInfo:
        """Read the tables off ``tokenizer`` (its vocab plus special tokens)."""
        vocab = tokenizer.get_vocab()
        size = max(vocab.values()) + 1
        tokens = [""] * size
        for token, index in vocab.items():
            tokens[index] = token
        is_special = np.zeros(size, dtype=bool)
        is_special[tokenizer.all_special_ids] = True
        is_continuation = np.array([t.startswith("##") for t in tokens], dtype=bool)
        replaceable = ~is_special & ~np.array([bool(_BRACKETED.match(t)) for t in tokens])
        return cls(
            cls_id=tokenizer.cls_token_id,
            sep_id=tokenizer.sep_token_id,
            mask_id=tokenizer.mask_token_id,
            pad_id=tokenizer.pad_token_id,
            is_special=is_special,
            is_continuation=is_continuation,
            replacement_ids=np.flatnonzero(replaceable).astype(np.int32),
            fingerprint=hashlib.sha256("\n".join(tokens).encode()).hexdigest(),
        )

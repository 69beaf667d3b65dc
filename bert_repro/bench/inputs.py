"""Inputs both sides read from one `.npz`: identical token ids, masks and labels by construction."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import numpy as np

from bert_repro.data.batching import Encoded

CLS, SEP, MASK = 101, 102, 103  # bert-base-uncased ids; the rest is drawn above the specials
FIRST_WORD_ID = 999


def pretraining_batch(
    batch: int, seq_len: int, predictions: int, vocab: int, seed: int
) -> dict[str, np.ndarray]:
    """One full-length MLM+NSP batch: `predictions` distinct masked positions per sequence."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(FIRST_WORD_ID, vocab, (batch, seq_len), dtype=np.int64)
    middle = seq_len // 2
    ids[:, 0], ids[:, middle], ids[:, -1] = CLS, SEP, SEP
    types = np.zeros((batch, seq_len), np.int64)
    types[:, middle + 1 :] = 1
    candidates = [p for p in range(1, seq_len - 1) if p != middle]
    positions = np.sort(
        np.stack([rng.choice(candidates, predictions, replace=False) for _ in range(batch)]), 1
    ).astype(np.int64)
    masked_ids = np.take_along_axis(ids, positions, 1)
    np.put_along_axis(ids, positions, MASK, 1)
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": np.ones((batch, seq_len), np.int64),
        "masked_lm_positions": positions,
        "masked_lm_ids": masked_ids,
        "masked_lm_weights": np.ones((batch, predictions), np.float32),
        "next_sentence_label": rng.integers(0, 2, batch, dtype=np.int64),
    }


def pack_encoded(name: str, data: Encoded) -> dict[str, np.ndarray]:
    """Ragged tokenized examples as flat arrays (for `np.savez`) under `name.*`."""
    return {
        f"{name}.ids": np.concatenate(data.input_ids),
        f"{name}.types": np.concatenate(data.token_type_ids),
        f"{name}.offsets": np.concatenate([[0], np.cumsum(data.lengths)]),
        f"{name}.labels": data.labels,
    }


def unpack_encoded(arrays: Mapping[str, np.ndarray], name: str) -> Encoded:
    """The inverse of `pack_encoded`."""
    bounds = arrays[f"{name}.offsets"]
    cut = list(pairwise(bounds))
    return Encoded(
        [arrays[f"{name}.ids"][a:b] for a, b in cut],
        [arrays[f"{name}.types"][a:b] for a, b in cut],
        arrays[f"{name}.labels"],
    )

"""A pre-training step without a corpus: a size preset and a synthetic masked batch.

For what times or checks one step rather than learning anything (the benchmark in benchmarks/,
`python -m bert_repro.doctor`, the backend's tests): identical inputs on every run and on both
sides of a comparison, and no data to download.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bert_repro.config import CONF_DIR, ModelConfig

CLS, SEP, MASK = 101, 102, 103  # bert-base-uncased ids; the rest is drawn above the specials
FIRST_WORD_ID = 999


def model_config(name: str) -> DictConfig:
    """A size preset from conf/model/, validated against the schema (as run.py composes it)."""
    preset = OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")
    return OmegaConf.merge(OmegaConf.structured(ModelConfig), preset)


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

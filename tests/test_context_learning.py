"""The encoder learns to read context from scratch: the behaviour every pre-training preset needs.

A task that only context solves: tokens come in pairs (x x y y ...), and a masked token is its
pair-mate, the token beside it. Predicting it needs attention to a neighbouring position, which a
randomly initialised BERT must form by itself. At BERT's initializer_range (0.02, set for
H=768) a BERT-tiny (H=128) sits on the unigram plateau for hundreds of steps first (PyTorch + HF
alike); the CPU-scale pre-training presets scale the init with width (see their comments).
Each test trains 300 steps (~3 min on 2 cores): `make test-slow` runs them.
"""

import numpy as np
import pytest

from bert_repro.pretraining.synthetic import CLS, FIRST_WORD_ID, MASK, SEP
from tests.conftest import compose

WORDS, LENGTH, BATCH, PREDICTIONS = 100, 16, 16, 4
STEPS = 300


def pair_batch(rows: int, seed: int) -> dict[str, np.ndarray]:
    """`rows` sequences [CLS] a a b b ... [SEP]; in each, PREDICTIONS pairs lose one token."""
    rng = np.random.default_rng(seed)
    words = rng.integers(FIRST_WORD_ID, FIRST_WORD_ID + WORDS, (rows, LENGTH // 2))
    ids = np.repeat(words, 2, axis=1)
    ids[:, 0], ids[:, -1] = CLS, SEP
    inner_pairs = np.arange(1, LENGTH // 2 - 1)  # the first and last pairs hold [CLS] / [SEP]
    pairs = np.sort([rng.choice(inner_pairs, PREDICTIONS, replace=False) for _ in range(rows)])
    positions = 2 * pairs + rng.integers(0, 2, pairs.shape)
    targets = np.take_along_axis(ids, positions, 1)
    np.put_along_axis(ids, positions, MASK, 1)
    return {
        "input_ids": ids,
        "token_type_ids": np.zeros_like(ids),
        "attention_mask": np.ones_like(ids),
        "masked_lm_positions": positions,
        "masked_lm_ids": targets,
        "masked_lm_weights": np.ones(targets.shape, np.float32),
        "next_sentence_label": np.zeros(rows, np.int64),
    }


def pair_accuracy_after_training(framework, tmp_path, initializer_range: float) -> float:
    """Held-out accuracy on the masked tokens after STEPS steps of the tiny preset's optimizer
    (bias-corrected AdamW, lr 1e-3, held constant), BERT-tiny with a 1,100-word vocabulary."""
    from mindnlp.transformers import BertConfig

    from bert_repro import backend
    from bert_repro.models.factory import ARCH_KEYS, DROPOUT_KEYS
    from bert_repro.models.heads import BertPretrainingModel
    from bert_repro.training.loop import make_train_step

    cfg = compose(["+experiment=pretrain_tiny_mlm_nsp"], tmp_path)
    arch = {key: cfg.model[key] for key in (*ARCH_KEYS, *DROPOUT_KEYS)}
    arch.update(vocab_size=FIRST_WORD_ID + WORDS, initializer_range=initializer_range)
    backend.seed_everything(0)
    model = BertPretrainingModel(BertConfig(**arch, bert_repro_objective="mlm_nsp"))
    model.train()
    keys = sorted(pair_batch(1, 0))
    _, step = make_train_step(model, cfg.optim, keys)
    for seed in range(1, STEPS + 1):
        step(pair_batch(BATCH, seed), cfg.optim.lr)
    model.eval()
    heldout = pair_batch(64, 0)
    with backend.no_grad():
        out = model(**{k: backend.to_tensor(v) for k, v in heldout.items()})
    return float((backend.to_numpy(out.token_predictions) == heldout["masked_lm_ids"]).mean())


@pytest.mark.slow
def test_tiny_preset_init_learns_to_read_a_neighbour(framework, tmp_path):
    """Measured (2026-12-03): about 200 steps to 98% (PyTorch + HF, same task and init); ours
    passes in 186 s on 2 idle cores."""
    init = compose(["+experiment=pretrain_tiny_mlm_nsp"], tmp_path).model.initializer_range
    assert init > 0.02  # the width-scaled init, not BERT-base's
    accuracy = pair_accuracy_after_training(framework, tmp_path, init)
    assert accuracy > 0.9, f"masked pair-mates {accuracy:.1%} right after {STEPS} steps (chance 1%)"


@pytest.mark.slow
def test_bert_base_init_is_still_on_the_plateau_at_that_point(framework, tmp_path):
    """The contrast the presets' comment describes: at 0.02 the same run has not yet started
    to read its neighbour (PyTorch + HF: about 450 steps on this task, >3,000 at length 32)."""
    accuracy = pair_accuracy_after_training(framework, tmp_path, 0.02)
    assert accuracy < 0.5, f"masked pair-mates {accuracy:.1%} right after {STEPS} steps"

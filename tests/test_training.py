"""The training loop: schedule, repeatability, and exact resume after an interruption."""

import numpy as np
import pytest
from safetensors.numpy import load_file

from bert_repro.stages.finetune import run as finetune
from bert_repro.training.checkpoint import latest_checkpoint
from bert_repro.training.optim import decays, linear_warmup_decay, warmup_steps_for
from tests.conftest import TINY, compose


def test_warmup_then_linear_decay():
    total, warmup = 100, warmup_steps_for(100, 0.1)
    assert warmup == 10
    assert linear_warmup_decay(0, total, warmup) == pytest.approx(0.1)
    assert linear_warmup_decay(9, total, warmup) == pytest.approx(1.0)
    assert linear_warmup_decay(10, total, warmup) == pytest.approx(1.0)
    assert linear_warmup_decay(55, total, warmup) == pytest.approx(0.5)
    assert linear_warmup_decay(100, total, warmup) == 0.0


def test_no_weight_decay_on_bias_and_layernorm():
    no_decay = ["bias", "LayerNorm.weight"]
    assert decays("bert.encoder.layer.0.attention.self.query.weight", no_decay)
    assert not decays("bert.encoder.layer.0.attention.self.query.bias", no_decay)
    assert not decays("bert.embeddings.LayerNorm.weight", no_decay)


def final_weights(run_dir):
    return load_file(run_dir / "checkpoint" / "model.safetensors")


@pytest.fixture
def run_cfg(tmp_path, tiny_glue):
    def make(*extra):
        base = [*TINY, "task=rte", "data=local", f"data.root={tiny_glue}", "trainer.epochs=2"]
        return compose([*base, "trainer.checkpoint_every=2", *extra], tmp_path)

    return make


def test_same_seed_same_weights_and_resume_is_exact(run_cfg, tmp_path, framework):
    """Interrupt after 5 of 6 steps (mid-epoch), resume: weights equal an uninterrupted run."""
    full = finetune(run_cfg(), tmp_path / "full")
    again = finetune(run_cfg("trainer.resume=false"), tmp_path / "again")
    assert full["optimizer_steps"] == 6  # 24 examples / batch 8 x 2 epochs
    reference = final_weights(tmp_path / "full")
    for name, value in final_weights(tmp_path / "again").items():
        assert np.array_equal(value, reference[name]), f"not repeatable: {name}"
    assert again["metrics"] == full["metrics"]

    interrupted = finetune(run_cfg("trainer.max_steps=5"), tmp_path / "resumed")
    assert interrupted["optimizer_steps"] == 5 and interrupted["status"] == "complete"
    assert interrupted["epochs_trained"] == 1.67 and "epochs_trained" not in full  # 3 steps/epoch
    assert latest_checkpoint(tmp_path / "resumed").name == "step_00000005"
    resumed = finetune(run_cfg(), tmp_path / "resumed")
    assert resumed["resumed_from"].endswith("step_00000005")
    assert resumed["optimizer_steps"] == 6
    for name, value in final_weights(tmp_path / "resumed").items():
        assert np.array_equal(value, reference[name]), f"resume drifted: {name}"


def test_checkpoints_are_pruned_and_complete(run_cfg, tmp_path, framework):
    finetune(run_cfg("trainer.keep_checkpoints=1"), tmp_path / "run")
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == ["step_00000006"]
    files = sorted(p.name for p in (tmp_path / "run" / "checkpoints" / kept[0]).iterdir())
    assert files == ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]


def test_different_seed_gives_different_weights(run_cfg, tmp_path, framework):
    finetune(run_cfg("trainer.max_steps=1"), tmp_path / "a")
    finetune(run_cfg("trainer.max_steps=1", "seed=7"), tmp_path / "b")
    a, b = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert not np.array_equal(a["classifier.weight"], b["classifier.weight"])

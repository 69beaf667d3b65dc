"""Presets, run ids and machine paths: what composing the config decides before anything runs."""

from bert_repro.config import run_id
from tests.conftest import compose

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

"""SWAG: readers (JSON lines, original CSV), bad rows, (B, 4, L) batches, the stage end to end."""

import csv
import json

import numpy as np
import pytest

from bert_repro.data.swag import SAMPLE_FILE, choice_pairs, load_swag, read_swag_file
from bert_repro.errors import UserError
from bert_repro.stages.swag import choice_batch, example_lengths
from bert_repro.stages.swag import run as swag
from tests.conftest import TINY, compose

# The original release's CSV header (train.csv / val.csv).
CSV_COLUMNS = [
    "",
    "video-id",
    "fold-ind",
    "startphrase",
    "sent1",
    "sent2",
    "gold-source",
    "ending0",
    "ending1",
    "ending2",
    "ending3",
    "label",
]


def sample_rows():
    return [json.loads(line) for line in SAMPLE_FILE.read_text().splitlines()]


def write_csv(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for i, row in enumerate(rows):
            ids = {"": i, "video-id": f"v{i}", "fold-ind": i}
            writer.writerow({**ids, "startphrase": f"{row['sent1']} {row['sent2']}", **row})
    return path


def test_sample_csv_and_jsonl_read_alike(tmp_path):
    from_jsonl = read_swag_file(SAMPLE_FILE)
    assert len(from_jsonl) == 10 and all(len(e.endings) == 4 for e in from_jsonl)
    write_csv(tmp_path / "train.csv", sample_rows())
    write_csv(tmp_path / "val.csv", sample_rows()[:4])
    from_csv = load_swag("local", "train", str(tmp_path), "")
    assert [(e.context, e.start, e.endings, e.label) for e in from_csv] == [
        (e.context, e.start, e.endings, e.label) for e in from_jsonl
    ]
    assert len(load_swag("local", "dev", str(tmp_path), "")) == 4


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda row: row.pop("ending3"), "row 2 has no ending3"),
        (lambda row: row.update(label=4), "row 2 has label 4"),
        (lambda row: row.pop("sent1"), "row 2 has no sent1"),
    ],
)
def test_bad_rows_are_one_line_errors(tmp_path, edit, message):
    rows = sample_rows()[:3]
    edit(rows[1])
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(UserError, match=message) as err:
        read_swag_file(path)
    assert "ending0..ending3" in str(err.value) and "\n" not in str(err.value)


def test_missing_files_and_glue_hub_id_name_the_fix(tmp_path):
    with pytest.raises(UserError, match=r"no train\.csv or train\.jsonl"):
        load_swag("local", "train", str(tmp_path), "")
    with pytest.raises(UserError, match="allenai/swag"):
        load_swag("hub", "train", None, "nyu-mll/glue")


def test_four_pairs_per_example_batch_as_b_4_l(framework):
    from transformers import BertTokenizerFast

    from bert_repro.data.batching import encode
    from bert_repro.models.factory import SHIPPED_VOCAB

    tokenizer = BertTokenizerFast(vocab_file=str(SHIPPED_VOCAB), do_lower_case=True)
    examples = read_swag_file(SAMPLE_FILE)
    pairs = choice_pairs(examples)
    assert len(pairs) == 40
    assert pairs[5].text_a == examples[1].context
    assert pairs[5].text_b == f"{examples[1].start} {examples[1].endings[1]}"
    data = encode(pairs, tokenizer, 128, regression=False)
    batch = choice_batch(data, np.array([3, 0]), tokenizer.pad_token_id)
    width = max(len(data.input_ids[i]) for i in [12, 13, 14, 15, 0, 1, 2, 3])
    assert batch["input_ids"].shape == (2, 4, width)  # padded to the batch's longest choice
    assert np.array_equal(batch["input_ids"][0, 2, : len(data.input_ids[14])], data.input_ids[14])
    assert batch["attention_mask"][1, 0].sum() == len(data.input_ids[0])
    assert example_lengths(data)[3] == max(len(data.input_ids[i]) for i in range(12, 16))


def test_preset_carries_the_papers_settings(tmp_path):
    cfg = compose(["+experiment=swag"], tmp_path)
    assert cfg.stage == "swag" and cfg.task.name == "swag"
    assert (cfg.trainer.epochs, cfg.optim.lr, cfg.trainer.batch_size) == (3, 2e-5, 16)
    assert cfg.data.source == "hub" and cfg.data.hub_dataset == "allenai/swag"


def test_swag_stage_runs_end_to_end_on_the_sample(tmp_path, framework):
    overrides = ["+experiment=swag", *TINY, "data=sample", "trainer.batch_size=4"]
    record = swag(compose([*overrides, "trainer.max_steps=2"], tmp_path), tmp_path / "run")
    assert record["stage"] == "swag" and record["task"] == "swag"
    assert record["optimizer_steps"] == 2 and record["headline_metric"] == "accuracy"
    assert 0.0 <= record["metrics"]["accuracy"] <= 100.0
    assert record["data"]["train_is_eval"] is True and record["data"]["eval_examples"] == 10
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()
    stored = tmp_path / "results" / "runs" / "swag" / f"{record['run_id']}.json"
    assert json.loads(stored.read_text())["metrics"] == record["metrics"]

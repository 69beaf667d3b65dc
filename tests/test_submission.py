"""GLUE submission files: WNLI is the training majority class, as the paper submitted it."""

from pathlib import Path

from bert_repro.data.glue import load_local
from bert_repro.predict import majority_label, write_submission
from bert_repro.tasks.glue import get_task

SAMPLES = Path(__file__).resolve().parents[1] / "bert_repro" / "data" / "samples" / "glue"


def test_wnli_submission_is_the_training_majority_class(tmp_path: Path) -> None:
    wnli = get_task("wnli")
    labels = [e.label for e in load_local(wnli, SAMPLES, "train")]
    majority = majority_label(wnli, str(SAMPLES))
    assert labels.count(majority) >= len(labels) / 2
    # No model is needed (or touched) for the paper's rule.
    (path,) = write_submission(None, None, wnli, str(SAMPLES), tmp_path)
    rows = path.read_text().splitlines()
    assert rows[0] == "index\tprediction" and len(rows) > 1
    assert {row.split("\t")[1] for row in rows[1:]} == {wnli.labels[majority]}

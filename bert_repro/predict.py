"""Inference with a fine-tuned checkpoint: label raw sentences, or write a GLUE test submission.

A command line over the GLUE stage's evaluation (`stages/finetune.py`) and the model factory's
`load_finetuned`; what is here is input reading and the submission format.

    python -m bert_repro.predict --model runs/sst2/<run>/checkpoint "a gorgeous film" "a dull mess"
    python -m bert_repro.predict --model <ckpt> --pair "A man is eating." "Someone eats."
    python -m bert_repro.predict --model <ckpt> --file inputs.tsv   # a line each; TAB splits a pair
    python -m bert_repro.predict --model <ckpt> --glue-test /path/to/glue --out submission/

The submission files (<Task>.tsv with `index<TAB>prediction`) are the GLUE leaderboard format,
how the paper's Table 1 was scored. WNLI gets the training majority class, as the paper submitted
(Appendix B.1); --wnli-model-predictions writes the model's instead.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bert_repro import backend
from bert_repro.data.batching import encode
from bert_repro.data.glue import Example, load_local
from bert_repro.errors import UserError
from bert_repro.models.factory import load_finetuned
from bert_repro.stages.finetune import predict_scores, to_predictions
from bert_repro.tasks.glue import GlueTask


def read_inputs(args: argparse.Namespace) -> list[Example]:
    rows: list[tuple[str, str | None]] = [(t, None) for t in args.texts]
    rows += [(a, b) for a, b in args.pair or []]
    if args.file:
        for line in Path(args.file).read_text(encoding="utf-8").splitlines():
            if line.strip():
                a, _, b = line.partition("\t")
                rows.append((a, b or None))
    if not rows:
        raise UserError("nothing to label: give sentences, --pair A B, or --file")
    if len({b is None for _, b in rows}) > 1:
        raise UserError("mix of single sentences and pairs: label them in separate calls")
    return [Example(str(i), a, b, None) for i, (a, b) in enumerate(rows)]


def label_texts(model: Any, tokenizer: Any, task: GlueTask, examples: list[Example]) -> list[str]:
    if task.is_pair != (examples[0].text_b is not None):
        kind = "sentence pairs (--pair A B)" if task.is_pair else "single sentences"
        raise UserError(f"this {task.name} model expects {kind}")
    data = encode(examples, tokenizer, 512, task.is_regression)
    scores = predict_scores(model, data, 32, tokenizer.pad_token_id)
    lines = []
    for example, row in zip(examples, scores, strict=True):
        if task.is_regression:
            answer = f"{row[0]:.3f}"
        else:
            probs = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
            answer = f"{task.labels[int(row.argmax())]}\t{probs.max():.3f}"
        text = (
            example.text_a if example.text_b is None else f"{example.text_a} ||| {example.text_b}"
        )
        lines.append(f"{answer}\t{text}")
    return lines


MAJORITY_CLASS_TASKS = ("wnli",)
"""Submitted as the training majority class: GLUE's WNLI dev/train split is adversarial, so the
paper (Appendix B.1) predicted the majority class; Table 1's Average leaves it out."""


def majority_label(task: GlueTask, glue_root: str) -> int:
    """The most common label of the task's training set (its index in ``task.labels``)."""
    labels = [e.label for e in load_local(task, glue_root, "train")]
    return int(np.bincount(np.asarray(labels, np.int64)).argmax())


def write_submission(
    model: Any,
    tokenizer: Any,
    task: GlueTask,
    glue_root: str,
    out: Path,
    model_predictions: bool = False,
) -> list[Path]:
    """One `<Task>.tsv` per test split (index, prediction), as the GLUE server expects.

    Tasks of :data:`MAJORITY_CLASS_TASKS` get the majority class unless ``model_predictions``.
    """
    written = []
    for split, name in task.submission_names.items():
        examples = load_local(task, glue_root, split)
        if task.name in MAJORITY_CLASS_TASKS and not model_predictions:
            preds = np.full(len(examples), majority_label(task, glue_root))
        else:
            data = encode(examples, tokenizer, 128, task.is_regression)
            scores = predict_scores(model, data, 64, tokenizer.pad_token_id)
            preds = to_predictions(scores, task)
        target = out / f"{name}.tsv"
        out.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tsv.tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["index", "prediction"])
            for example, pred in zip(examples, preds, strict=True):
                value = f"{pred:.3f}" if task.is_regression else task.labels[int(pred)]
                writer.writerow([example.guid, value])
        tmp.replace(target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("texts", nargs="*", help="sentences to label")
    parser.add_argument(
        "--model", required=True, help="fine-tuned checkpoint: <run dir>/checkpoint"
    )
    parser.add_argument(
        "--pair", nargs=2, action="append", metavar=("A", "B"), help="a sentence pair"
    )
    parser.add_argument(
        "--file", help="one input a line; a TAB separates the two sentences of a pair"
    )
    parser.add_argument(
        "--glue-test", metavar="GLUE_DIR", help="write test-set predictions instead"
    )
    parser.add_argument("--out", default="submission", help="folder for --glue-test files")
    parser.add_argument(
        "--wnli-model-predictions",
        action="store_true",
        help="WNLI: write the model's predictions, not the majority class the paper submitted",
    )
    parser.add_argument("--hub-endpoint", default="https://huggingface.co")
    parser.add_argument("--device", default="auto", help="auto | cpu | gpu | ascend")
    args = parser.parse_args(argv)
    backend.configure_hub(args.hub_endpoint, offline=True)
    try:
        backend.load_framework(args.device)
        model, tokenizer, task = load_finetuned(args.model)
        if args.glue_test:
            paths = write_submission(
                model, tokenizer, task, args.glue_test, Path(args.out), args.wnli_model_predictions
            )
            for path in paths:
                print(f"wrote {path}")
        else:
            print("\n".join(label_texts(model, tokenizer, task, read_inputs(args))))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

"""The Hugging Face side of the GLUE agreement study (issue 18), run by the reference interpreter.

What a user of `transformers` gets from run_glue.py: the HF tokenizer on the raw sentence pairs,
`AutoModelForSequenceClassification` from the same weights, and `Trainer` (torch AdamW with bias
correction, BERT's no-decay grouping, linear warmup and decay, clipping, dynamic padding, and, when
asked, its length-grouped sampler). Only the hyper-parameters come from the project's config; the
pipeline is HF's own. Called through `benchmarks.reference` (kind "glue_trainer"); scoring happens
on the project side with the project's metrics.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)


class _Rows(torch.utils.data.Dataset):
    """Tokenized examples as Trainer reads them: one dict per example (lengths from input_ids)."""

    def __init__(self, features: dict[str, list[Any]], labels: list[Any] | None) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.features["input_ids"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = {k: v[i] for k, v in self.features.items()}
        if self.labels is not None:
            row["labels"] = self.labels[i]
        return row


def _rows(tokenizer: Any, examples: dict[str, Any], max_length: int, with_labels: bool) -> _Rows:
    pairs = [examples["text_a"]] + ([examples["text_b"]] if examples["text_b"] else [])
    features = tokenizer(*pairs, truncation=True, max_length=max_length)
    return _Rows(dict(features), examples["labels"] if with_labels else None)


def predict_in_order(trainer: Trainer, dataset: torch.utils.data.Dataset) -> np.ndarray:
    """`trainer.predict`'s logits, one row per example in the dataset's order.

    Since transformers PR #33514 (2024), `group_by_length` also length-groups predict()'s batches
    (a random LengthGroupedSampler), so the rows come back shuffled and cannot be matched to their
    labels: scored against dev, a good model looked worse than chance (issue 18, session 7).
    Training keeps the grouping; prediction runs in order.
    """
    grouped = trainer.args.group_by_length
    trainer.args.group_by_length = False
    try:
        return trainer.predict(dataset).predictions
    finally:
        trainer.args.group_by_length = grouped


def glue_trainer(job: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune with `Trainer` as the job says, then predict dev: predictions and timings."""
    hp = job["hparams"]
    regression = job["num_labels"] == 1
    tokenizer = AutoTokenizer.from_pretrained(job["model_dir"])
    model = AutoModelForSequenceClassification.from_pretrained(
        job["model_dir"],
        num_labels=job["num_labels"],
        hidden_dropout_prob=hp["hidden_dropout_prob"],
        attention_probs_dropout_prob=hp["attention_probs_dropout_prob"],
    )
    train = _rows(tokenizer, job["train"], hp["max_seq_length"], with_labels=True)
    dev = _rows(tokenizer, job["dev"], hp["max_seq_length"], with_labels=False)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            learning_rate=hp["lr"],
            num_train_epochs=hp["epochs"],
            per_device_train_batch_size=hp["batch_size"],
            per_device_eval_batch_size=hp["eval_batch_size"],
            warmup_ratio=hp["warmup_ratio"],
            weight_decay=hp["weight_decay"],
            adam_beta1=hp["betas"][0],
            adam_beta2=hp["betas"][1],
            adam_epsilon=hp["eps"],
            max_grad_norm=hp["max_grad_norm"],
            lr_scheduler_type="linear",
            group_by_length=hp["group_by_length"],
            seed=job["seed"],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        started = time.perf_counter()
        result = trainer.train()
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        logits = predict_in_order(trainer, dev)
    predictions = logits[:, 0] if regression else np.argmax(logits, axis=-1)
    return {
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "optimizer_steps": result.global_step,
        "train_loss": result.training_loss,
        "real_tokens": int(sum(len(ids) for ids in train.features["input_ids"]) * hp["epochs"]),
        "predictions": predictions.tolist(),
    }

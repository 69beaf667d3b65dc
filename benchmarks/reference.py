"""The PyTorch + Hugging Face side, run by the reference interpreter (`--ref-python`):

    <ref-python> -m benchmarks.reference job.json result.json

It never runs in the project's environment (there `import torch` is mindtorch). Besides torch,
transformers and numpy it imports only numpy-only project modules, so the data it trains on is
batched by the project's own `collate`/`epoch_batches` from the ids the project side wrote.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from torch.nn import functional as F
from transformers import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from transformers.models.bert.modeling_bert import BertPreTrainedModel, BertPreTrainingHeads

from benchmarks.flops import Shape
from benchmarks.inputs import unpack_encoded
from benchmarks.ops import op_cases
from benchmarks.stats import time_calls
from bert_repro.data.batching import Encoded, collate, epoch_batches, eval_batches

NO_DECAY = ("bias", "LayerNorm.weight")


class MaskedOnlyPretraining(BertPreTrainedModel):
    """HF's BertModel + BertPreTrainingHeads, the MLM head run only at the masked positions.

    The same computation as the project's `BertPretrainingModel` (gather, then score), written
    for real PyTorch: the project's class subclasses mindnlp's and cannot load here.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.post_init()

    def get_output_embeddings(self) -> Any:
        return self.cls.predictions.decoder

    def scores(self, input_ids, attention_mask, token_type_ids, masked_lm_positions):
        """MLM logits at the masked positions and the NSP logits."""
        out = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        index = masked_lm_positions.unsqueeze(-1).expand(-1, -1, self.config.hidden_size)
        gathered = torch.gather(out.last_hidden_state, 1, index)
        return self.cls(gathered, out.pooler_output)

    def forward(
        self,
        input_ids,
        attention_mask,
        token_type_ids,
        masked_lm_positions,
        masked_lm_ids,
        masked_lm_weights,
        next_sentence_label=None,
    ):
        logits, nsp_logits = self.scores(
            input_ids, attention_mask, token_type_ids, masked_lm_positions
        )
        losses = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), masked_lm_ids.reshape(-1), reduction="none"
        )
        weights = masked_lm_weights.reshape(-1)
        mlm = (losses * weights).sum() / (weights.sum() + 1e-5)
        if next_sentence_label is None:  # the `mlm` objective (No NSP)
            return mlm
        return mlm + F.cross_entropy(nsp_logits, next_sentence_label)


def _full_head_inputs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same batch as users feed BertForPreTraining: labels at every position, -100 = none."""
    labels = np.full_like(batch["input_ids"], -100)
    np.put_along_axis(labels, batch["masked_lm_positions"], batch["masked_lm_ids"], 1)
    keys = ("input_ids", "token_type_ids", "attention_mask", "next_sentence_label")
    return {**{k: batch[k] for k in keys}, "labels": labels}


def bert_adamw(model: Any, lr: float, weight_decay: float, eps: float) -> torch.optim.AdamW:
    """torch's AdamW with BERT's grouping: no decay on biases and LayerNorm weights."""
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not any(k in n for k in NO_DECAY)]},
        {"params": [p for n, p in named if any(k in n for k in NO_DECAY)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, eps=eps)


def pretrain_steps(job: dict[str, Any], case: dict[str, Any], variant: str) -> list[float]:
    """Seconds per training step (forward, backward, clip, AdamW) of one model variant."""
    torch.manual_seed(job["seed"])
    config = BertConfig(**case["arch"])
    with np.load(case["inputs"]) as data:
        batch = {k: data[k] for k in data.files}
    if variant == "hf_full":
        model, batch = BertForPreTraining(config), _full_head_inputs(batch)
    else:
        model = MaskedOnlyPretraining(config)
    model.train()
    optimizer = bert_adamw(model, job["lr"], weight_decay=0.01, eps=1e-6)

    def step() -> float:
        out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
        loss = out.loss if variant == "hf_full" else out
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return time_calls(step, job["warmup"], job["reps"])


def _widen(batch: dict[str, np.ndarray], width: int, pad_id: int) -> dict[str, np.ndarray]:
    """Pad a collated batch on to `width` tokens (run_glue.py's pad_to_max_length default)."""
    extra = width - batch["input_ids"].shape[1]
    padded = {k: np.pad(v, ((0, 0), (0, extra))) for k, v in batch.items() if v.ndim == 2}
    padded["input_ids"][:, width - extra :] = pad_id
    return {**batch, **padded}


def _batches(
    data: Encoded, order: list[np.ndarray], job: dict[str, Any], pad_all: bool
) -> list[dict[str, np.ndarray]]:
    batches = [collate(data, index, job["pad_id"]) for index in order]
    return (
        [_widen(b, job["max_seq_length"], job["pad_id"]) for b in batches] if pad_all else batches
    )


def finetune_epoch(job: dict[str, Any], variant: str) -> dict[str, Any]:
    """One epoch as run_glue.py trains (AdamW, linear schedule, no warmup), then dev predictions.

    `hf_pad128` pads every batch to max_seq_length (run_glue's default), `hf_dynamic` pads each
    batch to its longest sequence; both visit the examples in a random order (no grouping).
    """
    torch.manual_seed(job["seed"])
    with np.load(job["inputs"]) as data:
        arrays = {k: data[k] for k in data.files}
    train, dev = unpack_encoded(arrays, "train"), unpack_encoded(arrays, "dev")
    pad_all = variant == "hf_pad128"
    order = epoch_batches(train.lengths, job["batch_size"], job["seed"], 0, group_by_length=False)
    batches = _batches(train, order, job, pad_all)
    model = BertForSequenceClassification.from_pretrained(
        job["model_dir"], num_labels=job["num_labels"]
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=job["lr"], weight_decay=0.0)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, 0, len(batches))

    model.train()
    started = time.perf_counter()
    for batch in batches:
        loss = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    final_loss = loss.item()
    train_seconds = time.perf_counter() - started

    model.eval()
    started = time.perf_counter()
    predictions = np.zeros(len(dev), np.int64)
    with torch.no_grad():
        for index in eval_batches(dev.lengths, job["eval_batch_size"]):
            batch = _batches(dev, [index], job, pad_all)[0]
            batch.pop("labels")
            logits = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits
            predictions[index] = logits.argmax(-1).numpy()
    return {
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "steps": len(batches),
        "real_tokens": int(sum(b["attention_mask"].sum() for b in batches)),
        "computed_tokens": int(sum(b["attention_mask"].size for b in batches)),
        "final_loss": final_loss,
        "predictions": predictions.tolist(),
    }


def op_times(job: dict[str, Any], shape: Shape) -> dict[str, dict[str, list[float]]]:
    """Seconds of each building block, forward + backward and forward alone (part e)."""
    times = {}
    for name, (params, loss) in op_cases(torch, shape).items():

        def train(params: list[Any] = params, loss: Any = loss) -> float:
            loss().backward()
            value = params[0].grad.sum().item()
            for param in params:
                param.grad = None
            return value

        def forward(loss: Any = loss) -> float:
            with torch.no_grad():
                return loss().item()

        times[name] = {
            "train": time_calls(train, job["warmup"], job["reps"]),
            "forward": time_calls(forward, job["warmup"], job["reps"]),
        }
    return times


def versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def main(job_path: str, out_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    torch.set_num_threads(job["threads"])
    result: dict[str, Any] = {"versions": versions(), "threads": torch.get_num_threads()}
    if job["kind"] == "pretrain":
        result["runs"] = {
            case["name"]: {v: pretrain_steps(job, case, v) for v in job["variants"]}
            for case in job["cases"]
        }
    elif job["kind"] == "glue_trainer":
        from benchmarks.hf_trainer import glue_trainer  # imports transformers' Trainer stack

        result["run"] = glue_trainer(job)
    elif job["kind"] == "pretrain_curve":
        from benchmarks.hf_pretrain import pretrain_curve

        result["run"] = pretrain_curve(job)
    elif job["kind"] == "ops":
        result["runs"] = {
            model: op_times(job, Shape(**shape)) for model, shape in job["shapes"].items()
        }
    else:
        result["runs"] = {v: finetune_epoch(job, v) for v in job["variants"]}
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:3])

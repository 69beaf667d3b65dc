"""Part (a): a pre-training step at each size preset, ours against PyTorch + HF.

Ours is the project's own step: `build_pretraining_model` (masked-only MLM head + NSP),
`backend.value_and_grad`, global-norm clipping and the fused AdamWeightDecay, as `fit` runs them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from omegaconf import DictConfig, OmegaConf

from benchmarks.flops import Shape
from benchmarks.harness import Context, hf_arch, run_reference
from benchmarks.stats import summarize, time_calls
from benchmarks.table import Row
from bert_repro import backend
from bert_repro.config import OptimConfig
from bert_repro.pretraining.synthetic import model_config, pretraining_batch

LR = 1e-4  # BERT's pre-training learning rate; the step costs the same at any value
VARIANTS = {
    "hf_masked": "PyTorch + HF BertModel, same masked-only head",
    "hf_full": "PyTorch + HF BertForPreTraining (MLM logits at all positions)",
}


def our_train_step(
    model_cfg: DictConfig, batch: dict[str, np.ndarray], seed: int
) -> Callable[[], float]:
    """One training step of our stack on `batch`, as `fit` runs it; returns the loss."""
    from bert_repro.models.factory import build_pretraining_model
    from bert_repro.pretraining.objectives import get_objective
    from bert_repro.training.loop import make_train_step

    optim = OmegaConf.structured(OptimConfig)
    backend.seed_everything(seed)
    model, _, _ = build_pretraining_model(model_cfg, get_objective("mlm_nsp"))
    model.train()
    _, train_step = make_train_step(model, optim, sorted(batch))

    def step() -> float:
        return train_step(batch, LR)[0]

    return step


def _our_step_seconds(
    ctx: Context, model_cfg: DictConfig, batch: dict[str, np.ndarray]
) -> list[float]:
    step = our_train_step(model_cfg, batch, ctx.args.seed)
    return time_calls(step, ctx.args.warmup, ctx.args.reps)


def step_shape(ctx: Context, model_cfg: DictConfig) -> Shape:
    """The benchmark's step shape for one size preset (parts a, d and e)."""
    args = ctx.args
    return Shape(
        layers=model_cfg.num_hidden_layers,
        hidden=model_cfg.hidden_size,
        intermediate=model_cfg.intermediate_size,
        vocab=model_cfg.vocab_size,
        batch=args.batch,
        seq_len=args.seq_len,
        predictions=args.predictions,
        heads=model_cfg.num_attention_heads,
        dropout=model_cfg.attention_probs_dropout_prob,
    )


def our_step_times(ctx: Context) -> dict[str, list[float]]:
    """Our step times per model, measured once per run (parts a and d both need them)."""
    store = ctx.raw.setdefault("pretrain_step", {"ours": {}, "inputs": {}})
    args = ctx.args
    for name in args.models:
        if name in store["ours"]:
            continue
        model_cfg = model_config(name)
        batch = pretraining_batch(
            args.batch, args.seq_len, args.predictions, model_cfg.vocab_size, args.seed
        )
        path = ctx.work / f"pretrain-{name}.npz"
        np.savez(path, **batch)
        print(f"  ours: {name} pre-training step", flush=True)
        store["ours"][name] = _our_step_seconds(ctx, model_cfg, batch)
        store["inputs"][name] = str(path)
    return store["ours"]


def step_part(ctx: Context) -> None:
    """(a) ms/step of ours vs PyTorch + HF with the same head, and vs BertForPreTraining."""
    args = ctx.args
    ours = our_step_times(ctx)
    store = ctx.raw["pretrain_step"]
    cases = [
        {"name": n, "arch": hf_arch(model_config(n)), "inputs": store["inputs"][n]}
        for n in args.models
    ]
    job = {
        "kind": "pretrain",
        "cases": cases,
        "variants": list(VARIANTS),
        "warmup": args.warmup,
        "reps": args.reps,
        "lr": LR,
    }
    store["reference"] = run_reference(ctx, job, "pretrain")["runs"]
    tokens = args.batch * args.seq_len
    for name in args.models:
        mine = summarize(ours[name], 1000)
        for variant, label in VARIANTS.items():
            ref = summarize(store["reference"][name][variant], 1000)
            note = (
                f"tokens/s {tokens / mine['median'] * 1000:,.0f} vs "
                f"{tokens / ref['median'] * 1000:,.0f}"
            )
            case = f"{name} {args.batch}x{args.seq_len}, {args.predictions} masked"
            ctx.rows.append(Row("a", case, "ms/step", mine, label, ref, False, note))

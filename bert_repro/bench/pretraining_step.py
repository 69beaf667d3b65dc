"""Parts (a) and (d): a pre-training step, ours against PyTorch + HF, and its share of the peak.

Ours is the project's own step: `build_pretraining_model` (masked-only MLM head + NSP),
`backend.value_and_grad`, global-norm clipping and the fused AdamWeightDecay, as `fit` runs them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bert_repro import backend
from bert_repro.bench.flops import Shape, matmul_flops, step_flops
from bert_repro.bench.harness import Context, hf_arch, model_config, run_reference
from bert_repro.bench.inputs import pretraining_batch
from bert_repro.bench.stats import invert, summarize, time_calls
from bert_repro.bench.table import Row, single
from bert_repro.config import OptimConfig

LR = 1e-4  # BERT's pre-training learning rate; the step costs the same at any value
VARIANTS = {
    "hf_masked": "PyTorch + HF BertModel, same masked-only head",
    "hf_full": "PyTorch + HF BertForPreTraining (MLM logits at all positions)",
}


def _our_step_seconds(
    ctx: Context, model_cfg: DictConfig, batch: dict[str, np.ndarray]
) -> list[float]:
    from bert_repro.pretrain import build_pretraining_model
    from bert_repro.pretraining.objectives import get_objective
    from bert_repro.training.loop import make_train_step

    optim = OmegaConf.structured(OptimConfig)
    backend.seed_everything(ctx.args.seed)
    model, _, _ = build_pretraining_model(model_cfg, get_objective("mlm_nsp"))
    model.train()
    _, train_step = make_train_step(model, optim, sorted(batch))

    def step() -> float:
        return train_step(batch, LR)[0]

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


def _ours(ctx: Context) -> dict[str, list[float]]:
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
    ours = _ours(ctx)
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


def _matmul_seconds(n: int, reps: int) -> dict[str, list[float]]:
    import mindspore

    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    ta, tb = mindspore.Tensor(a), mindspore.Tensor(b)
    return {
        "numpy": time_calls(lambda: a @ b, 1, reps),
        "mindspore": time_calls(lambda: mindspore.ops.matmul(ta, tb).asnumpy(), 1, reps),
    }


def flops_part(ctx: Context) -> None:
    """(d) achieved FLOP/s of our step (analytic count) as a fraction of the dense matmul peak."""
    args = ctx.args
    n = args.matmul_size
    print(f"  dense matmul {n}^3 float32 (numpy, MindSpore)", flush=True)
    seconds = _matmul_seconds(n, max(args.reps, 3))
    rates = {k: invert(summarize(v), matmul_flops(n) / 1e9) for k, v in seconds.items()}
    peak = max(r["max"] for r in rates.values())
    ctx.rows.append(
        Row(
            "d",
            f"dense matmul {n}^3 float32",
            "GFLOP/s",
            rates["mindspore"],
            "numpy",
            rates["numpy"],
            True,
        )
    )
    ours = _ours(ctx)
    reference = ctx.raw["pretrain_step"].get("reference", {})
    counts = {}
    for name in args.models:
        shape = step_shape(ctx, model_config(name))
        flops = step_flops(shape)
        counts[name] = {
            "masked_only": flops,
            "full_head": step_flops(replace(shape, predictions=args.seq_len)),
        }
        note = f"{flops['total'] / 1e9:.1f} GFLOP/step"
        if name in reference:
            ref_rate = invert(summarize(reference[name]["hf_masked"]), flops["total"] / 1e9)
            note += f"; PyTorch masked-only {ref_rate['median'] / peak:.0%} of peak"
        mine = invert(summarize(ours[name]), flops["total"] / 1e9)
        ctx.rows.append(
            Row(
                "d",
                f"{name} pre-training step",
                "GFLOP/s",
                mine,
                "dense matmul peak (best)",
                single(peak),
                None,
                note,
            )
        )
    ctx.raw["flops"] = {
        "matmul_seconds": seconds,
        "matmul_size": n,
        "peak_gflops": peak,
        "per_step": counts,
    }

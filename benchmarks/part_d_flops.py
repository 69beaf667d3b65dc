"""Part (d): our step's achieved FLOP/s (analytic count) against the dense matmul peak."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from benchmarks.flops import matmul_flops, step_flops
from benchmarks.harness import Context
from benchmarks.part_a_step import our_step_times, step_shape
from benchmarks.stats import invert, summarize, time_calls
from benchmarks.table import Row, single
from bert_repro.pretraining.synthetic import model_config


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
    ours = our_step_times(ctx)
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

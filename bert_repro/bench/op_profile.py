"""Part (e): the step's building blocks, forward + backward, ours against PyTorch.

Part (a) says how much slower our step is; this part says where. Each block of `ops.py` runs
at the shapes of the first model of part (a) on both sides. The project side runs what
mindnlp's BERT runs: mindtorch's kernels, with the patches of `bert_repro.backend` applied.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bert_repro import backend
from bert_repro.bench.flops import Shape
from bert_repro.bench.harness import Context, model_config, run_reference
from bert_repro.bench.ops import PER_LAYER, op_cases
from bert_repro.bench.pretraining_step import step_shape
from bert_repro.bench.stats import summarize, time_calls
from bert_repro.bench.table import Row, fmt


def _ours(shape: Shape, warmup: int, reps: int) -> dict[str, dict[str, list[float]]]:
    import mindspore

    torch = backend.load_framework()
    times = {}
    cases = op_cases(torch, shape, token_loss=backend.token_cross_entropy)
    for name, (params, loss) in cases.items():
        grad_fn = backend.value_and_grad(loss, params)

        def train(grad_fn: Any = grad_fn) -> float:
            # read a reduction of the first gradient back, as the reference does: a finished step
            _, grads = grad_fn()
            return float(mindspore.ops.reduce_sum(grads[0]))

        def forward(loss: Any = loss) -> float:
            with backend.no_grad():
                return float(loss())

        times[name] = {
            "train": time_calls(train, warmup, reps),
            "forward": time_calls(forward, warmup, reps),
        }
    return times


def op_part(ctx: Context) -> None:
    """(e) ms per block, forward + backward (forward alone in the note)."""
    args = ctx.args
    shape = step_shape(ctx, model_config(args.models[0]))
    print(f"  ours: blocks at {args.models[0]} shapes", flush=True)
    ours = _ours(shape, args.warmup, args.reps)
    job = {"kind": "ops", "shape": asdict(shape), "warmup": args.warmup, "reps": args.reps}
    reference = run_reference(ctx, job, "ops")["runs"]
    ctx.raw["ops"] = {"shape": asdict(shape), "ours": ours, "reference": reference}
    for name, mine in ours.items():
        ref = reference[name]
        forward = (summarize(mine["forward"], 1000), summarize(ref["forward"], 1000))
        note = f"forward alone {fmt(forward[0]['median'])} vs {fmt(forward[1]['median'])} ms"
        if name in PER_LAYER:
            note = f"{PER_LAYER[name]}x per layer; {note}"
        ctx.rows.append(
            Row(
                "e",
                f"{name}, {args.models[0]} shapes",
                "ms fwd+bwd",
                summarize(mine["train"], 1000),
                "PyTorch, same op",
                summarize(ref["train"], 1000),
                False,
                note,
            )
        )

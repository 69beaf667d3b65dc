"""Part (e): the step's building blocks, forward + backward, ours against PyTorch.

Part (a) says how much slower our step is; this part says where. Each block of `ops.py` runs
at the shapes of each model of part (a) on both sides. The project side runs what
mindnlp's BERT runs: mindtorch's kernels, with the patches of `bert_repro.backend` applied.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from benchmarks.flops import Shape
from benchmarks.harness import Context, run_reference
from benchmarks.ops import PER_LAYER, op_cases
from benchmarks.part_a_step import step_shape
from benchmarks.stats import summarize, time_calls
from benchmarks.table import Row, fmt
from bert_repro import backend
from bert_repro.pretraining.synthetic import model_config


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
    """(e) ms per block, forward + backward (forward alone in the note), at each model's shapes."""
    args = ctx.args
    shapes = {name: step_shape(ctx, model_config(name)) for name in args.models}
    ours = {}
    for name, shape in shapes.items():
        print(f"  ours: blocks at {name} shapes", flush=True)
        ours[name] = _ours(shape, args.warmup, args.reps)
    job = {
        "kind": "ops",
        "shapes": {name: asdict(shape) for name, shape in shapes.items()},
        "warmup": args.warmup,
        "reps": args.reps,
    }
    reference = run_reference(ctx, job, "ops")["runs"]
    ctx.raw["ops"] = {"shapes": job["shapes"], "ours": ours, "reference": reference}
    for model, blocks in ours.items():
        for name, mine in blocks.items():
            ref = reference[model][name]
            forward = (summarize(mine["forward"], 1000), summarize(ref["forward"], 1000))
            note = f"forward alone {fmt(forward[0]['median'])} vs {fmt(forward[1]['median'])} ms"
            if name in PER_LAYER:
                note = f"{PER_LAYER[name]}x per layer; {note}"
            ctx.rows.append(
                Row(
                    "e",
                    f"{name}, {model} shapes",
                    "ms fwd+bwd",
                    summarize(mine["train"], 1000),
                    "PyTorch, same op",
                    summarize(ref["train"], 1000),
                    False,
                    note,
                )
            )

"""Data parallelism across the processes MindSpore's launcher (`msrun`) starts, one per device.

msrun 2.7 starts each worker with MS_ROLE=MS_WORKER and MS_WORKER_NUM=<workers> (also RANK_ID,
RANK_SIZE, DEVICE_ID); seeing them is the switch, so the same command runs alone or under msrun.
Every rank builds the same global batch and computes the loss and gradients of its contiguous
share of the rows; the shares' gradients, weighted by rows, are summed across ranks before
clipping and the optimizer step. Each rank thus applies the update one process would have made
with the whole batch, so the global batch (the science) is unchanged and the ranks stay equal.
Only rank 0 writes checkpoints, logs, the model and the record.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class World:
    rank: int
    size: int


_WORLD: World | None = None


def launched() -> bool:
    """True in a process msrun started (a worker or its scheduler) for more than one worker."""
    role = os.environ.get("MS_ROLE")
    return role in ("MS_WORKER", "MS_SCHED") and int(os.environ.get("MS_WORKER_NUM", 1)) > 1


def world() -> World:
    """This process's rank and the number of ranks; joins msrun's group on first use.

    msrun also runs the script in its scheduler process (MS_ROLE=MS_SCHED), whose `init()`
    serves the workers until they finish; it must never go on to train, so it exits here.
    Call this before any early return: the group forms only once every worker has joined.
    """
    global _WORLD
    if _WORLD is None:
        _WORLD = World(0, 1)
        if launched():
            from mindspore.communication import get_group_size, get_rank, init

            init()
            if os.environ["MS_ROLE"] == "MS_SCHED":
                raise SystemExit(0)
            _WORLD = World(get_rank(), get_group_size())
    return _WORLD


def is_main() -> bool:
    return world().rank == 0


def shard(rows: int) -> slice:
    """This rank's contiguous share of `rows` rows (the first `rows % size` ranks get one more)."""
    rank, size = world().rank, world().size
    base, extra = divmod(rows, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def all_reduce_sum(grads: Sequence[Any], loss: float) -> tuple[list[Any], float]:
    """Sum gradients and loss over the ranks in one collective (one flat buffer, not one per
    tensor: each collective costs a round trip)."""
    import mindspore

    ops = mindspore.ops  # raw MindSpore ops: the grads carry no mindtorch device
    loss_tensor = mindspore.Tensor([loss], grads[0].dtype)
    flat = ops.AllReduce()(ops.cat([ops.reshape(g, (-1,)) for g in grads] + [loss_tensor]))
    pieces = ops.split(flat, [int(np.prod(g.shape)) for g in grads] + [1])
    summed = [ops.reshape(p, g.shape) for p, g in zip(pieces, grads, strict=False)]
    return summed, float(pieces[-1].asnumpy()[0])


def barrier() -> None:
    """Wait for every rank. An all-reduce of one number: MindSpore has no Barrier kernel on CPU
    ("Unsupported op [Barrier] on CPU")."""
    if world().size > 1:
        import mindspore

        mindspore.ops.AllReduce()(mindspore.Tensor([1.0], mindspore.float32)).asnumpy()


def check_same_weights(params: Sequence[Any]) -> None:
    """Fail if the ranks hold different weights (at the start they would silently diverge; at
    the end it proves every rank applied the same updates). Compares sum(|w|) across ranks."""
    rank, size = world().rank, world().size
    if size == 1:
        return
    import mindspore

    ops = mindspore.ops
    total = ops.addn([ops.reduce_sum(ops.abs(p.astype(mindspore.float32))) for p in params])
    slots = np.zeros(size, np.float32)  # a gather through a sum: CPU AllReduce only sums
    slots[rank] = float(total)
    gathered = ops.AllReduce()(mindspore.Tensor(slots)).asnumpy()
    if len(set(gathered.tolist())) != 1:
        raise RuntimeError(f"rank {rank}: the ranks hold different weights (sum |w|: {gathered})")

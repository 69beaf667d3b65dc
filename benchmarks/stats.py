"""Timing with warm-up and repetitions, summarised as median and spread (shared by both sides)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def time_calls(fn: Callable[[], Any], warmup: int, reps: int) -> list[float]:
    """Seconds of each of `reps` calls of `fn`, after `warmup` untimed calls.

    `fn` must return only once its work is done (e.g. by reading the loss back to the host):
    both frameworks may otherwise return before the computation ends.
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def summarize(samples: list[float], scale: float = 1.0) -> dict[str, float]:
    """Median, min, max, quartiles and count of `samples`, each multiplied by `scale`."""
    if not samples:
        raise ValueError("no samples to summarize")
    values = sorted(v * scale for v in samples)
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return {
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "q1": q1,
        "q3": q3,
        "n": len(values),
    }


def invert(summary: dict[str, float], numerator: float) -> dict[str, float]:
    """A time summary as a rate (`numerator` per second): the fastest time is the highest rate."""
    return {
        "median": numerator / summary["median"],
        "min": numerator / summary["max"],
        "max": numerator / summary["min"],
        "q1": numerator / summary["q3"],
        "q3": numerator / summary["q1"],
        "n": summary["n"],
    }

"""Tolerances for statistical assertions, derived from the sample a test draws.

Four standard deviations: a correct implementation fails by chance with probability < 1e-4
(normal approximation), whatever corpus, vocabulary or sample size the test happens to use.
"""

import math

SIGMAS = 4.0


def binomial_ok(count: int, n: int, p: float, sigmas: float = SIGMAS) -> bool:
    """Whether `count` successes in `n` draws is within `sigmas` sd of Binomial(n, p)'s mean."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def assert_binomial(count: int, n: int, p: float, label: str, sigmas: float = SIGMAS) -> None:
    band = sigmas * math.sqrt(p * (1 - p) / n)
    assert binomial_ok(count, n, p, sigmas), (
        f"{label}: {count}/{n} = {count / n:.4f}, expected {p:.4f} ± {band:.4f} ({sigmas:g} sd)"
    )

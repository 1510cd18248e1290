"""Statistics for offline comparisons and online experiments: pure functions, seeded, no SciPy needed.

- ``bootstrap_ci``: percentile bootstrap of a mean;
- ``paired_randomization``: two-sided sign-flip test of a mean paired difference (exact for
  small n, Monte Carlo otherwise) — the standard significance test in IR evaluation;
- ``two_proportion_z``: CTR or zero-result-rate difference between two variants;
- ``srm_chi_square``: sample-ratio mismatch guard (observed vs configured traffic shares);
- ``binomial_two_sided``: the sign test for interleaving wins vs losses.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - level) / 2 * 100
    return (percentile(means, tail), percentile(means, 100 - tail))


def paired_randomization(a: Sequence[float], b: Sequence[float], resamples: int = 10_000,
                         seed: int = 0) -> float:
    """Two-sided p-value that mean(b - a) == 0, by randomly swapping each pair's labels."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    diffs = [y - x for x, y in zip(a, b)]
    observed = abs(sum(diffs))
    if observed == 0:
        return 1.0
    nonzero = [d for d in diffs if d != 0]
    if len(nonzero) <= 16:  # exact: enumerate every sign assignment
        count = 0
        for mask in range(1 << len(nonzero)):
            total = sum(d if mask >> i & 1 else -d for i, d in enumerate(nonzero))
            count += abs(total) >= observed - 1e-12
        return count / (1 << len(nonzero))
    rng = random.Random(seed)
    extreme = sum(abs(sum(d if rng.random() < 0.5 else -d for d in nonzero)) >= observed - 1e-12
                  for _ in range(resamples))
    return (extreme + 1) / (resamples + 1)


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """(difference b - a, two-sided p-value) for two proportions."""
    if n_a == 0 or n_b == 0:
        return (0.0, 1.0)
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return (p_b - p_a, 1.0)
    return (p_b - p_a, 2 * normal_sf(abs(p_b - p_a) / se))


def proportion_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval."""
    if n == 0:
        return (0.0, 0.0)
    z = _z_for(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _z_for(level: float) -> float:
    return {0.9: 1.6448536, 0.95: 1.959964, 0.99: 2.5758293}.get(round(level, 2), 1.959964)


def chi2_sf(x: float, df: int) -> float:
    """Upper tail of the chi-square distribution (regularised upper incomplete gamma)."""
    if x <= 0:
        return 1.0
    a, z = df / 2.0, x / 2.0
    if z < a + 1:  # series for the lower part
        term = total = 1.0 / a
        k = a
        for _ in range(500):
            k += 1
            term *= z / k
            total += term
            if term < total * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-z + a * math.log(z) - math.lgamma(a)))
    # continued fraction (Lentz) for the upper part
    tiny = 1e-300
    b = z + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h * math.exp(-z + a * math.log(z) - math.lgamma(a))


def srm_chi_square(observed: Sequence[int], expected_shares: Sequence[float]) -> tuple[float, float]:
    """(chi-square statistic, p-value) of observed unit counts vs configured shares."""
    if len(observed) != len(expected_shares) or len(observed) < 2:
        raise ValueError("need matching observed counts and shares for at least two variants")
    total = sum(observed)
    share_sum = sum(expected_shares)
    if total == 0:
        return (0.0, 1.0)
    statistic = sum((o - total * s / share_sum) ** 2 / (total * s / share_sum)
                    for o, s in zip(observed, expected_shares) if s > 0)
    return (statistic, chi2_sf(statistic, len(observed) - 1))


def binomial_two_sided(wins: int, losses: int) -> float:
    """Sign test: P(a result at least this lopsided | p = 0.5), ties excluded."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)

    def pmf(i: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2))

    return min(1.0, 2 * sum(pmf(i) for i in range(k + 1)))

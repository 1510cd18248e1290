"""Score fusion: pure functions, no I/O.

A *leg* is one ranked result list (BM25, a kNN leg, ...): ``[(doc_id, raw_score), ...]``
best first. Fusion turns several legs into one ranking and, for every document,
an explanation of how its fused score was made, such that the per-leg
contributions add up exactly to the fused score.

Methods
- ``rrf``: sum over legs of ``weight / (k + rank)`` (rank from 1). A doc absent
  from a leg gets nothing from it.
- ``linear``: normalise each leg's scores (min-max, z-score, L2, DBSF or none),
  then combine the per-leg normalised scores with weights by an arithmetic,
  geometric or harmonic mean, at parity with OpenSearch's normalization
  processor: weights are normalised to sum to 1, a doc absent from a leg
  contributes 0 to the arithmetic mean and is skipped (with its weight) in the
  geometric and harmonic means, and scores of 0 are skipped in those means too.

Legs are taken in the order of their names, whatever order the mapping gives them in, so the
result (scores to the last bit, and ties) does not depend on how a caller built the mapping. Ties
are broken by the order of first appearance across legs (legs by name, then rank), so the output is
deterministic. A leg with weight 0 is left out entirely: it adds no documents and moves no ties,
exactly as if it had not been asked for.

Scores and weights must be finite: ``linear`` and ``normalize`` refuse NaN and infinite scores with
a ValueError (a NaN compares false with everything, so it would land anywhere in the ranking);
``rrf`` reads ranks only and carries raw scores into the breakdown untouched. Weights must be
0 or in [``MIN_WEIGHT``, ``MAX_WEIGHT``].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import NamedTuple

Leg = Sequence[tuple[str, float]]

NORMALIZATIONS = ("min_max", "z_score", "l2", "dbsf", "none")
COMBINATIONS = ("arithmetic", "geometric", "harmonic")
METHODS = ("rrf", "linear")

#: Min-max of a leg whose scores are all equal (a single hit, or ties) is 0/0.
#: ES's linear retriever historically turned that into 0 and dropped the leg's
#: only hit to the bottom; a lone hit is the leg's best, so it gets 1.0.
SINGLE_VALUE_NORMALIZED = 1.0
#: OpenSearch floors normalised scores at this value so a leg's worst hit is not
#: erased from a geometric/harmonic mean; we do the same for min-max.
MIN_MAX_FLOOR = 0.001
#: Largest leg weight accepted. The service's own weights stay below 1e3 (RankingConfig caps a leg
#: at 100, a modality weight at 10); far above this, sums of weighted RRF terms overflow to inf.
MAX_WEIGHT = 1e100
#: Smallest positive leg weight. Below it a weight is rounding noise next to any other (1e-12 of a
#: weight of 1 changes no score in double precision), and subnormal weights broke the breakdown's
#: split of geometric means (hypothesis: weight 5e-324 explained 1.0 of a 0.667 score).
MIN_WEIGHT = 1e-12
#: Largest raw score magnitude ``linear`` combines with normalization "none". Elasticsearch scores
#: are float32 (below 3.4e38), so no real score is refused; beyond it weighted sums can overflow.
MAX_RAW_SCORE = 1e150
#: Scores whose largest magnitude lies outside [1e-150, 1e150] are rescaled before normalising:
#: their squares (z-score, L2) or differences (min-max) would overflow or underflow, and every
#: normalisation but "none" is invariant under scaling by a positive number.
_SAFE_MAGNITUDE = (1e-150, 1e150)


class LegContribution(NamedTuple):
    """Immutable; a NamedTuple because fusion builds one per (doc, leg), up to legs x depth per
    request, and a frozen dataclass's __init__ cost ~4x more (measured: RRF of 3 x 100 hits)."""

    rank: int
    raw_score: float
    normalized: float
    weight: float
    contribution: float


class FusedHit:
    """One fused result. ``legs`` (the per-leg breakdown) is built on first access: a request
    fuses legs x depth candidates but explains at most one page of them, and building every
    breakdown was most of RRF's cost (measured: docs/benchmarks.md, "Query latency: what changed")."""

    __slots__ = ("doc_id", "score", "_legs", "_explain")

    def __init__(self, doc_id: str, score: float, legs: dict[str, LegContribution] | None = None,
                 explain: Callable[[str], dict[str, LegContribution]] | None = None) -> None:
        self.doc_id = doc_id
        self.score = score
        self._legs = legs
        self._explain = explain

    @property
    def legs(self) -> dict[str, LegContribution]:
        if self._legs is None:
            self._legs = self._explain(self.doc_id) if self._explain is not None else {}
        return self._legs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FusedHit):
            return NotImplemented
        return (self.doc_id, self.score, self.legs) == (other.doc_id, other.score, other.legs)

    def __repr__(self) -> str:
        return f"FusedHit(doc_id={self.doc_id!r}, score={self.score!r}, legs={self.legs!r})"


def _prepare(legs: Mapping[str, Leg], weights: Mapping[str, float] | None
             ) -> tuple[dict[str, list[tuple[str, float]]], dict[str, float]]:
    """Deduplicated legs in name order and their weights; weight-0 legs are dropped (module docstring)."""
    weights = dict(weights or {})
    for name in legs:
        weights.setdefault(name, 1.0)
    for name, weight in weights.items():
        if not isinstance(weight, (int, float)) or not (weight == 0 or MIN_WEIGHT <= weight <= MAX_WEIGHT):
            raise ValueError(f"leg weight must be 0 or a finite number in [{MIN_WEIGHT:g}, {MAX_WEIGHT:g}]: "
                             f"{name}={weight!r}")  # also refuses NaN, which compares false
    kept = sorted(name for name in legs if weights[name] > 0)
    return {name: _dedupe(legs[name]) for name in kept}, {name: float(weights[name]) for name in kept}


def _dedupe(leg: Leg) -> list[tuple[str, float]]:
    """Keep a doc's first (best) occurrence in a leg."""
    ids = [doc_id for doc_id, _ in leg]
    if len(set(ids)) == len(ids):  # the usual case (one index behind the alias): no loop in Python
        return [(doc_id, float(score)) for doc_id, score in leg]
    seen: set[str] = set()
    out = []
    for doc_id, score in leg:
        if doc_id not in seen:
            seen.add(doc_id)
            out.append((doc_id, float(score)))
    return out


# --- normalisation -------------------------------------------------------------------


def normalize(scores: Sequence[float], method: str, bounds: tuple[float, float] | None = None) -> list[float]:
    """Normalise one leg's raw scores."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r}; choose from {NORMALIZATIONS}")
    values = [float(s) for s in scores]
    if not all(map(math.isfinite, values)):
        raise ValueError("scores must be finite numbers to be normalised (got NaN or infinity)")
    if not values or method == "none":
        return values
    if bounds is not None and not (math.isfinite(bounds[0]) and math.isfinite(bounds[1])):
        raise ValueError("min-max bounds must be finite numbers")
    values, bounds = _rescaled(values, bounds)
    if method == "min_max":
        low, high = bounds if bounds is not None else (min(values), max(values))
        if high < low:
            raise ValueError("min-max bounds must satisfy low <= high")
        if high == low:
            return [SINGLE_VALUE_NORMALIZED] * len(values)
        return [max(MIN_MAX_FLOOR, min(1.0, (v - low) / (high - low))) for v in values]
    if method == "l2":
        norm = math.sqrt(sum(v * v for v in values))
        return [v / norm if norm > 0 else SINGLE_VALUE_NORMALIZED for v in values]
    # A constant leg is detected exactly: the rounded mean of n equal values can differ from them,
    # which made the "std" a few ulps instead of 0 (dbsf of [51.94549187426671] * 5 gave 0.667 each).
    constant = min(values) == max(values)
    mean = sum(values) / len(values)
    std = 0.0 if constant else math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if method == "z_score":
        return [(v - mean) / std if std > 0 else 0.0 for v in values]
    # dbsf: distribution-based score fusion, min-max within mean +- 3 sigma, clipped.
    if std == 0:
        return [SINGLE_VALUE_NORMALIZED] * len(values)
    low, high = mean - 3 * std, mean + 3 * std
    return [min(1.0, max(0.0, (v - low) / (high - low))) for v in values]


def _rescaled(values: list[float], bounds: tuple[float, float] | None
              ) -> tuple[list[float], tuple[float, float] | None]:
    """Values (and bounds) divided by their largest magnitude when that is too large or too small
    to square or subtract safely (``_SAFE_MAGNITUDE``); unchanged otherwise."""
    scale = max(abs(v) for v in (*values, *(bounds or ())))
    if scale == 0 or _SAFE_MAGNITUDE[0] <= scale <= _SAFE_MAGNITUDE[1]:
        return values, bounds
    return [v / scale for v in values], (bounds[0] / scale, bounds[1] / scale) if bounds is not None else None


# --- fusion --------------------------------------------------------------------------


def _order_of_appearance(legs: Mapping[str, list[tuple[str, float]]]) -> dict[str, int]:
    order: dict[str, int] = {}
    for leg in legs.values():
        for doc_id, _ in leg:
            order.setdefault(doc_id, len(order))
    return order


def _finish(scores: dict[str, float], parts: dict[str, dict[str, LegContribution]],
            order: dict[str, int]) -> list[FusedHit]:
    ranked = sorted(scores, key=lambda d: (-scores[d], order[d]))
    return [FusedHit(doc_id=d, score=scores[d], legs=parts[d]) for d in ranked]


class _RrfExplainer:
    """Per-leg ranks, looked up only for the hits someone asks to explain."""

    def __init__(self, legs: dict[str, list[tuple[str, float]]], weights: dict[str, float], k: int) -> None:
        self._legs, self._weights, self._k = legs, weights, k
        self._positions: dict[str, dict[str, int]] | None = None

    def __call__(self, doc_id: str) -> dict[str, LegContribution]:
        if self._positions is None:
            self._positions = {name: {d: i for i, (d, _) in enumerate(leg)} for name, leg in self._legs.items()}
        parts = {}
        for name, positions in self._positions.items():
            index = positions.get(doc_id)
            if index is not None:
                rank, weight = index + 1, self._weights[name]
                reciprocal = 1.0 / (self._k + rank)
                parts[name] = LegContribution(rank, self._legs[name][index][1], reciprocal, weight,
                                              weight * reciprocal)
        return parts


class RrfSums:
    """Weighted RRF as running per-document sums, so that a leg built from the fused order itself
    (the attribute leg, ``SearchEngine.fuse_run``) is added without fusing every leg again.

    ``add_leg`` takes only a leg whose name sorts after every leg already in: ``rrf`` adds legs in
    name order, so adding it last does the same float additions in the same order, and ties keep
    the same order of first appearance. ``hits()`` is then exactly ``rrf`` over all the legs.
    """

    def __init__(self, legs: Mapping[str, Leg], weights: Mapping[str, float] | None = None, k: int = 60) -> None:
        if k < 0:
            raise ValueError("rrf k must be >= 0")
        self._legs, self._weights = _prepare(legs, weights)
        self._k = k
        # Insertion order of ``scores`` is the order of first appearance (legs by name, then rank).
        self._scores: dict[str, float] = {}
        for name, leg in self._legs.items():
            self._add(leg, self._weights[name])

    def _add(self, leg: list[tuple[str, float]], weight: float) -> None:
        # Each term is weight * (1 / (k + rank)), the same arithmetic as the breakdown, so the
        # contributions add up to the score exactly.
        scores = self._scores
        score_of = scores.get
        for k_plus_rank, (doc_id, _) in enumerate(leg, start=1 + self._k):
            scores[doc_id] = score_of(doc_id, 0.0) + weight * (1.0 / k_plus_rank)

    def add_leg(self, name: str, leg: Leg, weight: float) -> None:
        if any(name <= existing for existing in self._legs):
            raise ValueError(f"a leg added after fusion must sort after the others: {name!r}")
        clean, weights = _prepare({name: leg}, {name: weight})
        if name in clean:  # weight 0 adds nothing, as in rrf
            self._legs[name], self._weights[name] = clean[name], weights[name]
            self._add(clean[name], weights[name])

    def ranked(self) -> list[tuple[str, float]]:
        # reverse=True keeps equal scores in their original order (sorted() stays stable).
        return sorted(self._scores.items(), key=itemgetter(1), reverse=True)

    def order(self) -> list[str]:
        """The fused documents, best first (what ``hits()`` would list), without building hits."""
        return [doc_id for doc_id, _ in self.ranked()]

    def hits(self) -> list[FusedHit]:
        explain = _RrfExplainer(dict(self._legs), dict(self._weights), self._k)
        return [FusedHit(doc_id, score, None, explain) for doc_id, score in self.ranked()]


def rrf(legs: Mapping[str, Leg], weights: Mapping[str, float] | None = None, k: int = 60) -> list[FusedHit]:
    """Weighted reciprocal rank fusion: ``sum_leg weight / (k + rank)``."""
    return RrfSums(legs, weights, k).hits()


def linear(legs: Mapping[str, Leg], weights: Mapping[str, float] | None = None, normalization: str = "min_max",
           combination: str = "arithmetic",
           bounds: Mapping[str, tuple[float, float]] | None = None) -> list[FusedHit]:
    """Normalise each leg, then combine with a weighted arithmetic/geometric/harmonic mean.

    The per-leg ``contribution`` values always add up to the fused score: for the
    arithmetic mean they are its exact terms; for the geometric and harmonic
    means (not sums) the fused score is attributed to legs in proportion to
    ``weight * normalized``.
    """
    if combination not in COMBINATIONS:
        raise ValueError(f"unknown combination {combination!r}; choose from {COMBINATIONS}")
    clean, leg_weights = _prepare(legs, weights)
    if not leg_weights:
        raise ValueError("at least one leg needs a positive weight")
    # The means only see weights relative to each other, so they are computed with weights scaled
    # to a largest of 1 (tiny weights would otherwise underflow); the breakdown reports the given ones.
    given_weights, largest = leg_weights, max(leg_weights.values())
    leg_weights = {name: weight / largest for name, weight in leg_weights.items()}
    total_weight = sum(leg_weights.values())
    normalized: dict[str, dict[str, tuple[int, float, float]]] = {}
    for name, leg in clean.items():
        leg_bounds = (bounds or {}).get(name)
        values = normalize([score for _, score in leg], normalization, leg_bounds)
        normalized[name] = {doc_id: (rank, raw, value)
                            for rank, ((doc_id, raw), value) in enumerate(zip(leg, values), start=1)}
        if normalization == "none" and any(abs(value) > MAX_RAW_SCORE for value in values):
            raise ValueError(f"scores above {MAX_RAW_SCORE:g} in magnitude cannot be combined unnormalised")
    order = _order_of_appearance(clean)
    scores: dict[str, float] = {}
    parts: dict[str, dict[str, LegContribution]] = {}
    for doc_id in order:
        present = {name: normalized[name][doc_id] for name in clean if doc_id in normalized[name]}
        if combination == "arithmetic":
            # A leg that did not return the doc counts as 0 with its full weight (OpenSearch parity).
            score = sum(leg_weights[n] * v for n, (_, _, v) in present.items()) / total_weight
            shares = {n: leg_weights[n] * v / total_weight for n, (_, _, v) in present.items()}
        else:
            values = {name: value for name, (_, _, value) in present.items()}
            score, shares = _weighted_mean(combination, values, leg_weights)
        scores[doc_id] = score
        parts[doc_id] = {n: LegContribution(rank, raw, value, given_weights[n], shares[n])
                         for n, (rank, raw, value) in present.items()}
    return _finish(scores, parts, order)


def _weighted_mean(combination: str, values: Mapping[str, float], weights: Mapping[str, float]
                   ) -> tuple[float, dict[str, float]]:
    """Geometric or harmonic mean of one doc's positive normalised scores, and its split over the
    legs in proportion to ``weight * value``. The plain sums ``sum(w / v)`` and ``sum(w * v)``
    overflow for tiny values and underflow to 0 (a division by zero) for tiny weights over huge
    values; only then are they redone in logs, which is slower (measured on a loaded 2-core machine:
    harmonic fusion of 3 x 100 hits took 2.7 ms always in logs, 1.7-1.8 ms plain)."""
    usable = {n: v for n, v in values.items() if v > 0 and weights[n] > 0}
    if not usable:
        return 0.0, {n: 0.0 for n in values}
    weight_sum = sum(weights[n] for n in usable)
    if combination == "geometric":
        # Weights divided by their sum first: (w * log v) / w is not log v once w * log v rounds
        # (a subnormal weight gave e instead of 2.0 for a lone value of 2.0).
        score = math.exp(sum(weights[n] / weight_sum * math.log(v) for n, v in usable.items()))
    else:
        denominator = sum(weights[n] / v for n, v in usable.items())
        if 0 < denominator < math.inf:
            score = weight_sum / denominator
        else:
            score = math.exp(math.log(weight_sum)
                             - _log_sum_exp([math.log(weights[n]) - math.log(v) for n, v in usable.items()]))
    mass = sum(weights[n] * v for n, v in usable.items())
    if 0 < mass < math.inf:
        return score, {n: score * weights[n] * usable[n] / mass if n in usable else 0.0 for n in values}
    log_mass = {n: math.log(weights[n]) + math.log(v) for n, v in usable.items()}
    log_total = _log_sum_exp(list(log_mass.values()))
    return score, {n: score * math.exp(log_mass[n] - log_total) if n in usable else 0.0 for n in values}


def _log_sum_exp(logs: list[float]) -> float:
    top = max(logs)
    return top + math.log(math.fsum(math.exp(x - top) for x in logs))


def fuse(legs: Mapping[str, Leg], method: str = "rrf", weights: Mapping[str, float] | None = None,
         rrf_k: int = 60, normalization: str = "min_max", combination: str = "arithmetic",
         bounds: Mapping[str, tuple[float, float]] | None = None) -> list[FusedHit]:
    """One entry point for every method; legs with no hits are simply empty lists."""
    if method == "rrf":
        return rrf(legs, weights, rrf_k)
    if method == "linear":
        return linear(legs, weights, normalization, combination, bounds)
    raise ValueError(f"unknown fusion method {method!r}; choose from {METHODS}")


def paginate(hits: Sequence[FusedHit], offset: int, size: int) -> list[FusedHit]:
    """A page of the fused list. Depth per leg is fixed, so every page slices the same list:
    no duplicates and no gaps between pages."""
    if offset < 0 or size < 0:
        raise ValueError("offset and size must be >= 0")
    return list(hits[offset:offset + size])


def facet_counts(sources: Sequence[Mapping[str, object]], fields: Sequence[str],
                 size: int = 10) -> dict[str, list[tuple[str, int]]]:
    """Terms facets over the fused candidate set (not one leg): counts, most frequent first,
    ties alphabetical so the output is deterministic."""
    out: dict[str, list[tuple[str, int]]] = {}
    for name in fields:
        counts: dict[str, int] = {}
        for source in sources:
            value = source.get(name)
            for item in value if isinstance(value, list) else [value]:
                if item is None or item == "":
                    continue
                key = str(item)
                counts[key] = counts.get(key, 0) + 1
        out[name] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
    return out

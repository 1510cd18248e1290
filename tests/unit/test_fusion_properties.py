"""Properties of the fusion library, checked by hypothesis over random legs, weights and pages.

Every fusion property runs for every method and normalisation x combination the module offers
(``CONFIGS``), so one generated example exercises all of them. The example-based regression tests
at the end pin the bugs these properties found (see the commit that added this file).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query_service.fusion import (
    COMBINATIONS,
    MAX_RAW_SCORE,
    MAX_WEIGHT,
    MIN_WEIGHT,
    MIN_MAX_FLOOR,
    NORMALIZATIONS,
    FusedHit,
    Leg,
    facet_counts,
    fuse,
    linear,
    normalize,
    paginate,
    rrf,
)

#: Reproducible in CI (derandomize) and no example database written into the checkout.
PROPERTY = settings(derandomize=True, max_examples=300, deadline=None, database=None)
#: A refusal is one branch whatever the legs look like: fewer examples keep the file fast.
REFUSAL = settings(PROPERTY, max_examples=100)

CONFIGS: list[dict[str, Any]] = [{"method": "rrf", "rrf_k": k} for k in (0, 1, 60)] + [
    {"method": "linear", "normalization": n, "combination": c} for n in NORMALIZATIONS for c in COMBINATIONS]

LEG_NAMES = ("bm25", "text_text", "text_image", "image_image", "understood")
DOC_IDS = tuple(f"d{i}" for i in range(12))  # a small pool, so legs overlap and ties happen

#: Raw scores as legs can carry them: ordinary, equal (ties), negative, zero, huge, tiny, subnormal.
EXTREME_SCORES = (0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 1e-300, 1e300)
scores = st.one_of(st.floats(-100.0, 100.0, allow_nan=False), st.sampled_from(EXTREME_SCORES),
                   st.floats(allow_nan=False, allow_infinity=False))
leg_strategy = st.lists(st.tuples(st.sampled_from(DOC_IDS), scores), max_size=10)
legs_strategy = st.dictionaries(st.sampled_from(LEG_NAMES), leg_strategy, min_size=1, max_size=4)
#: Positive, finite weights (zero weights have their own property); huge and tiny ones included.
weight = st.one_of(st.floats(0.01, 10.0), st.sampled_from((MIN_WEIGHT, 1e-9, 1e-5, 1e5, MAX_WEIGHT)))


def run(config: Mapping[str, Any], legs: Mapping[str, Leg], weights: Mapping[str, float] | None) -> list[FusedHit]:
    return fuse(admissible(config, legs), weights=weights, **config)


def admissible(config: Mapping[str, Any], legs: Mapping[str, Leg]) -> dict[str, list[tuple[str, float]]]:
    """The legs with raw scores clipped to what linear fusion without normalisation accepts
    (``MAX_RAW_SCORE``; its refusal has its own test); other configs take any finite score."""
    if config.get("normalization") != "none":
        return {name: list(leg) for name, leg in legs.items()}
    return {name: [(d, max(-MAX_RAW_SCORE, min(MAX_RAW_SCORE, v))) for d, v in leg] for name, leg in legs.items()}


def ranking(hits: list[FusedHit]) -> list[tuple[str, float]]:
    return [(hit.doc_id, hit.score) for hit in hits]


@st.composite
def legs_and_weights(draw: st.DrawFn) -> tuple[dict[str, list[tuple[str, float]]], dict[str, float]]:
    legs = draw(legs_strategy)
    return legs, {name: draw(weight) for name in legs}


# --- fusion (each property checks every config on every example) --------------------------------


@PROPERTY
@given(case=legs_and_weights())
def test_fused_ids_are_the_union_of_the_legs_each_once(case: Any) -> None:
    legs, weights = case
    union = {doc_id for leg in legs.values() for doc_id, _ in leg}
    for config in CONFIGS:
        fused = [hit.doc_id for hit in run(config, legs, weights)]
        assert len(fused) == len(set(fused)) and set(fused) == union, config


@PROPERTY
@given(case=legs_and_weights())
def test_scores_are_finite_non_increasing_and_explained(case: Any) -> None:
    legs, weights = case
    for config in CONFIGS:
        hits = run(config, legs, weights)
        values = [hit.score for hit in hits]
        assert all(math.isfinite(v) for v in values), (config, values)
        assert all(a >= b for a, b in zip(values, values[1:])), (config, values)
        for hit in hits:
            parts = hit.legs.values()
            assert all(math.isfinite(part.contribution) for part in parts), config
            explained = math.fsum(part.contribution for part in parts)
            # Rounding in a sum is bounded by the size of its terms, not of its result: contributions
            # of +-3e149 that cancel to 1e142 are exact to ~1e133 at best (hypothesis' example).
            scale = max(abs(hit.score), math.fsum(abs(part.contribution) for part in parts))
            assert abs(explained - hit.score) <= 1e-9 * scale + 1e-12, (config, hit)


@PROPERTY
@given(case=legs_and_weights(), data=st.data())
def test_result_does_not_depend_on_the_order_of_the_legs(case: Any, data: st.DataObject) -> None:
    legs, weights = case
    reordered = data.draw(st.permutations(list(legs)))
    shuffled_legs = {name: legs[name] for name in reordered}
    shuffled_weights = {name: weights[name] for name in reversed(reordered)}
    for config in CONFIGS:
        # Exact equality, tie-breaks included: the scores are summed in one canonical leg order.
        assert ranking(run(config, shuffled_legs, shuffled_weights)) == ranking(run(config, legs, weights)), config


@PROPERTY
@given(case=legs_and_weights(), extra=leg_strategy, name=st.sampled_from(("zero", "aaa_first", "zzz_last")),
       position=st.integers(0, 4))
def test_a_leg_with_weight_zero_behaves_like_an_absent_leg(case: Any, extra: list[tuple[str, float]], name: str,
                                                           position: int) -> None:
    legs, weights = case
    items = list(legs.items())
    items.insert(min(position, len(items)), (name, extra))
    for config in CONFIGS:
        with_zero = run(config, dict(items), {**weights, name: 0.0})
        assert ranking(with_zero) == ranking(run(config, legs, weights)), config
        assert all(name not in hit.legs for hit in with_zero), config


@REFUSAL
@given(legs=legs_strategy, bad=st.sampled_from((math.nan, math.inf, -math.inf, -1.0, -5e-324, 5e-324, 1e-300,
                                                MIN_WEIGHT / 2, MAX_WEIGHT * 10, 1e300)))
def test_non_finite_negative_or_absurd_weights_are_refused(legs: Any, bad: float) -> None:
    name = next(iter(legs))
    for config in CONFIGS:
        with pytest.raises(ValueError, match="weight"):
            run(config, legs, {name: bad})


@REFUSAL
@given(legs=legs_strategy, huge=st.floats(MAX_RAW_SCORE, 1e308, exclude_min=True), sign=st.sampled_from((1, -1)))
def test_unnormalised_linear_refuses_scores_it_cannot_sum(legs: Any, huge: float, sign: int) -> None:
    poisoned = {**legs, "bm25": [("big", sign * huge)]}
    for combination in COMBINATIONS:
        with pytest.raises(ValueError, match="unnormalised"):
            linear(poisoned, normalization="none", combination=combination)


@REFUSAL
@given(legs=legs_strategy, bad=st.sampled_from((math.nan, math.inf, -math.inf)), data=st.data())
def test_linear_refuses_non_finite_scores_clearly(legs: Any, bad: float, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(legs)))
    for normalization in NORMALIZATIONS:
        clean = admissible({"normalization": normalization}, legs)
        poisoned = {**clean, name: [*clean[name], ("bad-doc", bad)]}
        with pytest.raises(ValueError, match="finite"):
            linear(poisoned, normalization=normalization)


@REFUSAL
@given(legs=legs_strategy, bad=st.sampled_from((math.nan, math.inf, -math.inf)))
def test_rrf_ranks_non_finite_raw_scores_by_position(legs: Any, bad: float) -> None:
    # RRF reads ranks only (module docstring): a raw score is carried into the breakdown untouched,
    # so a NaN raw score cannot reach the fused scores or the order.
    name = next(iter(legs))
    poisoned = {**legs, name: [(doc_id, bad) for doc_id, _ in legs[name]]}
    assert ranking(rrf(poisoned)) == ranking(rrf(legs))


# --- normalisation ------------------------------------------------------------------------------

score_lists = st.lists(scores, min_size=1, max_size=20)
BOUNDED = {"min_max": (MIN_MAX_FLOOR, 1.0), "dbsf": (0.0, 1.0), "l2": (-1.0, 1.0)}


@PROPERTY
@given(values=st.one_of(score_lists, st.lists(st.sampled_from(EXTREME_SCORES), min_size=1, max_size=5),
                        scores.map(lambda v: [v]), st.tuples(scores, st.integers(2, 6)).map(lambda t: [t[0]] * t[1])))
def test_normalised_scores_stay_in_their_bounds(values: list[float]) -> None:
    for method in NORMALIZATIONS:
        check_normalised(method, values, normalize(values, method))


def check_normalised(method: str, values: list[float], out: list[float]) -> None:
    assert len(out) == len(values) and all(math.isfinite(v) for v in out), (method, out)
    if method in BOUNDED:
        low, high = BOUNDED[method]
        assert all(low <= v <= high for v in out), (method, out)
    elif method == "z_score":
        # |z| <= sqrt(n - 1) for the population standard deviation (Samuelson's inequality).
        assert all(abs(v) <= math.sqrt(max(len(values) - 1, 0)) + 1e-9 for v in out), out
    else:
        assert out == values
    if method != "none":
        # Order-preserving: a better raw score never normalises below a worse one.
        pairs = sorted(zip(values, out))
        assert all(a[1] <= b[1] for a, b in zip(pairs, pairs[1:])), (method, pairs)
    if len(set(values)) == 1 and method in ("min_max", "dbsf", "z_score"):
        # A constant leg (or a lone hit) is its own best for min-max and DBSF, and exactly average for z.
        assert out == [0.0 if method == "z_score" else 1.0] * len(values), (method, out)


@PROPERTY
@given(values=score_lists, low=scores, width=st.floats(0.0, 1e300))
def test_min_max_with_fixed_bounds_clips_into_the_floor_and_one(values: list[float], low: float,
                                                                width: float) -> None:
    high = low + width
    if not math.isfinite(high):
        return
    out = normalize(values, "min_max", bounds=(low, high))
    assert all(MIN_MAX_FLOOR <= v <= 1.0 for v in out), out


@REFUSAL
@given(values=score_lists, bad=st.sampled_from((math.nan, math.inf, -math.inf)), where=st.integers(0, 20))
def test_normalize_refuses_non_finite_scores(values: list[float], bad: float, where: int) -> None:
    values.insert(min(where, len(values)), bad)
    for method in NORMALIZATIONS:
        with pytest.raises(ValueError, match="finite"):
            normalize(values, method)


# --- pagination and facets ----------------------------------------------------------------------


@PROPERTY
@given(case=legs_and_weights(), size=st.integers(1, 40), config=st.sampled_from(CONFIGS))
def test_consecutive_pages_tile_the_ranking_without_overlap_or_gap(case: Any, size: int,
                                                                   config: dict[str, Any]) -> None:
    legs, weights = case
    hits = run(config, legs, weights)
    pages = [paginate(hits, offset, size) for offset in range(0, len(hits) + 2 * size, size)]
    assert [hit for page in pages for hit in page] == hits
    filled = [page for page in pages if page]
    assert all(len(page) == size for page in filled[:-1])  # only the last page may be short
    assert pages[-1] == [] and pages[-2] == []  # past the end: empty pages, not an error


@PROPERTY
@given(n=st.integers(0, 30), offset=st.integers(0, 60), size=st.integers(0, 60))
def test_a_page_is_exactly_the_slice(n: int, offset: int, size: int) -> None:
    hits = [FusedHit(f"d{i}", float(n - i)) for i in range(n)]
    assert paginate(hits, offset, size) == hits[offset:offset + size]


values_strategy = st.one_of(st.none(), st.just(""), st.sampled_from(("Red", "Blue", "Green", "red")),
                            st.lists(st.sampled_from(("Red", "Blue", "", "a")), max_size=3), st.integers(0, 3))


@PROPERTY
@given(sources=st.lists(st.dictionaries(st.sampled_from(("colour", "tags", "year")), values_strategy), max_size=20),
       size=st.integers(0, 6))
def test_facet_counts_recount_the_candidates_most_frequent_first(sources: list[dict[str, Any]], size: int) -> None:
    fields = ["colour", "tags", "year", "absent"]
    facets = facet_counts(sources, fields, size=size)
    for name in fields:
        expected: Counter[str] = Counter()
        for source in sources:
            value = source.get(name)
            expected.update(str(v) for v in (value if isinstance(value, list) else [value]) if v not in (None, ""))
        assert facets[name] == sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


# --- regressions the properties found -----------------------------------------------------------


def test_regression_z_score_of_huge_scores_does_not_overflow() -> None:
    # Hypothesis' minimal examples: normalize([0.0, 1e308], "z_score") raised OverflowError in the
    # variance, and [1e308, 1e308] gave NaN; min-max of [-1e308, 1e308, 0] put the middle at the floor.
    assert normalize([0.0, 1e308], "z_score") == pytest.approx([-1.0, 1.0])
    assert normalize([1e308, 1e308], "z_score") == [0.0, 0.0]
    assert normalize([1e308, -1e308, 0.0], "min_max") == pytest.approx([1.0, MIN_MAX_FLOOR, 0.5])
    assert normalize([1e-200, 1e-200], "l2") == pytest.approx([math.sqrt(0.5)] * 2)  # was 1.0 each: squares underflowed


def test_regression_a_constant_leg_is_constant_after_dbsf_and_z_score() -> None:
    # Hypothesis' minimal example: the rounded mean of five equal scores is not that score.
    assert normalize([51.94549187426671] * 5, "dbsf") == [1.0] * 5  # was 0.667 each
    assert normalize([51.94549187426671] * 5, "z_score") == [0.0] * 5


def test_regression_nan_and_infinite_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        normalize([math.nan, 1.0, 2.0], "min_max")  # was [1.0, 0.001, 1.0]: NaN ranked as the best hit
    with pytest.raises(ValueError, match="weight"):
        linear({"a": [("x", 1.0), ("y", 0.5)]}, weights={"a": math.inf})  # was NaN scores


def test_regression_tiny_weights_keep_the_means_exact() -> None:
    # Geometric: a lone 2.0 from a leg of the smallest weight must stay 2.0 (w * log 2 once rounded
    # to w and gave e); weights below MIN_WEIGHT (5e-324 was the example) are refused.
    legs = {"bm25": [], "text_text": [("d0", 2.0)]}
    geometric = linear(legs, weights={"bm25": 1.0, "text_text": MIN_WEIGHT}, normalization="none",
                       combination="geometric")
    assert [(h.doc_id, h.score) for h in geometric] == [("d0", pytest.approx(2.0))]
    # Harmonic: weight / score underflowed to 0 and the mean divided by zero (ZeroDivisionError).
    legs = {"bm25": [("d0", 1e150)], "text_text": [("d1", 1.0)]}
    harmonic = linear(legs, weights={"bm25": MIN_WEIGHT, "text_text": 10.0}, normalization="none",
                      combination="harmonic")
    assert {h.doc_id: h.score for h in harmonic} == pytest.approx({"d0": 1e150, "d1": 1.0})
    assert harmonic[0].legs["bm25"].contribution == pytest.approx(1e150)
    # A subnormal normalised score made weight / score infinite and the mean 0.0 instead of the score.
    lone = linear({"bm25": [("d0", 1.0), ("d1", 5e-324)]}, normalization="none", combination="harmonic")
    assert [h.score for h in lone] == [1.0, 5e-324]


def test_regression_leg_order_does_not_break_ties() -> None:
    # Hypothesis' minimal example: d0 and d1 tie (rank 1 of a leg each); the tie followed the mapping's order.
    forward = rrf({"bm25": [("d0", 0.0)], "text_text": [("d1", 0.0)]}, k=0)
    backward = rrf({"text_text": [("d1", 0.0)], "bm25": [("d0", 0.0)]}, k=0)
    assert [h.doc_id for h in forward] == [h.doc_id for h in backward] == ["d0", "d1"]


def test_regression_zero_weight_leg_adds_no_documents() -> None:
    # Hypothesis' minimal example: a weight-0 leg [("d0", 0.0)] next to an empty bm25 leg put d0 in the
    # result at score 0 (and could move ties); it is now dropped like an absent leg.
    assert rrf({"bm25": [], "zero": [("d0", 0.0)]}, weights={"zero": 0.0}) == []
    legs = {"bm25": [("a", 2.0), ("b", 1.0)], "knn": [("c", 0.9)]}
    assert [h.doc_id for h in rrf(legs, weights={"knn": 0.0})] == ["a", "b"]
    assert [h.doc_id for h in linear(legs, weights={"knn": 0.0})] == ["a", "b"]


@PROPERTY
@given(case=legs_and_weights(), extra=leg_strategy, extra_weight=weight)
def test_a_leg_added_to_rrf_sums_equals_fusing_every_leg_at_once(case: Any, extra: list[tuple[str, float]],
                                                                  extra_weight: float) -> None:
    # SearchEngine.fuse_run adds the attribute leg to the sums of the first fusion instead of fusing again.
    from query_service.fusion import RrfSums, rrf

    legs, weights = case
    last = "~" + max(legs)  # sorts after every leg name
    sums = RrfSums(legs, weights, k=60)
    assert sums.order() == [hit.doc_id for hit in rrf(legs, weights, k=60)]
    sums.add_leg(last, extra, extra_weight)
    together = rrf({**legs, last: extra}, {**weights, last: extra_weight}, k=60)
    added = sums.hits()
    assert [(h.doc_id, h.score) for h in added] == [(h.doc_id, h.score) for h in together]  # bit for bit, ties too
    assert [h.legs for h in added] == [h.legs for h in together]


def test_rrf_sums_refuse_a_leg_that_would_not_be_added_last() -> None:
    from query_service.fusion import RrfSums

    sums = RrfSums({"text_text": [("a", 1.0)]}, None, k=60)
    with pytest.raises(ValueError, match="sort after"):
        sums.add_leg("bm25", [("a", 1.0)], 1.0)

"""Fusion library: hand-computed values for every method, normalisation and combination."""

from __future__ import annotations

import math

import pytest

from query_service.fusion import (
    COMBINATIONS,
    MIN_MAX_FLOOR,
    NORMALIZATIONS,
    facet_counts,
    fuse,
    linear,
    normalize,
    paginate,
    rrf,
)

LEGS = {"bm25": [("a", 10.0), ("b", 5.0), ("c", 0.0)], "knn": [("b", 0.9), ("d", 0.8)]}


def ids(hits):
    return [h.doc_id for h in hits]


def test_rrf_values_and_weights() -> None:
    hits = rrf(LEGS, k=60)
    assert ids(hits) == ["b", "a", "d", "c"]
    assert hits[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert hits[1].score == pytest.approx(1 / 61)
    weighted = rrf(LEGS, weights={"bm25": 2.0, "knn": 0.5}, k=1)
    by_id = {h.doc_id: h.score for h in weighted}
    assert by_id["a"] == pytest.approx(2 / 2)
    assert by_id["b"] == pytest.approx(2 / 3 + 0.5 / 2)
    assert by_id["d"] == pytest.approx(0.5 / 3)


def test_rrf_breakdown_has_rank_raw_and_adds_up() -> None:
    for hit in rrf(LEGS, weights={"bm25": 1.5}):
        assert sum(c.contribution for c in hit.legs.values()) == pytest.approx(hit.score)
    b = next(h for h in rrf(LEGS) if h.doc_id == "b")
    assert (b.legs["bm25"].rank, b.legs["bm25"].raw_score) == (2, 5.0)
    assert (b.legs["knn"].rank, b.legs["knn"].raw_score) == (1, 0.9)


@pytest.mark.parametrize(("method", "expected"), [
    ("min_max", [1.0, 0.5, MIN_MAX_FLOOR]),
    ("l2", [10 / math.sqrt(125), 5 / math.sqrt(125), 0.0]),
    ("z_score", [(10 - 5) / math.sqrt(50 / 3), 0.0, (0 - 5) / math.sqrt(50 / 3)]),
    ("dbsf", [(10 - (5 - 3 * math.sqrt(50 / 3))) / (6 * math.sqrt(50 / 3)), 0.5,
              (0 - (5 - 3 * math.sqrt(50 / 3))) / (6 * math.sqrt(50 / 3))]),
    ("none", [10.0, 5.0, 0.0]),
])
def test_normalizations(method: str, expected: list[float]) -> None:
    assert normalize([10.0, 5.0, 0.0], method) == pytest.approx(expected)


def test_min_max_fixed_bounds_clip() -> None:
    assert normalize([12.0, 5.0, -1.0], "min_max", bounds=(0.0, 10.0)) == pytest.approx([1.0, 0.5, MIN_MAX_FLOOR])
    with pytest.raises(ValueError):
        normalize([1.0], "min_max", bounds=(2.0, 1.0))


@pytest.mark.parametrize("method", ["min_max", "dbsf"])
def test_single_hit_leg_is_its_best_not_zero(method: str) -> None:
    # ES's min-max turned a lone hit (max == min) into 0; it must rank as the leg's best.
    assert normalize([3.7], method) == [1.0]
    assert normalize([2.0, 2.0], method) == [1.0, 1.0]
    hits = linear({"bm25": [("x", 3.7)], "knn": [("y", 0.9), ("z", 0.1)]})
    assert {h.doc_id: h.score for h in hits}["x"] == pytest.approx(0.5)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError):
        normalize([1.0], "softmax")
    with pytest.raises(ValueError):
        fuse(LEGS, method="borda")
    with pytest.raises(ValueError):
        linear(LEGS, combination="median")
    with pytest.raises(ValueError):
        rrf(LEGS, weights={"bm25": -1})
    with pytest.raises(ValueError):
        linear(LEGS, weights={"bm25": 0, "knn": 0})


def test_linear_arithmetic_counts_missing_leg_as_zero_with_full_weight() -> None:
    hits = {h.doc_id: h for h in linear(LEGS, weights={"bm25": 3, "knn": 1})}
    # bm25 min-max: a=1, b=.5, c=.001 ; knn min-max: b=1, d=.001
    assert hits["a"].score == pytest.approx(3 * 1.0 / 4)
    assert hits["b"].score == pytest.approx((3 * 0.5 + 1 * 1.0) / 4)
    assert hits["d"].score == pytest.approx(MIN_MAX_FLOOR / 4)
    assert hits["a"].legs.keys() == {"bm25"}


def test_linear_geometric_and_harmonic_skip_missing_legs() -> None:
    legs = {"bm25": [("a", 4.0), ("b", 2.0), ("c", 0.0)], "knn": [("b", 1.0), ("a", 0.5), ("z", 0.0)]}
    # min-max: bm25 a=1, b=.5, c=.001 ; knn b=1, a=.5, z=.001
    geo = {h.doc_id: h.score for h in linear(legs, weights={"bm25": 1, "knn": 3}, combination="geometric")}
    assert geo["a"] == pytest.approx(math.exp((1 * math.log(1.0) + 3 * math.log(0.5)) / 4))
    assert geo["b"] == pytest.approx(math.exp((1 * math.log(0.5) + 3 * math.log(1.0)) / 4))
    assert geo["c"] == pytest.approx(MIN_MAX_FLOOR)
    har = {h.doc_id: h.score for h in linear(legs, weights={"bm25": 1, "knn": 3}, combination="harmonic")}
    assert har["a"] == pytest.approx(4 / (1 / 1.0 + 3 / 0.5))
    assert har["b"] == pytest.approx(4 / (1 / 0.5 + 3 / 1.0))


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("combination", COMBINATIONS)
def test_breakdown_always_adds_up_to_the_fused_score(normalization: str, combination: str) -> None:
    legs = {"bm25": [("a", 7.0), ("b", 3.0), ("c", 1.0)], "text_text": [("c", 0.9), ("a", 0.7), ("e", 0.6)],
            "text_image": [("e", 0.5)]}
    for hit in linear(legs, weights={"bm25": 0.2, "text_text": 0.5, "text_image": 0.3},
                      normalization=normalization, combination=combination):
        assert sum(c.contribution for c in hit.legs.values()) == pytest.approx(hit.score, abs=1e-12)


def test_ties_keep_a_stable_order_of_first_appearance() -> None:
    legs = {"one": [("x", 1.0), ("y", 1.0)], "two": [("z", 1.0)]}
    # x and z tie at rank 1; x comes first because legs are read in name order ("one" < "two"),
    # whatever the mapping's order: tie-breaks must not depend on how a caller built the dict.
    assert ids(rrf(legs)) == ["x", "z", "y"]
    assert ids(rrf({"two": legs["two"], "one": legs["one"]})) == ["x", "z", "y"]
    assert ids(linear(legs, normalization="none")) == ["x", "y", "z"]
    assert ids(rrf(legs)) == ids(rrf(legs))


def test_empty_legs_and_duplicates() -> None:
    assert fuse({"bm25": [], "knn": []}) == []
    assert ids(fuse({"bm25": [], "knn": [("a", 0.3)]}, method="linear")) == ["a"]
    # A doc repeated inside one leg keeps its best (first) rank only.
    hits = rrf({"bm25": [("a", 3.0), ("a", 2.0), ("b", 1.0)]}, k=0)
    assert [(h.doc_id, h.score) for h in hits] == [("a", 1.0), ("b", 0.5)]


def test_pagination_slices_without_gaps_or_duplicates() -> None:
    hits = rrf({"bm25": [(str(i), 100.0 - i) for i in range(25)], "knn": [(str(i), 1.0) for i in range(30, 40)]})
    pages = [paginate(hits, offset, 7) for offset in range(0, len(hits), 7)]
    flat = [h.doc_id for page in pages for h in page]
    assert flat == ids(hits) and len(set(flat)) == len(flat) == 35
    assert paginate(hits, 100, 10) == []
    with pytest.raises(ValueError):
        paginate(hits, -1, 10)


def test_facets_over_the_candidate_set() -> None:
    sources = [{"colour": "Red", "tags": ["a", "b"]}, {"colour": "Blue", "tags": ["a"]}, {"colour": "Red"},
               {"colour": ""}, {}]
    assert facet_counts(sources, ["colour", "tags"]) == {"colour": [("Red", 2), ("Blue", 1)],
                                                         "tags": [("a", 2), ("b", 1)]}
    assert facet_counts(sources, ["colour"], size=1) == {"colour": [("Red", 2)]}


def test_rrf_breakdown_matches_a_recount_from_the_legs_with_duplicates() -> None:
    """The breakdown is built lazily from per-leg positions: every explained hit must agree with a
    recount from the (deduplicated) legs, and the contributions must sum to the score exactly."""
    import random

    rng = random.Random(7)
    pool = [f"d{i}" for i in range(60)]
    for _ in range(20):
        legs = {name: [(rng.choice(pool), rng.random()) for _ in range(rng.randint(0, 40))]
                for name in ("bm25", "text_text", "image_image")}
        weights = {"bm25": rng.uniform(0, 3), "text_text": rng.uniform(0, 3), "image_image": 1.0}
        hits = rrf(legs, weights=weights, k=rng.randint(0, 80))
        for hit in reversed(hits):  # explained out of order: each breakdown stands on its own
            expected = {}
            for name, leg in legs.items():
                seen: list[str] = []
                for doc_id, raw in leg:
                    if doc_id in seen:
                        continue
                    seen.append(doc_id)
                    if doc_id == hit.doc_id:
                        expected[name] = (len(seen), raw)
            assert {n: (c.rank, c.raw_score) for n, c in hit.legs.items()} == expected
            assert sum(c.contribution for c in hit.legs.values()) == pytest.approx(hit.score, rel=1e-12)
            assert all(c.weight == weights[n] for n, c in hit.legs.items())

"""Jaccard, rank-biased overlap and movements of the ranking workbench (query_service.overlap)."""

from __future__ import annotations

import random

import pytest

from query_service.overlap import compare_ids, jaccard, movements, rbo


def _rbo_eq32(a: list[str], b: list[str], p: float) -> float:
    """Webber et al.'s eq. 32 written out literally with set intersections (the reference)."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, l = len(short), len(long_)

    def x(d: int) -> int:
        return len(set(short[:d]) & set(long_[:d]))

    first = sum(x(d) / d * p ** d for d in range(1, l + 1))
    second = sum(x(s) * (d - s) / (s * d) * p ** d for d in range(s + 1, l + 1))
    return (1 - p) / p * (first + second) + ((x(l) - x(s)) / l + x(s) / s) * p ** l


def test_rbo_of_identical_and_disjoint_rankings() -> None:
    ids = [str(i) for i in range(20)]
    assert rbo(ids, ids) == pytest.approx(1.0)
    assert rbo(ids, [f"x{i}" for i in range(20)]) == 0.0
    assert rbo([], []) == 1.0 and rbo(ids, []) == 0.0


def test_rbo_hand_computed_value() -> None:
    # p = 0.5, [a, b] vs [b, a]: X1 = 0, X2 = 2 -> (1-p)/p * (0 + 1 * 0.25) + 1 * 0.25 = 0.5
    assert rbo(["a", "b"], ["b", "a"], p=0.5) == pytest.approx(0.5)


def test_rbo_matches_the_papers_formula_on_random_lists_of_unequal_length() -> None:
    rng = random.Random(7)
    pool = [str(i) for i in range(30)]
    for _ in range(200):
        a = rng.sample(pool, rng.randint(1, 15))
        b = rng.sample(pool, rng.randint(1, 15))
        p = rng.choice([0.5, 0.8, 0.9, 0.98])
        assert rbo(a, b, p) == pytest.approx(_rbo_eq32(a, b, p), abs=1e-12)
        assert rbo(a, b, p) == pytest.approx(rbo(b, a, p), abs=1e-12)
        assert 0.0 <= rbo(a, b, p) <= 1.0


def test_rbo_is_top_weighted_where_jaccard_is_not() -> None:
    base = list("abcdefghij")
    swap_top = ["b", "a", *base[2:]]
    swap_bottom = [*base[:8], "j", "i"]
    assert jaccard(base, swap_top) == jaccard(base, swap_bottom) == 1.0
    assert rbo(base, swap_top) < rbo(base, swap_bottom) < 1.0


def test_rbo_rejects_a_bad_persistence() -> None:
    with pytest.raises(ValueError):
        rbo(["a"], ["a"], p=1.0)


def test_jaccard() -> None:
    assert jaccard(["a", "b", "c"], ["b", "c", "d"]) == pytest.approx(0.5)
    assert jaccard([], []) == 1.0


def test_movements_mark_up_down_same_new_and_dropped() -> None:
    moves = {m.doc_id: m for m in movements(["a", "b", "c", "d"], ["b", "a", "c", "e"])}
    assert moves["b"].status == "up" and moves["a"].status == "down" and moves["c"].status == "same"
    assert moves["e"].status == "new" and moves["d"].status == "dropped"
    assert moves["b"].to_dict()["shift"] == 1 and moves["e"].to_dict()["shift"] is None


def test_compare_ids_counts_and_orders() -> None:
    result = compare_ids(["a", "b", "a"], ["c", "a"])
    assert [m["id"] for m in result["movements"]] == ["c", "a", "b"]
    assert result["counts"] == {"same": 0, "up": 0, "down": 1, "new": 1, "dropped": 1}
    assert result["jaccard"] == pytest.approx(1 / 3)

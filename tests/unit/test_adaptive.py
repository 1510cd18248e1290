"""Adaptive fusion: features, the ridge policy, and its use in the engine's fusion. No server."""

from __future__ import annotations

import numpy as np
import pytest

from query_service import adaptive
from query_service.legs import LegRun
from query_service.ranking import RankingConfig
from query_service.understanding import Attribute, Understanding


def test_features_describe_the_legs_and_the_parse() -> None:
    legs = {"bm25": [("a", 9.0), ("b", 3.0)], "text_text": [("a", 0.9), ("c", 0.8)], "text_image": []}
    parse = Understanding("red shirt", {"base_colour": Attribute("base_colour", ("Red",), 0.9, "red", "vocabulary")})
    features = dict(zip(adaptive.FEATURE_NAMES, adaptive.query_features(legs, "red shirt", parse)))
    assert features["bm25_present"] == 1.0 and features["text_image_present"] == 0.0
    assert features["bm25_top"] == pytest.approx(np.log1p(9.0)) and features["text_text_top"] == pytest.approx(0.9)
    assert features["bm25_drop"] == pytest.approx(6.0 / 9.0)
    assert features["overlap_bm25_text"] == pytest.approx(1 / 3)  # {a} of {a, b, c}
    assert features["query_words"] == 2.0 and features["parsed_colour"] == 1.0 and features["parsed_type"] == 0.0
    assert features["parsed_confidence"] == pytest.approx(0.9)
    assert len(adaptive.query_features({}, None)) == len(adaptive.FEATURE_NAMES)


def test_fit_learns_which_preset_wins_for_which_queries() -> None:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, len(adaptive.FEATURE_NAMES)))
    # Preset 0 wins when the parse read a type (feature "parsed_type" > 0), preset 1 otherwise.
    column = adaptive.FEATURE_NAMES.index("parsed_type")
    features[:, column] = rng.integers(0, 2, size=200)  # a flag, as in real queries
    ndcg = np.vstack([0.5 + 0.3 * (features[:, column] > 0), 0.6 - 0.2 * (features[:, column] > 0)])
    policy = adaptive.fit(features, ndcg, [{"bm25": 1.0}, {"text_text": 1.0}], ridge=1.0)
    chosen = adaptive.choices(policy, features)
    assert np.mean(chosen == (features[:, column] <= 0).astype(int)) > 0.9
    again = adaptive.AdaptivePolicy.from_dict(policy.to_dict())
    assert np.array_equal(adaptive.choices(again, features), chosen)
    with pytest.raises(ValueError):
        adaptive.AdaptivePolicy.from_dict({**policy.to_dict(), "features": ["x"]})


def test_a_ranking_with_a_policy_fuses_with_the_chosen_preset() -> None:
    from query_service.engine import SearchEngine
    from query_service.ranking import RankingConfig as Ranking
    from tests.unit.fakes import FakeGateway

    features = np.zeros((4, len(adaptive.FEATURE_NAMES)))
    ndcg = np.array([[0.1] * 4, [0.9] * 4])  # the text_text-only preset always wins
    policy = adaptive.fit(features, ndcg, [{"bm25": 1.0, "text_text": 0.0}, {"bm25": 0.0, "text_text": 1.0}])
    ranking = RankingConfig.from_dict({"adaptive": policy.to_dict(), "legs": {"bm25": 1.0, "text_text": 1.0}})
    assert isinstance(ranking.adaptive, adaptive.AdaptivePolicy) and ranking.to_dict()["adaptive"]["presets"]
    run = LegRun(legs={"bm25": [("a", 5.0), ("b", 4.0)], "text_text": [("b", 0.9), ("c", 0.8)]},
                 weights={"bm25": 1.0, "text_text": 1.0}, text="shirt")
    engine = SearchEngine(FakeGateway(), None, type("S", (), {"products_alias": "p"})())
    assert [hit.doc_id for hit in engine.fuse_run(run, ranking)] == ["b", "c"]  # bm25 left out by the policy
    assert [hit.doc_id for hit in engine.fuse_run(run, Ranking())][:1] == ["b"]  # both legs without a policy
    with pytest.raises(Exception):
        RankingConfig.from_dict({"adaptive": {"presets": []}})


def test_every_single_leg_is_a_preset_of_the_grid_and_always_selected() -> None:
    """The guard needs each leg alone among the policy's presets (the report compares with them)."""
    from query_service.relevance import adaptive_tuning

    grid = adaptive_tuning.preset_grid()
    singles = [grid.index(preset) for preset in adaptive_tuning.SINGLE_LEGS]
    assert len(set(singles)) == len(adaptive_tuning.TEXT_LEGS)
    matrix = np.zeros((len(grid), 5))
    matrix[7] = 1.0  # one preset is best on tuning
    chosen = adaptive_tuning.select_presets(matrix, grid, keep=2)
    assert chosen[:3] == singles and 7 in chosen and len(chosen) == 5

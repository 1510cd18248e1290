"""RankingConfig / SearchRequest / validate_filters: every rejection path, and the dict round trip."""

from __future__ import annotations

import pytest

from mmsearch.exceptions import RequestValidationError
from query_service.ranking import (
    LEGS,
    MAX_DEPTH,
    MAX_NUM_CANDIDATES,
    MAX_SIZE,
    MAX_TEXT_CHARS,
    RankingConfig,
    SearchRequest,
    validate_filters,
)

# --- RankingConfig ---------------------------------------------------------------------


def test_defaults_are_valid_and_run_every_leg() -> None:
    config = RankingConfig()
    assert config.legs == {leg: 1.0 for leg in LEGS}
    assert (config.method, config.rrf_k, config.depth, config.num_candidates) == ("rrf", 60, 100, 200)
    assert config.field_boosts == {"title": 3.0, "category_path": 2.0, "search_text": 1.0}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"legs": {}}, "legs must be a non-empty"),
    ({"legs": {"bm25": 1.0, "video": 1.0}}, "legs must be a non-empty"),
    ({"legs": {"bm25": -0.1}}, "leg weights must be numbers in [0, 100]"),
    ({"legs": {"bm25": 100.5}}, "leg weights must be numbers in [0, 100]"),
    ({"legs": {"bm25": "1"}}, "leg weights must be numbers in [0, 100]"),
    ({"legs": {"bm25": True}}, "leg weights must be numbers in [0, 100]"),
    ({"legs": {"bm25": float("nan")}}, "leg weights must be numbers in [0, 100]"),
    ({"method": "borda"}, "unknown fusion method"),
    ({"normalization": "softmax"}, "unknown normalization"),
    ({"combination": "median"}, "unknown combination"),
    ({"rrf_k": -1}, "rrf_k must be an integer in [0, 10000]"),
    ({"rrf_k": 10_001}, "rrf_k must be an integer in [0, 10000]"),
    ({"rrf_k": 60.0}, "rrf_k must be an integer in [0, 10000]"),
    ({"bounds": {"bm25": [5.0, 1.0]}}, "bounds must map legs to [low, high]"),
    ({"bounds": {"bm25": [0.0, 1.0, 2.0]}}, "bounds must map legs to [low, high]"),
    ({"bounds": {"video": [0.0, 1.0]}}, "bounds must map legs to [low, high]"),
    ({"field_boosts": {}}, "field_boosts must name text fields"),
    ({"field_boosts": {"brand": 2.0}}, "field_boosts must name text fields"),
    ({"field_boosts": {"title": 0}}, "field boosts must be in (0, 100]"),
    ({"field_boosts": {"title": 101}}, "field boosts must be in (0, 100]"),
    ({"field_boosts": {"title": "3"}}, "field boosts must be in (0, 100]"),
    ({"depth": 0}, "depth must be an integer in [1, 1000]"),
    ({"depth": MAX_DEPTH + 1, "num_candidates": MAX_NUM_CANDIDATES}, "depth must be an integer in [1, 1000]"),
    ({"depth": 10.5}, "depth must be an integer"),
    ({"num_candidates": 99}, "num_candidates must be in [depth, 10000]"),  # below the default depth 100
    ({"num_candidates": MAX_NUM_CANDIDATES + 1}, "num_candidates must be in [depth, 10000]"),
    ({"rescore_oversample": 0.5}, "rescore_oversample must be null, 0 (off) or a number in [1, 10"),
    ({"rescore_oversample": 10.5}, "rescore_oversample must be null, 0 (off) or a number in [1, 10"),
    ({"rescore_oversample": "3"}, "rescore_oversample must be null, 0 (off) or a number in [1, 10"),
    ({"rescore_oversample": True}, "rescore_oversample must be null, 0 (off) or a number in [1, 10"),
    ({"boost_window": 99}, "boost_window must be 0 (boosts in the query) or an integer in [depth, 5000]"),
    ({"boost_window": 5001}, "boost_window must be 0 (boosts in the query) or an integer in [depth, 5000]"),
    ({"boost_window": True}, "boost_window must be 0 (boosts in the query) or an integer in [depth, 5000]"),
    ({"boost_window": 300.0}, "boost_window must be 0 (boosts in the query) or an integer in [depth, 5000]"),
    ({"negative_weight": -0.01}, "negative_weight must be in [0, 1]"),
    ({"negative_weight": 1.01}, "negative_weight must be in [0, 1]"),
])
def test_ranking_config_rejections(overrides: dict, message: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        RankingConfig(**overrides)
    assert info.value.message.startswith(message)
    assert info.value.http_status == 400


def test_edges_that_are_allowed() -> None:
    config = RankingConfig(legs={"bm25": 0, "text_text": 100}, rrf_k=0, depth=1, num_candidates=1,
                           negative_weight=0, bounds={"bm25": (0, 0)}, field_boosts={"title": 100})
    assert config.legs == {"bm25": 0, "text_text": 100} and config.bounds == {"bm25": (0, 0)}
    RankingConfig(depth=MAX_DEPTH, num_candidates=MAX_NUM_CANDIDATES, rrf_k=10_000, negative_weight=1)
    for window in (0, 100, 5000):
        assert RankingConfig(boost_window=window).boost_window == window
    for oversample in (None, 0, 1, 3.5, 10):
        assert RankingConfig(rescore_oversample=oversample).rescore_oversample == oversample


def test_unknown_legs_are_named_in_the_error_context() -> None:
    with pytest.raises(RequestValidationError) as info:
        RankingConfig(legs={"bm25": 1, "zzz": 1, "aaa": 1})
    assert info.value.context["unknown"] == ["aaa", "zzz"]


def test_from_dict_rejects_unknown_settings_and_non_mappings() -> None:
    with pytest.raises(RequestValidationError) as info:
        RankingConfig.from_dict({"method": "rrf", "rrf_constant": 60, "alpha": 1})
    assert info.value.context["unknown"] == ["alpha", "rrf_constant"]
    with pytest.raises(RequestValidationError, match="must be a mapping"):
        RankingConfig.from_dict(["method", "rrf"])  # type: ignore[arg-type]


def test_to_dict_from_dict_round_trip() -> None:
    config = RankingConfig(name="linear-l2", legs={"bm25": 2.0, "text_image": 0.5}, method="linear", rrf_k=10,
                           normalization="l2", combination="harmonic", bounds={"bm25": (0.0, 25.0)},
                           field_boosts={"title": 5.0}, depth=50, num_candidates=500, negative_weight=0.25,
                           native_retriever=True)
    data = config.to_dict()
    assert data["bounds"] == {"bm25": [0.0, 25.0]}  # JSON-friendly lists, not tuples
    assert data["legs"] == {"bm25": 2.0, "text_image": 0.5}
    again = RankingConfig.from_dict(data)
    assert again == config and again.bounds == {"bm25": (0.0, 25.0)}
    assert RankingConfig.from_dict(RankingConfig().to_dict()) == RankingConfig()


def test_with_overrides_replaces_only_what_is_given_and_revalidates() -> None:
    base = RankingConfig(name="base", depth=50, num_candidates=100)
    changed = base.with_overrides({"method": "linear", "legs": {"bm25": 1.0}})
    assert (changed.name, changed.depth, changed.method, changed.legs) == ("base", 50, "linear", {"bm25": 1.0})
    assert base.method == "rrf"  # frozen original untouched
    with pytest.raises(RequestValidationError, match="num_candidates"):
        base.with_overrides({"depth": 150})  # 150 > num_candidates 100
    with pytest.raises(RequestValidationError, match="unknown ranking settings"):
        base.with_overrides({"k": 1})


# Bugs: malformed ranking overrides (they arrive unchecked from JSON "ranking" and the proxy's
# X-Hybrid-Options header) escape as TypeError/ValueError, i.e. a 500, instead of a 400.
@pytest.mark.parametrize("overrides", [
    {"negative_weight": "0.5"},
    {"bounds": {"bm25": 5}},
    {"bounds": {"bm25": [0, "x"]}},
    {"legs": ["bm25"]},
    {"field_boosts": ["title"]},
])
def test_malformed_overrides_are_validation_errors_not_crashes(overrides: dict) -> None:
    with pytest.raises(RequestValidationError):
        RankingConfig.from_dict(overrides)


def test_booleans_are_not_integers_in_ranking_settings() -> None:
    # JSON true would silently become rrf_k=1 / depth=1 (bool is an int subclass).
    for overrides in ({"rrf_k": True}, {"depth": True, "num_candidates": 200}):
        with pytest.raises(RequestValidationError):
            RankingConfig.from_dict(overrides)


def test_all_zero_leg_weights_are_refused_up_front() -> None:
    # Otherwise every leg is skipped and the request ends as a 503 "no leg can answer"
    # (EncoderUnavailableError) although the client sent an impossible config (a 400).
    with pytest.raises(RequestValidationError):
        RankingConfig(legs={"bm25": 0, "text_text": 0.0})


# --- SearchRequest -----------------------------------------------------------------------


def test_text_is_stripped_and_blank_becomes_none() -> None:
    request = SearchRequest(text="  red shirt \n", negative_text="   ", image=b"x")
    assert request.text == "red shirt" and request.negative_text is None
    assert request.modalities == {"text", "image"}
    assert SearchRequest(text="   ", image=b"jpeg").modalities == {"image"}
    assert SearchRequest(text="x").modalities == {"text"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "give a text query, an image, or both"),
    ({"text": "   "}, "give a text query, an image, or both"),
    ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text is longer than 512 characters"),
    ({"text": "x", "negative_text": "n" * (MAX_TEXT_CHARS + 1)}, "negative_text is longer than 512 characters"),
    ({"text": "x", "size": -1}, "size must be an integer in [0, 100]"),
    ({"text": "x", "size": MAX_SIZE + 1}, "size must be an integer in [0, 100]"),
    ({"text": "x", "size": 10.0}, "size must be an integer in [0, 100]"),
    ({"text": "x", "offset": -1}, "from/offset must be an integer in [0, 1000]"),
    ({"text": "x", "offset": MAX_DEPTH + 1}, "from/offset must be an integer in [0, 1000]"),
    ({"text": "x", "text_weight": -0.5}, "text_weight must be a number in [0, 10]"),
    ({"text": "x", "image_weight": 10.5}, "image_weight must be a number in [0, 10]"),
    ({"text": "x", "image_weight": "2"}, "image_weight must be a number in [0, 10]"),
    ({"text": "x", "facets": ("gender", "colour")}, "unknown facet fields"),
    ({"text": "x", "filters": {"price": 3}}, "filtering on this field is not allowed"),
])
def test_search_request_rejections(kwargs: dict, message: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        SearchRequest(**kwargs)
    assert info.value.message.startswith(message)


def test_search_request_limits_are_inclusive() -> None:
    request = SearchRequest(text="x" * MAX_TEXT_CHARS, size=MAX_SIZE, offset=MAX_DEPTH, text_weight=0,
                            image_weight=10, facets=["gender", "brand"], filters={"gender": "Men"})
    assert request.facets == ("gender", "brand") and request.filters == {"gender": ["Men"]}
    assert SearchRequest(text="x", size=0).size == 0


def test_search_request_size_rejects_booleans() -> None:
    # Bug: bool passes isinstance(..., int), so size=True is accepted as size 1.
    with pytest.raises(RequestValidationError):
        SearchRequest(text="x", size=True)


# --- validate_filters ---------------------------------------------------------------------


def test_filters_are_normalised() -> None:
    assert validate_filters(None) == {}
    assert validate_filters({}) == {}
    assert validate_filters({"gender": "Men", "base_colour": ["Blue", "Navy Blue"], "has_image": True,
                             "year": {"gte": 2010, "lt": 2013.5}}) == {
        "gender": ["Men"], "base_colour": ["Blue", "Navy Blue"], "has_image": [True],
        "year": {"gte": 2010, "lt": 2013.5}}
    assert validate_filters({"brand": ["b"] * 50}) == {"brand": ["b"] * 50}


@pytest.mark.parametrize(("filters", "message"), [
    (["gender", "Men"], "filters must be an object"),
    ("gender=Men", "filters must be an object"),
    ({"gender": []}, "keyword filters take a value or a list of up to 50 values"),
    ({"gender": ["x"] * 51}, "keyword filters take a value or a list of up to 50 values"),
    ({"gender": None}, "keyword filters take a value or a list of up to 50 values"),
    ({"gender": {"gte": 1}}, "keyword filters take a value or a list of up to 50 values"),
    ({"gender": ["Men", 1.5]}, "keyword filters take a value or a list of up to 50 values"),
    ({"year": 2012}, "range filters take an object with gte/lte/gt/lt"),
    ({"year": {}}, "range filters take an object with gte/lte/gt/lt"),
    ({"year": {"from": 2010}}, "range filters take an object with gte/lte/gt/lt"),
    ({"year": {"gte": "2010"}}, "range bounds must be numbers"),
    ({"year": {"gte": True}}, "range bounds must be numbers"),
    ({"title": "shirt"}, "filtering on this field is not allowed"),
    ({"text_vector": [0.1]}, "filtering on this field is not allowed"),
])
def test_filter_rejections(filters: object, message: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_filters(filters)
    assert info.value.message == message


def test_disallowed_filter_names_the_field_and_the_whitelist() -> None:
    with pytest.raises(RequestValidationError) as info:
        validate_filters({"price": 1})
    assert info.value.context["field"] == "price"
    assert "year" in info.value.context["allowed"] and "gender" in info.value.context["allowed"]


@pytest.mark.parametrize("bad", [{"adaptive": 3}, {"adaptive": [1]}, {"adaptive": "x"}, {"name": 7}, {"name": ""},
                                 {"name": "n" * 101}])
def test_ranking_configs_of_the_wrong_shape_are_refused_at_the_source(bad: dict) -> None:
    # Ranking files and overrides alike: an adaptive that is not an object was an AttributeError (500).
    with pytest.raises(RequestValidationError):
        RankingConfig.from_dict(bad)


def test_the_large_catalog_ranking_file_loads_with_its_two_settings() -> None:
    from mmsearch.config import PROJECT_ROOT
    from query_service.ranking import load_service_ranking

    ranking = load_service_ranking(PROJECT_ROOT / "docs" / "relevance" / "variants" / "large_catalog.yaml").default
    assert (ranking.name, ranking.boost_window, ranking.rescore_oversample) == ("large-catalog", 1000, 3)
    assert ranking.legs == RankingConfig().legs and ranking.understanding  # the rest is the default

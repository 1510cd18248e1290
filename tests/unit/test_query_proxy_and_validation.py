"""Pure parts of the proxy, request validation and query building (no server)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from mmsearch.exceptions import PayloadTooLargeError, RequestValidationError
from query_service import proxy, queries
from query_service.ranking import RankingConfig, SearchRequest
from query_service.validation import ServiceLimits, from_json, from_query_args, openapi_document


@pytest.mark.parametrize(("query", "text"), [
    ({"match": {"title": "blue shirt"}}, "blue shirt"),
    ({"match": {"title": {"query": "red dress", "operator": "and"}}}, "red dress"),
    ({"multi_match": {"query": "shoes", "fields": ["a", "b"]}}, "shoes"),
    ({"simple_query_string": {"query": "watch +steel"}}, "watch +steel"),
    ({"bool": {"must": [{"match": {"title": "navy"}}, {"bool": {"must": {"match": {"t": "jeans"}}}}],
               "filter": [{"term": {"gender": "Men"}}]}}, "navy jeans"),
    ({"match_all": {}}, None),
    ({"term": {"title": "shirt"}}, None),
    ({"bool": {"should": [{"match": {"title": "x"}}]}}, "x"),  # one text phrased in should clauses
    ({"bool": {"should": [{"match": {"title": "x"}}], "minimum_should_match": 2}}, None),
    ({"query_string": {"query": "title:x"}}, None),
])
def test_extract_text(query: dict, text: str | None) -> None:
    assert proxy.extract_text(query) == text


def test_filter_of_keeps_the_apps_filters() -> None:
    query = {"bool": {"must": {"match": {"title": "x"}}, "filter": {"term": {"gender": "Men"}}}}
    assert proxy.filter_of(query) == [{"term": {"gender": "Men"}}]
    assert proxy.filter_of({"match": {"title": "x"}}) == []


@pytest.mark.parametrize(("body", "params", "options", "reason"), [
    ({"query": {"match": {"t": "x"}}, "sort": [{"year": "desc"}]}, {}, {}, "sort"),
    ({"query": {"match": {"t": "x"}}, "knn": {}}, {}, {}, "knn"),
    ({"query": {"match": {"t": "x"}}}, {"scroll": "1m"}, {}, "scroll"),
    ({"query": {"match": {"t": "x"}}, "size": 0}, {}, {}, "size 0"),
    ({"query": {"match": {"t": "x"}}, "from": 95, "size": 10}, {}, {}, "beyond"),
    ({"query": {"match_all": {}}}, {}, {}, "no user text"),
    ({"query": {"match": {"t": "x"}}}, {}, {"off": True}, "disabled"),
    (None, {}, {}, "no JSON body"),
])
def test_plan_passes_through_what_it_cannot_improve(body, params, options, reason) -> None:
    plan = proxy.plan(body, params, options, depth=100)
    assert not plan.improvable and reason in plan.reason


def test_plan_for_an_improvable_query() -> None:
    plan = proxy.plan({"query": {"bool": {"must": {"match": {"title": "red"}}, "filter": [{"term": {"g": "M"}}]}},
                       "from": 10, "size": 5}, {}, {}, depth=100)
    assert plan.improvable and plan.text == "red" and (plan.offset, plan.size) == (10, 5)
    assert plan.knn_filter == [{"term": {"g": "M"}}]


def test_options_header() -> None:
    assert proxy.parse_options(None) == {}
    assert proxy.parse_options("off") == {"off": True}
    assert proxy.parse_options('{"method": "linear"}') == {"method": "linear"}
    for bad in ("{nope", "[1, 2]"):
        with pytest.raises(ValueError):
            proxy.parse_options(bad)


def test_bm25_body_never_uses_query_string_and_filters_everywhere() -> None:
    ranking = RankingConfig()
    body = queries.bm25_body('title:x OR "y"', ranking, {"gender": ["Men"], "year": {"gte": 2012}}, "leather")
    text = json.dumps(body)
    assert "query_string" not in text.replace("simple_query_string", "")
    assert body["query"]["bool"]["must"][0]["multi_match"]["query"] == 'title:x OR "y"'
    assert body["query"]["bool"]["filter"] == [{"terms": {"gender": ["Men"]}}, {"range": {"year": {"gte": 2012}}}]
    assert body["query"]["bool"]["must_not"][0]["multi_match"]["query"] == "leather"
    knn = queries.knn_of(queries.knn_body("image_vector", [0.1, 0.2], ranking, {"gender": ["Men"]}))
    assert knn["filter"] == [{"terms": {"gender": ["Men"]}}] and knn["k"] == ranking.depth


def test_rank_by_cosine_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    hits = [{"_id": str(i), "_source": {"v": vectors[i].tolist(), "title": f"t{i}"}} for i in range(50)]
    query = rng.normal(size=8)
    ranked = queries.rank_by_cosine(query, hits, "v", 5)
    cos = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
    assert [doc for doc, _, _ in ranked] == [str(i) for i in np.argsort(-cos)[:5]]
    assert ranked[0][1] == pytest.approx((1 + cos.max()) / 2, rel=1e-5)
    assert "v" not in ranked[0][2]  # vectors are not echoed back in _source
    tied = [{"_id": "b", "_source": {"v": [1.0, 0.0]}}, {"_id": "a", "_source": {"v": [2.0, 0.0]}}]
    assert [d for d, _, _ in queries.rank_by_cosine([1.0, 0.0], tied, "v", 2)] == ["a", "b"]


def test_negative_text_steers_the_query_vector() -> None:
    positive, negative = np.array([1.0, 0.0], dtype=np.float32), np.array([0.6, 0.8], dtype=np.float32)
    steered = queries.combine_query_vector(positive, negative, 0.5)
    assert np.linalg.norm(steered) == pytest.approx(1.0) and steered @ negative < positive @ negative
    assert queries.combine_query_vector(positive, None, 0.5) is positive


def test_ranking_and_request_validation() -> None:
    config = RankingConfig.from_dict({"method": "linear", "legs": {"bm25": 2.0}, "bounds": {"bm25": [0, 10]}})
    assert RankingConfig.from_dict(config.to_dict()) == config
    for bad in ({"legs": {"magic": 1}}, {"legs": {}}, {"method": "x"}, {"rrf_k": -1}, {"depth": 5000},
                {"depth": 100, "num_candidates": 50}, {"field_boosts": {"password": 1}}, {"unknown": 1},
                {"bounds": {"bm25": [2, 1]}}):
        with pytest.raises(RequestValidationError):
            RankingConfig.from_dict(bad)
    for bad in ({}, {"text": "  "}, {"text": "x", "size": 101}, {"text": "x", "filters": {"secret": 1}},
                {"text": "x", "filters": {"year": {"gte": "2012"}}}, {"text": "x", "facets": ("nope",)},
                {"text": "x", "image_weight": 11}):
        with pytest.raises(RequestValidationError):
            SearchRequest(**bad)
    assert SearchRequest(text="x", filters={"gender": "Men"}).filters == {"gender": ["Men"]}


def test_http_input_parsing() -> None:
    limits = ServiceLimits(max_body_bytes=4096, max_image_bytes=1024)
    request, overrides, unit = from_json({"text": "x", "ranking": {"method": "linear"}, "user_id": "u1"}, limits)
    assert request.text == "x" and overrides == {"method": "linear"} and unit == "u1"
    with pytest.raises(RequestValidationError, match="foo"):
        from_json({"text": "x", "foo": 1}, limits)
    with pytest.raises(RequestValidationError):
        from_json({"image_base64": "***"}, limits)
    with pytest.raises(PayloadTooLargeError):
        from_json({"image_base64": base64.b64encode(b"x" * 2048).decode()}, limits)
    request, _, _ = from_query_args({"q": "red", "filter.gender": "Men,Women", "filter.year.gte": "2012",
                                     "size": "3"})
    assert request.filters == {"gender": ["Men", "Women"], "year": {"gte": 2012}} and request.size == 3
    for bad in ({"q": "x", "size": "many"}, {"q": "x", "colour": "red"}, {"q": "x", "filter.a.b.c": "1"},
                {"q": "x", "filter.year.gte": "soon"}):
        with pytest.raises(RequestValidationError):
            from_query_args(bad)
    assert "/search" in openapi_document()["paths"]


def test_native_rrf_body_shape() -> None:
    ranking = RankingConfig(rrf_k=20, depth=50, num_candidates=100)
    body = queries.native_rrf_body("shirt", {"text_text": ("text_vector", [0.1, 0.2])}, ranking,
                                   {"gender": ["Men"]}, size=10)
    retrievers = body["retriever"]["rrf"]["retrievers"]
    assert [next(iter(r)) for r in retrievers] == ["standard", "knn"]
    assert body["retriever"]["rrf"]["rank_constant"] == 20 and body["retriever"]["rrf"]["rank_window_size"] == 50
    assert retrievers[1]["knn"]["filter"] == [{"terms": {"gender": ["Men"]}}] and body["size"] == 10
    assert "standard" not in json.dumps(queries.native_rrf_body(None, {}, ranking, {}, 5))

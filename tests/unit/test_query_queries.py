"""Leg bodies (query_service.queries): safe text handling, filters in every leg, exact cosine ranking."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from query_service import queries
from query_service.ranking import SOURCE_FIELDS, RankingConfig

RANKING = RankingConfig()
FILTERS = {"gender": ["Men"], "base_colour": ["Blue", "Navy Blue"], "year": {"gte": 2010, "lte": 2015}}
FILTER_CLAUSES = [{"terms": {"gender": ["Men"]}}, {"terms": {"base_colour": ["Blue", "Navy Blue"]}},
                  {"range": {"year": {"gte": 2010, "lte": 2015}}}]


def _walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) in a JSON-like tree, keys included as values."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (key,), key
            yield from _walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, path + (i,))
    else:
        yield path, node


# --- filters -----------------------------------------------------------------------------


def test_filter_clauses_terms_and_ranges_in_order() -> None:
    assert queries.filter_clauses(FILTERS) == FILTER_CLAUSES
    assert queries.filter_clauses({}) == []
    assert queries.filter_clauses({"has_image": [True]}) == [{"terms": {"has_image": [True]}}]


# --- BM25 --------------------------------------------------------------------------------


def test_bm25_body_exact_shape() -> None:
    body = queries.bm25_body("red shirt", RANKING, FILTERS)
    assert body == {
        "query": {"bool": {
            "must": [{"multi_match": {"query": "red shirt",
                                      "fields": ["title^3", "category_path^2", "search_text^1"],
                                      "type": "best_fields"}}],
            "filter": FILTER_CLAUSES}},
        "size": 100, "_source": list(SOURCE_FIELDS), "track_total_hits": False}
    assert "must_not" not in body["query"]["bool"] and "timeout" not in body


@pytest.mark.parametrize("text", ['title:shirt OR brand:*', '"quoted" AND (x OR y)~2 ^5 \\', "{\"q\": 1}"])
def test_user_text_only_ever_reaches_multi_match(text: str) -> None:
    body = queries.bm25_body(text, RANKING, {"gender": ["Men"]}, negative_text="leather NOT:x")
    dumped = json.dumps(body)
    assert "query_string" not in dumped and "simple_query_string" not in dumped
    places = [path for path, value in _walk(body) if value == text]
    assert places == [("query", "bool", "must", 0, "multi_match", "query")]
    negative = [path for path, value in _walk(body) if value == "leather NOT:x"]
    assert negative == [("query", "bool", "must_not", 0, "multi_match", "query")]


def test_negative_text_becomes_must_not_over_the_same_fields() -> None:
    body = queries.bm25_body("shoes", RANKING, {}, negative_text="leather")
    assert body["query"]["bool"]["must_not"] == [
        {"multi_match": {"query": "leather", "fields": ["title^3", "category_path^2", "search_text^1"]}}]
    assert body["query"]["bool"]["filter"] == []


def test_bm25_body_size_timeout_and_custom_boosts() -> None:
    ranking = RankingConfig(field_boosts={"title": 2.5, "search_text": 1.0}, depth=30, num_candidates=30)
    body = queries.bm25_body("x", ranking, {}, size=7, timeout_ms=250)
    assert body["query"]["bool"]["must"][0]["multi_match"]["fields"] == ["title^2.5", "search_text^1"]
    assert (body["size"], body["timeout"]) == (7, "250ms")
    assert queries.bm25_body("x", ranking, {})["size"] == 30


# --- kNN ---------------------------------------------------------------------------------


def test_knn_body_puts_filters_in_knn_filter_not_post_filter() -> None:
    body = queries.knn_body("image_vector", np.array([0.5, -0.25], dtype=np.float32), RANKING, FILTERS,
                            timeout_ms=2000)
    assert body == {"query": {"knn": {"field": "image_vector", "query_vector": [0.5, -0.25], "k": 100,
                                      "num_candidates": 200, "filter": FILTER_CLAUSES}},
                    "size": 100, "_source": list(SOURCE_FIELDS), "track_total_hits": False, "timeout": "2000ms"}
    assert list(body["query"]) == ["knn"] and "post_filter" not in body  # no bool wrapper: filters stay pre-filters
    assert all(type(x) is float for x in queries.knn_of(body)["query_vector"])  # JSON-serialisable, not np.float32
    json.dumps(body)


def test_knn_body_without_filters_and_with_escalated_candidates() -> None:
    body = queries.knn_body("text_vector", [1, 0], RANKING, {}, num_candidates=3200)
    assert "filter" not in queries.knn_of(body) and queries.knn_of(body)["num_candidates"] == 3200 and queries.knn_of(body)["k"] == 100


def test_knn_body_asks_for_rescoring_only_when_the_ranking_sets_it() -> None:
    assert "rescore_vector" not in queries.knn_of(queries.knn_body("text_vector", [1, 0], RANKING, {}))
    for oversample, sent in ((0, 0.0), (3, 3.0), (2.5, 2.5)):
        ranking = RANKING.with_overrides({"rescore_oversample": oversample})
        knn = queries.knn_of(queries.knn_body("text_vector", [1, 0], ranking, FILTERS))
        assert knn["rescore_vector"] == {"oversample": sent} and knn["filter"] == FILTER_CLAUSES


def test_exact_bodies_keep_the_filter_and_require_the_vector() -> None:
    script = queries.exact_script_body("image_vector", [1.0, 0.0], {"gender": ["Men"]}, 5)
    inner = script["query"]["script_score"]
    assert inner["query"] == {"bool": {"filter": [{"terms": {"gender": ["Men"]}},
                                                  {"exists": {"field": "image_vector"}}]}}
    assert inner["script"]["params"] == {"q": [1.0, 0.0]} and "image_vector" in inner["script"]["source"]
    assert script["size"] == 5
    fetch = queries.exact_fetch_body("text_vector", {}, 42)
    assert fetch["query"] == {"bool": {"filter": [{"exists": {"field": "text_vector"}}]}}
    assert fetch["size"] == 42
    assert fetch["_source"]["exclude_vectors"] is False and "text_vector" in fetch["_source"]["includes"]


# --- exact cosine ---------------------------------------------------------------------------


def _hit(doc_id: str, vector: list[float], **extra: Any) -> dict[str, Any]:
    return {"_id": doc_id, "_source": {"id": doc_id, "v": vector, **extra}}


def test_rank_by_cosine_hand_computed_with_ties_by_id() -> None:
    hits = [_hit("c", [-1.0, 0.0]), _hit("d", [2.0, 0.0]), _hit("b", [0.0, 3.0]), _hit("a", [1.0, 0.0]),
            _hit("e", [1.0, 1.0], title="t")]
    ranked = queries.rank_by_cosine([3.0, 0.0], hits, "v", k=10)
    # (1 + cos) / 2: a and d are identical in direction (1.0; tie -> id order), e is 45 degrees.
    assert [doc for doc, _, _ in ranked] == ["a", "d", "e", "b", "c"]
    expected = [1.0, 1.0, (1 + 2 ** -0.5) / 2, 0.5, 0.0]
    assert [score for _, score, _ in ranked] == pytest.approx(expected, abs=1e-6)
    assert ranked[2][2] == {"id": "e", "title": "t"}  # the vector is dropped from the source
    assert [doc for doc, _, _ in queries.rank_by_cosine([3.0, 0.0], hits, "v", k=2)] == ["a", "d"]
    assert queries.rank_by_cosine([1.0, 0.0], [], "v", k=3) == []


def test_rank_by_cosine_matches_numpy_brute_force() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors[17] = vectors[3] * 4  # an exact tie in direction
    query = rng.normal(size=16).astype(np.float32)
    hits = [_hit(f"p{i:03d}", vectors[i].tolist()) for i in range(300)]
    ranked = queries.rank_by_cosine(query, hits, "v", k=50)
    cos = (vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    scores = (1 + cos.astype(np.float64)) / 2
    expected = sorted(range(300), key=lambda i: (-round(float(scores[i]), 5), f"p{i:03d}"))[:50]
    assert [doc for doc, _, _ in ranked] == [f"p{i:03d}" for i in expected]
    assert [s for _, s, _ in ranked] == pytest.approx([float(scores[i]) for i in expected], abs=1e-5)
    if "p003" in [d for d, _, _ in ranked]:
        ids = [d for d, _, _ in ranked]
        assert ids.index("p003") + 1 == ids.index("p017")


# --- negative query vector ----------------------------------------------------------------


def test_combine_query_vector() -> None:
    positive = np.array([1.0, 0.0], dtype=np.float32)
    negative = np.array([0.0, 1.0], dtype=np.float32)
    combined = queries.combine_query_vector(positive, negative, 0.5)
    assert combined == pytest.approx([1 / 1.25 ** 0.5, -0.5 / 1.25 ** 0.5], abs=1e-6)  # normalise(q - 0.5 n)
    assert combined.dtype == np.float32 and float(np.linalg.norm(combined)) == pytest.approx(1.0, abs=1e-6)
    assert queries.combine_query_vector(positive, None, 0.5) is positive
    assert queries.combine_query_vector(positive, negative, 0.0) is positive
    # q - 1.0 * q is the zero vector: keep the positive query rather than divide by ~0.
    assert queries.combine_query_vector(positive, positive.copy(), 1.0) is positive


# --- msearch and responses -----------------------------------------------------------------


def test_msearch_payload_alternates_header_and_body() -> None:
    first, second = {"query": {"match_all": {}}}, {"knn": {"field": "v"}}
    payload = queries.msearch_payload("qs-dev", [first, second])
    assert payload == [{"index": "qs-dev"}, first, {"index": "qs-dev"}, second]
    payload[1]["size"] = 3
    assert "size" not in first  # bodies are copied
    assert queries.msearch_payload("x", []) == []


def test_parse_leg_response() -> None:
    response = {"took": 3, "hits": {"hits": [
        {"_id": "7", "_score": 2.5, "_source": {"title": "a"}},
        {"_id": 12, "_score": None, "_source": {"title": "b"}},
        {"_id": "9", "_score": 1}]}}
    ranked, sources = queries.parse_leg_response(response)
    assert ranked == [("7", 2.5), ("12", 0.0), ("9", 1.0)]
    assert sources == {"7": {"title": "a"}, "12": {"title": "b"}, "9": {}}
    assert queries.parse_leg_response({}) == ([], {})
    assert queries.parse_leg_response({"hits": {"hits": []}}) == ([], {})


# --- native rrf retriever --------------------------------------------------------------------


def test_native_rrf_body_shape() -> None:
    ranking = RankingConfig(rrf_k=20, depth=50, num_candidates=60)
    body = queries.native_rrf_body("red shirt", {"text_text": ("text_vector", [1.0, 0.0]),
                                                 "text_image": ("image_vector", [0.0, 1.0])},
                                   ranking, {"gender": ["Men"]}, size=10)
    rrf = body["retriever"]["rrf"]
    assert (rrf["rank_constant"], rrf["rank_window_size"], body["size"]) == (20, 50, 10)
    standard, knn_text, knn_image = rrf["retrievers"]
    assert standard == {"standard": {"query": queries.bm25_body("red shirt", ranking, {"gender": ["Men"]})["query"]}}
    assert knn_text["knn"] == {"field": "text_vector", "query_vector": [1.0, 0.0], "k": 50, "num_candidates": 60,
                               "filter": [{"terms": {"gender": ["Men"]}}]}
    assert knn_image["knn"]["field"] == "image_vector"
    assert body["_source"] == list(SOURCE_FIELDS)
    image_only = queries.native_rrf_body(None, {"image_image": ("image_vector", [1.0])}, RankingConfig(rrf_k=0),
                                         {}, 10)
    assert [list(r) for r in image_only["retriever"]["rrf"]["retrievers"]] == [["knn"]]
    assert image_only["retriever"]["rrf"]["rank_constant"] == 1  # ES requires rank_constant >= 1


def test_native_rrf_window_covers_the_requested_page() -> None:
    # Bug: the engine asks for size = from + size (e.g. 95 + 10) while rank_window_size = depth (100);
    # Elasticsearch refuses compound retrievers whose size exceeds rank_window_size
    # ("[rrf] requires [rank_window_size: 100] be greater than or equal to [size: 105]").
    body = queries.native_rrf_body("x", {}, RankingConfig(), {}, size=105)
    assert body["retriever"]["rrf"]["rank_window_size"] >= body["size"]


def test_ids_only_drops_source_keeps_the_query_and_asks_facet_doc_values() -> None:
    body = queries.knn_body("text_vector", [0.1, 0.2], RankingConfig(), {"gender": ["Men"]})
    lean = queries.ids_only(body, ["gender", "base_colour"])
    assert lean["_source"] is False and lean["docvalue_fields"] == ["gender", "base_colour"]
    assert lean["query"] == body["query"] and body["_source"] == list(SOURCE_FIELDS)  # input untouched
    assert "docvalue_fields" not in queries.ids_only(body)


def test_page_sources_body_asks_exactly_the_page() -> None:
    body = queries.page_sources_body(["b", "a"])
    assert body == {"query": {"ids": {"values": ["b", "a"]}}, "size": 2, "_source": list(SOURCE_FIELDS),
                    "track_total_hits": False}


def test_parse_leg_response_takes_doc_values_when_there_is_no_source() -> None:
    response = {"hits": {"hits": [{"_id": "a", "_score": 2.0, "fields": {"gender": ["Men"]}},
                                  {"_id": "b", "_score": 1.0, "_source": {"gender": "Women"},
                                   "fields": {"gender": ["ignored"]}}]}}
    ranked, sources = queries.parse_leg_response(response)
    assert ranked == [("a", 2.0), ("b", 1.0)]
    assert sources == {"a": {"gender": ["Men"]}, "b": {"gender": "Women"}}  # _source wins when both exist


def test_ids_only_with_a_doc_values_id_loads_no_stored_fields() -> None:
    body = {"query": {"match_all": {}}, "size": 100, "_source": ["title"]}
    lean = queries.ids_only(body, ["gender", "id"], id_field="id")
    assert lean["stored_fields"] == "_none_" and "_source" not in lean  # ES refuses _source with _none_
    assert lean["docvalue_fields"] == ["id", "gender"]


def test_parse_id_field_leg_trusts_only_indices_that_declare_the_field() -> None:
    response = {"hits": {"hits": [{"_index": "p-v2", "_score": 2.0, "fields": {"id": ["7"], "gender": ["Men"]}},
                                  {"_index": "p-v2", "_score": 1.0, "fields": {"id": ["9"]}},
                                  {"_index": "p-v2", "_id": "4", "_score": 0.5, "fields": {"gender": ["Women"]}}]}}
    ranked, sources = queries.parse_id_field_leg(response, {"p-v2": "id"}, "id", keep_field=False)
    assert ranked == [("7", 2.0), ("9", 1.0), ("4", 0.5)]
    assert sources == {"7": {"gender": ["Men"]}, "4": {"gender": ["Women"]}}  # no empty entry for "9"
    _, kept = queries.parse_id_field_leg(response, {"p-v2": "id"}, "id", keep_field=True)
    assert kept == {"7": {"id": ["7"], "gender": ["Men"]}, "9": {"id": ["9"]}, "4": {"gender": ["Women"]}}
    # The same as parse_leg_response once the ids are in place (the ordinary path).
    ordinary = {"hits": {"hits": [{"_id": "7", "_score": 2.0, "fields": {"id": ["7"], "gender": ["Men"]}},
                                  {"_id": "9", "_score": 1.0, "fields": {"id": ["9"]}},
                                  {"_id": "4", "_score": 0.5, "fields": {"gender": ["Women"]}}]}}
    assert queries.parse_leg_response(ordinary) == (ranked, kept)
    for known in ({}, {"p-v2": None}, {"p-v1": "id"}):  # unknown index, or one without the field
        assert queries.parse_id_field_leg(response, known, "id", keep_field=False) is None
    missing = {"hits": {"hits": [{"_index": "p-v2", "_score": 1.0, "fields": {}}]}}
    assert queries.parse_id_field_leg(missing, {"p-v2": "id"}, "id", keep_field=False) is None
    assert queries.parse_id_field_leg({}, {}, "id", keep_field=False) == ([], {})

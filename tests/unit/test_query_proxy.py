"""The ES-compatible proxy's pure parts: text extraction, passthrough planning, options, response shape."""

from __future__ import annotations

import json

import pytest

from query_service import dsl, proxy
from query_service.dsl import AppQuery, AppResult

MATCH = {"match": {"title": "blue shirt"}}

# --- extract_text --------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ({"match": {"title": "blue shirt"}}, "blue shirt"),
    ({"match": {"title": {"query": "red dress", "operator": "and", "boost": 2}}}, "red dress"),
    ({"match": {"year": 2012}}, "2012"),
    ({"multi_match": {"query": "running shoes", "fields": ["title^3", "search_text"]}}, "running shoes"),
    ({"simple_query_string": {"query": "watch +steel -gold", "fields": ["title"]}}, "watch +steel -gold"),
    ({"bool": {"must": {"match": {"title": "navy"}}}}, "navy"),
    ({"bool": {"must": [{"match": {"title": "navy"}}, {"term": {"gender": "Men"}},
                        {"bool": {"must": [{"multi_match": {"query": "slim jeans"}}]}}],
               "filter": [{"term": {"gender": "Men"}}], "should": [{"match": {"brand": "levis"}}]}},
     "navy slim jeans"),
    # Searchkit 4: one text phrased three ways in should clauses under bool.must (an object)
    ({"bool": {"filter": [], "must": {"bool": {"should": [
        {"bool": {"should": [{"multi_match": {"query": "blue shirt", "fields": ["title"], "fuzziness": "AUTO:4,8"}},
                             {"multi_match": {"query": "blue shirt", "fields": ["title"], "type": "bool_prefix"}}]}},
        {"multi_match": {"query": "blue shirt", "type": "phrase", "fields": ["title"]}}]}}}}, "blue shirt"),
    ({"match_phrase": {"title": "red dress"}}, "red dress"),
])
def test_extract_text_finds_the_shoppers_words(query: dict, expected: str) -> None:
    assert proxy.extract_text(query) == expected


@pytest.mark.parametrize("query", [
    {"match_all": {}},
    {"term": {"title": "shirt"}},
    {"terms": {"gender": ["Men"]}},
    {"bool": {"should": [{"match": {"title": "x"}}, {"match": {"brand": "y"}}]}},
    {"bool": {"filter": [{"match": {"title": "x"}}]}},
    {"bool": {"must": [{"match_all": {}}]}},
    {"query_string": {"query": "title:x"}},
    {"match": {"title": "   "}},
    {"match": {"title": "a", "brand": "b"}},  # malformed: two fields
    {"multi_match": {"query": 5}},
    {"match": {"title": "a"}, "term": {"x": 1}},  # two query kinds at one level is not a query
    None,
    "blue shirt",
])
def test_extract_text_gives_none_when_there_is_no_user_text(query: object) -> None:
    assert proxy.extract_text(query) is None


# --- filter_of -------------------------------------------------------------------------------


def test_filter_of() -> None:
    assert proxy.filter_of({"bool": {"must": MATCH, "filter": {"term": {"gender": "Men"}}}}) == [
        {"term": {"gender": "Men"}}]
    clauses = [{"term": {"gender": "Men"}}, {"range": {"year": {"gte": 2012}}}]
    assert proxy.filter_of({"bool": {"must": MATCH, "filter": clauses}}) == clauses
    assert proxy.filter_of(MATCH) == []
    assert proxy.filter_of({"bool": {"must": MATCH}}) == []
    assert proxy.filter_of(None) == []


# --- plan ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "params", "options", "reason"), [
    ({"query": MATCH, "sort": [{"year": "desc"}]}, {}, {}, "uses sort"),
    ({"query": MATCH, "knn": {"field": "v", "query_vector": [1], "k": 1}}, {}, {}, "uses knn"),
    ({"query": MATCH, "sort": ["_doc"], "collapse": {"field": "brand"}}, {}, {}, "uses sort, collapse"),
    ({"query": MATCH}, {"sort": "year:desc"}, {}, "uses sort"),
    ({"query": MATCH, "retriever": {}}, {}, {}, "uses retriever"),
    ({"query": MATCH, "search_after": [1]}, {}, {}, "uses search_after"),
    ({"query": MATCH, "min_score": 2}, {}, {}, "uses min_score"),
    ({"query": MATCH, "size": 0, "aggs": {"b": {"terms": {"field": "brand"}}}}, {}, {}, "size 0 (aggregations only)"),
    ({"query": MATCH}, {"size": "0"}, {}, "size 0 (aggregations only)"),
    ({"query": MATCH, "from": 95, "size": 10}, {}, {}, "from+size beyond the fused depth 100"),
    ({"query": MATCH, "size": 101}, {}, {}, "from+size beyond the fused depth 100"),
    ({"query": MATCH}, {"from": "100"}, {}, "from+size beyond the fused depth 100"),
    ({"query": {"match_all": {}}}, {}, {}, "no user text in match/multi_match/simple_query_string/bool.must"),
    ({"aggs": {}}, {}, {}, "no user text"),
    ({"query": MATCH, "from": "ten"}, {}, {}, "non-integer from/size"),
    ({"query": MATCH}, {}, {"off": True}, "hybrid disabled by header"),
    (None, {}, {}, "no JSON body"),
    ([MATCH], {}, {}, "no JSON body"),
])
def test_plan_passes_through_with_a_reason(body: object, params: dict, options: dict, reason: str) -> None:
    plan = proxy.plan(body, params, options, depth=100)
    assert plan.improvable is False
    assert plan.reason == reason or plan.reason.startswith(reason)


def test_plan_improvable_query() -> None:
    body = {"query": {"bool": {"must": [{"match": {"title": "red"}}],
                               "filter": [{"term": {"gender": "Men"}}]}},
            "from": 90, "size": 10, "aggs": {"b": {"terms": {"field": "brand"}}}, "_source": ["title"]}
    plan = proxy.plan(body, {}, {"method": "linear"}, depth=100)  # from+size == depth is still inside
    assert plan == proxy.ProxyPlan(True, "", "red", [{"term": {"gender": "Men"}}], 90, 10)
    defaults = proxy.plan({"query": MATCH}, {}, {}, depth=100)
    assert (defaults.improvable, defaults.offset, defaults.size, defaults.text) == (True, 0, 10, "blue shirt")
    from_params = proxy.plan({"query": MATCH}, {"from": "5", "size": "20"}, {}, depth=100)
    assert (from_params.offset, from_params.size) == (5, 20)


@pytest.mark.parametrize("paging", [{"from": -1}, {"size": -5}])
def test_plan_does_not_fuse_negative_paging(paging: dict) -> None:
    # Bug: from=-1 / size=-5 are planned as improvable; fusion.paginate then raises ValueError
    # and the client gets a generic 500 instead of Elasticsearch's own 400 (pass it through).
    plan = proxy.plan({"query": MATCH, **paging}, {}, {}, depth=100)
    assert plan.improvable is False


def test_post_filter_is_not_lost_by_the_vector_legs() -> None:
    # Bug: the lexical leg applies post_filter, the kNN legs only get bool.filter, so vector hits
    # that the application filtered out (e.g. women's products) are fused into the page.
    body = {"query": MATCH, "post_filter": {"term": {"gender": "Men"}}}
    plan = proxy.plan(body, {}, {}, depth=100)
    assert not plan.improvable or {"term": {"gender": "Men"}} in plan.knn_filter


def test_must_not_is_not_lost_by_the_vector_legs() -> None:
    # Bug: bool.must_not excludes docs from the lexical leg only; the kNN pre-filter ignores it.
    body = {"query": {"bool": {"must": MATCH, "must_not": [{"term": {"brand": "Nike"}}]}}}
    plan = proxy.plan(body, {}, {}, depth=100)
    assert not plan.improvable or "must_not" in json.dumps(plan.knn_filter)


def test_nested_bool_filters_are_not_lost_by_the_vector_legs() -> None:
    # Bug: extract_text recurses into bool.must, filter_of does not: this filter never reaches kNN.
    body = {"query": {"bool": {"must": [{"bool": {"must": MATCH, "filter": [{"term": {"gender": "Men"}}]}}]}}}
    plan = proxy.plan(body, {}, {}, depth=100)
    assert not plan.improvable or "gender" in json.dumps(plan.knn_filter)


# --- options header ----------------------------------------------------------------------------


def test_parse_options() -> None:
    assert proxy.parse_options(None) == {}
    assert proxy.parse_options("") == {}
    for off in ("off", " OFF ", "false", "0"):
        assert proxy.parse_options(off) == {"off": True}
    assert proxy.parse_options('{"method": "linear", "normalization": "l2"}') == {"method": "linear",
                                                                                   "normalization": "l2"}


@pytest.mark.parametrize(("header", "message"), [
    ("{nope", "must be 'off' or a JSON object"),
    ("on", "must be 'off' or a JSON object"),
    ("[1, 2]", "must be a JSON object"),
    ('"linear"', "must be a JSON object"),
    ("1", "must be a JSON object"),
])
def test_parse_options_errors(header: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        proxy.parse_options(header)
    assert proxy.OPTIONS_HEADER in str(info.value)


# --- the app query's bodies (query_service.dsl) ---------------------------------------------------


def _query(body: dict, **kwargs: object) -> AppQuery:
    return AppQuery(index="products", text="blue shirt", body=body, **kwargs)  # type: ignore[arg-type]


def test_lexical_leg_is_the_original_at_depth_without_presentation() -> None:
    body = {"query": MATCH, "aggs": {"a": {"terms": {"field": "brand"}}}, "from": 20, "size": 5,
            "_source": ["title"], "highlight": {"fields": {"title": {}}}, "track_total_hits": True}
    fused_mode = dsl.lexical_leg(_query(body), 100)
    assert fused_mode == {"query": MATCH, "from": 0, "size": 100, "track_total_hits": True}  # aggs run on the fused set
    lexical_mode = dsl.lexical_leg(_query(body, facets="lexical"), 100)
    assert lexical_mode["aggs"] == body["aggs"]
    lexical_mode["aggs"]["a"]["terms"]["field"] = "changed"
    assert body["aggs"]["a"]["terms"]["field"] == "brand" and body["from"] == 20  # deep copy
    assert dsl.lexical_leg(_query({**body, "post_filter": {"term": {"g": "M"}}}), 100)["aggs"] == body["aggs"]


def test_presentation_goes_to_the_page_fetch_and_highlights_use_the_apps_query() -> None:
    query = {"match": {"title": "blue shirt"}}
    body = {"query": query, "highlight": {"fields": {"title": {}}}, "fields": ["brand"], "version": True,
            "_source": False, "aggs": {"a": {"terms": {"field": "brand"}}}, "size": 5}
    app_query = _query(body)
    assert app_query.presentation == {"_source": False, "fields": ["brand"], "version": True,
                                      "highlight": {"fields": {"title": {}}, "highlight_query": query}}
    assert "highlight_query" not in body["highlight"]  # the app's request is not modified
    own = {"fields": {"title": {}}, "highlight_query": {"match": {"title": "x"}}}
    assert dsl.presentation_of({"query": query, "highlight": own})["highlight"] == own
    page = dsl.page_body(app_query, ["b", "a"])
    assert page["query"] == {"ids": {"values": ["b", "a"]}} and page["size"] == 2
    assert page["highlight"]["highlight_query"] == query and page["version"] is True and "aggs" not in page


def test_fused_aggregations_run_over_exactly_the_fused_candidates() -> None:
    aggs = {"colours": {"terms": {"field": "base_colour"}}}
    body = dsl.fused_aggregations_body(_query({"query": MATCH, "aggs": aggs}), ["a", "b", "c"])
    assert body == {"query": {"ids": {"values": ["a", "b", "c"]}}, "size": 0, "track_total_hits": False,
                    "aggs": aggs}
    assert dsl.fused_aggregations_body(_query({"query": MATCH, "aggs": aggs}, facets="lexical"), ["a"]) is None
    assert dsl.fused_aggregations_body(_query({"query": MATCH}), ["a"]) is None
    with pytest.raises(ValueError):
        _query({"query": MATCH}, facets="both")


def test_app_query_from_a_plan_takes_the_facet_mode_from_the_options() -> None:
    body = {"query": {"bool": {"must": [MATCH], "filter": [{"term": {"gender": "Men"}}]}}, "from": 10, "size": 5}
    plan = proxy.plan(body, {}, {}, 100)
    query = proxy.app_query("products", body, plan, {"facets": "lexical"})
    assert (query.text, query.offset, query.size, query.facets) == ("blue shirt", 10, 5, "lexical")
    assert list(query.knn_filter) == [{"term": {"gender": "Men"}}]
    with pytest.raises(ValueError):
        proxy.app_query("products", body, plan, {"facets": "x"})
    assert proxy.ranking_overrides({"off": True, "facets": "fused", "method": "linear"}) == {"method": "linear"}


def test_explain_requests_are_passed_through() -> None:
    result = proxy.plan({"query": {"match": {"title": "shirt"}}, "explain": True}, {}, {}, 100)
    assert not result.improvable and "explain" in result.reason


# --- response shape ---------------------------------------------------------------------------------


def test_shape_response_total_max_score_aggregations_index() -> None:
    result = AppResult(hits=[{"_index": "products-v2", "_id": "b", "_score": 0.5, "_source": {"title": "B"}}],
                       fused_total=7, lexical={"timed_out": True, "total": {"value": 3, "relation": "eq"},
                                               "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0}},
                       aggregations={"brands": {"buckets": [{"key": "x", "doc_count": 3}]}}, legs=["bm25"],
                       took_ms=12.7, timed_out=True, max_score=0.5)
    response = proxy.shape_response(_query({"query": MATCH}), result, "v")
    assert response == {
        "took": 12, "timed_out": True, "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": 7, "relation": "eq"}, "max_score": 0.5, "hits": result.hits},
        "aggregations": {"brands": {"buckets": [{"key": "x", "doc_count": 3}]}},
        "_hybrid": {"variant": "v", "legs": ["bm25"], "degraded": [], "facets": "fused", "fused_total": 7,
                    "understood": None}}


def test_shape_response_totals_from_the_lexical_leg() -> None:
    result = AppResult(fused_total=150, lexical={"total": {"value": 10_000, "relation": "gte"}})
    response = proxy.shape_response(_query({"query": MATCH}), result, "v")
    assert response["hits"] == {"total": {"value": 10_000, "relation": "gte"}, "max_score": None, "hits": []}
    assert "aggregations" not in response
    assert response["_shards"] == {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    assert response["timed_out"] is False
    legacy = proxy.shape_response(_query({"query": MATCH}), AppResult(fused_total=2, lexical={"total": 4}), "v")
    assert legacy["hits"]["total"] == 4  # rest_total_hits_as_int keeps its integer shape
    assert proxy.shape_response(_query({"query": MATCH}), AppResult(), "v")["hits"]["total"] == \
        {"value": 0, "relation": "eq"}
    untracked = proxy.shape_response(_query({"query": MATCH, "track_total_hits": False}), AppResult(), "v")
    assert "total" not in untracked["hits"]  # as Elasticsearch answers track_total_hits: false


def test_a_refused_app_query_is_answered_with_elasticsearchs_error() -> None:
    error = {"type": "illegal_argument_exception", "reason": "Text fields are not optimised"}
    assert proxy.error_of(AppResult(error=(400, error))) == ({"error": error, "status": 400}, 400)
    body, status = proxy.error_of(AppResult(error=(500, {"reason": "shard failure"})))
    assert status == 503 and "shard failure" in body["error"]["reason"]
    item = proxy.msearch_item(_query({"query": MATCH}), AppResult(error=(400, error)), "v")
    assert item == {"error": error, "status": 400}
    assert proxy.msearch_item(_query({"query": MATCH}), AppResult(), "v")["status"] == 200


# --- _msearch ------------------------------------------------------------------------------------------


def test_parse_msearch_pairs_and_errors() -> None:
    raw = b'{"index": "products"}\n{"query": {"match_all": {}}}\n{}\n{"size": 0}\n'
    items = proxy.parse_msearch(raw, json.loads)
    assert [(i.header, i.body) for i in items] == [({"index": "products"}, {"query": {"match_all": {}}}),
                                                   ({}, {"size": 0})]
    assert proxy.item_target(items[1], "fallback") == "fallback"
    assert proxy.item_target(proxy.MsearchItem({"index": ["a", "b"]}, {}), None) == "a,b"
    for bad, words in ((b"", "empty"), (b'{"index": "x"}\n', "pairs"), (b'{"index": "x"}\n{nope\n', "line 1 or 2"),
                       (b'[1]\n{}\n', "JSON objects")):
        with pytest.raises(ValueError, match=words):
            proxy.parse_msearch(bad, json.loads)


def test_es_error_shape() -> None:
    assert proxy.es_error(400, "parse_exception", "bad") == {
        "error": {"root_cause": [{"type": "parse_exception", "reason": "bad"}], "type": "parse_exception",
                  "reason": "bad"}, "status": 400}

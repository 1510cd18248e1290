"""The drop-in proxy with the official Python client, against the real node (issue 12).

Every read an app needs passes through unchanged (scroll, point in time, search_after,
count, mapping, field caps, info); searches on the product alias are hybrid, in ``_search``
and in ``_msearch``; everything else is refused with 403 in Elasticsearch's shape, and
nothing reaches the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from mmsearch.config import Settings
from query_service.app import create_app
from tests.live.serving import served

ALIAS = "qs-live"
SEARCH_FIELDS = ["title^3", "category_path^2", "search_text"]  # RankingConfig's default field boosts


@pytest.fixture(scope="module")
def service_url(search_index: str, search_settings: Settings, encoder: Any) -> Iterator[str]:
    with served(create_app(search_settings, encoder=encoder)) as url:
        yield url


@pytest.fixture(scope="module")
def app_client(service_url: str) -> Any:
    from elasticsearch import Elasticsearch

    return Elasticsearch(service_url)  # the legacy app, pointed at us instead of ES


def _ids(response: Any) -> list[str]:
    return [hit["_id"] for hit in response["hits"]["hits"]]


def test_msearch_items_are_hybrid_forwarded_or_refused_in_order(app_client: Any, es: Any) -> None:
    blue = {"query": {"match": {"title": "blue shirt"}}, "size": 5}
    watch = {"query": {"bool": {"must": [{"match": {"title": "watch"}}], "filter": [{"term": {"gender": "Men"}}]}},
             "size": 3}
    aggs_only = {"size": 0, "aggs": {"g": {"terms": {"field": "gender"}}}, "query": {"match": {"title": "shirt"}}}
    result = app_client.msearch(index=ALIAS, searches=[
        {}, blue, {"index": ALIAS}, watch, {}, aggs_only, {"index": "some-other-team"}, {"query": {"match_all": {}}}])
    items = result["responses"]
    assert [item["status"] for item in items] == [200, 200, 200, 403]
    assert "_hybrid" in items[0] and "_hybrid" in items[1] and "_hybrid" not in items[2]
    assert items[3]["error"]["type"] == "security_exception" and "MMSEARCH_PROXY_INDICES" in items[3]["error"]["reason"]
    # Each hybrid item is exactly what the same body gets from the proxy's _search.
    assert _ids(items[0]) == _ids(app_client.search(index=ALIAS, **blue))
    assert _ids(items[1]) == _ids(app_client.search(index=ALIAS, **watch))
    assert all(hit["_source"]["gender"] == "Men" for hit in items[1]["hits"]["hits"])
    assert set(items[0]["_hybrid"]["legs"]) == {"bm25", "text_text", "text_image"}
    # The forwarded item is Elasticsearch's own answer.
    assert items[2]["aggregations"] == es.search(index=ALIAS, **aggs_only)["aggregations"]


def test_msearch_per_item_errors_come_back_as_elasticsearch_returns_them(app_client: Any, es: Any) -> None:
    bad_agg = {"query": {"match": {"title": "shirt"}}, "size": 2, "aggs": {"t": {"terms": {"field": "title"}}}}
    searches = [{"index": ALIAS}, bad_agg, {"index": ALIAS}, {"query": {"match": {"title": "dress"}}, "size": 2}]
    direct = es.msearch(searches=searches)["responses"]
    proxied = app_client.msearch(searches=searches)["responses"]
    assert [item["status"] for item in proxied] == [item["status"] for item in direct] == [400, 200]
    assert proxied[0]["error"]["type"] == direct[0]["error"]["type"]
    assert len(proxied[1]["hits"]["hits"]) == 2


def test_scan_count_pit_search_after_mapping_field_caps_and_info_pass_through(app_client: Any, es: Any) -> None:
    from elasticsearch import helpers

    query = {"query": {"term": {"gender": "Women"}}}
    scanned = [hit["_id"] for hit in helpers.scan(app_client, index=ALIAS, query=query, size=50)]
    assert sorted(scanned) == sorted(hit["_id"] for hit in helpers.scan(es, index=ALIAS, query=query, size=50))
    assert len(scanned) == es.count(index=ALIAS, **query)["count"] > 50  # several scroll pages
    assert app_client.count(index=ALIAS, **query)["count"] == len(scanned)

    pit = app_client.open_point_in_time(index=ALIAS, keep_alive="1m")["id"]
    try:
        body = {"query": {"match": {"title": "shirt"}}, "sort": [{"id": "asc"}], "size": 7}
        first = app_client.search(pit={"id": pit, "keep_alive": "1m"}, **body)
        second = app_client.search(pit={"id": pit, "keep_alive": "1m"}, search_after=first["hits"]["hits"][-1]["sort"],
                                   **body)
        assert "_hybrid" not in first and "_hybrid" not in second  # forwarded unchanged, never fused
        reference = es.search(index=ALIAS, size=14, query=body["query"], sort=body["sort"])
        assert _ids(first) + _ids(second) == _ids(reference)
    finally:
        app_client.close_point_in_time(id=pit)

    after = app_client.search(index=ALIAS, query={"match": {"title": "shirt"}}, sort=[{"id": "asc"}], size=5,
                              search_after=["0"])
    assert "_hybrid" not in after and _ids(after) == _ids(es.search(index=ALIAS, query={"match": {"title": "shirt"}},
                                                                   sort=[{"id": "asc"}], size=5, search_after=["0"]))
    assert app_client.indices.get_mapping(index=ALIAS).body == es.indices.get_mapping(index=ALIAS).body
    assert app_client.field_caps(index=ALIAS, fields="gender")["fields"] == \
        es.field_caps(index=ALIAS, fields="gender")["fields"]
    assert app_client.indices.exists(index=ALIAS)


def test_get_root_is_relayed_as_elasticsearch_answers_it(service_url: str, es_node: dict[str, Any]) -> None:
    # The integ-test distribution has no rest-root module, so GET / is its 405; a full node answers its info.
    direct = requests.get(es_node["url"] + "/", timeout=10)
    proxied = requests.get(service_url + "/", timeout=10)
    assert (proxied.status_code, proxied.json()) == (direct.status_code, direct.json())
    assert requests.head(service_url + "/", timeout=10).status_code == requests.head(es_node["url"] + "/",
                                                                                     timeout=10).status_code


FORBIDDEN = {
    "cluster": [("GET", "/_cat/indices"), ("GET", "/_nodes/settings"), ("GET", "/_cluster/health"),
                ("GET", "/_cluster/settings"), ("GET", "/_cat/aliases?format=json"), ("GET", "/_security/_authenticate"),
                ("GET", "/_snapshot")],
    "other indices": [("POST", "/mmsearch-events/_search"), ("POST", "/some-other-team/_search"),
                      ("GET", "/some-other-team/_count"), ("POST", f"/{ALIAS}*/_search"), ("POST", "/_all/_search"),
                      ("POST", "/_search"), ("GET", "/.security/_search"), ("POST", f"/{ALIAS},secrets/_search"),
                      ("GET", "/some-other-team/_mapping"), ("POST", "/_msearch/template")],
    "writes": [("PUT", f"/{ALIAS}/_doc/1"), ("POST", f"/{ALIAS}/_doc"), ("POST", "/_bulk"), ("DELETE", f"/{ALIAS}"),
               ("POST", f"/{ALIAS}/_update_by_query"), ("POST", f"/{ALIAS}/_delete_by_query"), ("PUT", "/new-index"),
               ("POST", f"/{ALIAS}/_refresh"), ("PUT", "/_cluster/settings"), ("DELETE", "/_search/template/x")],
}


@pytest.mark.parametrize(("family", "method", "path"),
                         [(family, method, path) for family, calls in FORBIDDEN.items() for method, path in calls])
def test_forbidden_endpoints_get_403_in_elasticsearch_shape(service_url: str, es: Any, family: str, method: str,
                                                           path: str) -> None:
    before = (es.count(index=ALIAS)["count"], sorted(es.indices.get(index="*").body))
    response = requests.request(method, service_url + path, data=json.dumps({"doc": {"title": "x"}}),
                                headers={"content-type": "application/json"}, timeout=10)
    assert response.status_code == 403, (family, response.text)
    body = response.json()
    assert body["status"] == 403 and body["error"]["type"] == "security_exception"
    assert body["error"]["root_cause"][0]["type"] == "security_exception"
    assert response.headers["X-Elastic-Product"] == "Elasticsearch"
    assert (es.count(index=ALIAS)["count"], sorted(es.indices.get(index="*").body)) == before


def test_the_official_client_sees_a_refusal_as_an_authorization_error(app_client: Any) -> None:
    from elasticsearch import AuthorizationException

    with pytest.raises(AuthorizationException):
        app_client.indices.delete(index=ALIAS)
    with pytest.raises(AuthorizationException):
        app_client.cat.indices()
    with pytest.raises(AuthorizationException):
        app_client.index(index=ALIAS, id="x", document={"title": "injected"})


def test_an_index_named_in_proxy_indices_is_forwarded_never_fused(es: Any, search_index: str, encoder: Any,
                                                                  search_settings: Settings) -> None:
    from elasticsearch import Elasticsearch

    es.indices.create(index="qs-other-team", mappings={"properties": {"title": {"type": "text"}}})
    es.index(index="qs-other-team", id="1", document={"title": "blue shirt"}, refresh=True)
    settings = Settings(es_hosts=search_settings.es_hosts, products_alias=ALIAS, state_dir=search_settings.state_dir,
                        proxy_indices=("qs-other-team",))
    with served(create_app(settings, encoder=encoder)) as url:
        client = Elasticsearch(url)
        answer = client.search(index="qs-other-team", query={"match": {"title": "blue shirt"}})
        assert _ids(answer) == ["1"] and "_hybrid" not in answer
        assert client.count(index="qs-other-team")["count"] == 1


def test_proxied_aggregations_count_the_fused_candidates_like_search_facets(app_client: Any, es: Any,
                                                                            service_url: str) -> None:
    """Facets that match what is shown: the proxy's default aggregations count the fused candidate
    set, exactly the set /search counts its facets over; ``facets: lexical`` gives ES's own."""
    text = "blue jeans"
    query = {"bool": {"must": [{"multi_match": {"query": text, "fields": SEARCH_FIELDS, "type": "best_fields"}}],
                      "filter": []}}
    aggs = {"gender": {"terms": {"field": "gender", "size": 20}}}
    proxied = app_client.search(index=ALIAS, query=query, aggs=aggs, size=10)
    fused = requests.post(f"{service_url}/search", json={"text": text, "size": 10, "facets": ["gender"]},
                          timeout=30).json()
    buckets = {b["key"]: b["doc_count"] for b in proxied["aggregations"]["gender"]["buckets"]}
    # Every product has a gender: the buckets add up to exactly the fused candidate set.
    assert sum(buckets.values()) == proxied["_hybrid"]["fused_total"]
    assert proxied["_hybrid"]["facets"] == "fused" and fused["facets"]["gender"]
    # /search's own BM25 leg also queries the client-analysed field on this node, so its candidate
    # set differs from the app query's; both count their facets over their own fused set.

    lexical = app_client.options(headers={"X-Hybrid-Options": json.dumps({"facets": "lexical"})}).search(
        index=ALIAS, query=query, aggs=aggs, size=10)
    assert lexical["aggregations"] == es.search(index=ALIAS, query=query, aggs=aggs, size=0)["aggregations"]
    assert lexical["_hybrid"]["facets"] == "lexical"


def test_proxied_search_keeps_guaranteed_k_under_a_narrow_filter(app_client: Any, es: Any) -> None:
    """Proxied searches get what /search has: a filtered kNN leg returns min(depth, matching) hits."""
    types = es.search(index=ALIAS, size=0, query={"term": {"has_image": True}},
                      aggs={"t": {"terms": {"field": "article_type", "size": 100}}})["aggregations"]["t"]["buckets"]
    rare = next(b["key"] for b in sorted(types, key=lambda b: b["doc_count"]) if 12 <= b["doc_count"] < 100)
    narrow = {"bool": {"filter": [{"term": {"article_type": rare}}, {"exists": {"field": "image_vector"}}]}}
    matching = es.count(index=ALIAS, query=narrow)["count"]
    assert 12 <= matching < 100
    body = {"query": {"bool": {"must": [{"match": {"title": "zzzz-no-lexical-match"}}],
                               "filter": narrow["bool"]["filter"]}}, "size": 10}
    answer = app_client.options(headers={"X-Hybrid-Options": json.dumps(
        {"legs": {"bm25": 1, "text_image": 1}})}).search(index=ALIAS, **body)
    assert len(answer["hits"]["hits"]) == 10
    assert answer["_hybrid"]["fused_total"] == matching  # the vector leg found every matching doc
    assert all(hit["_source"]["article_type"] == rare for hit in answer["hits"]["hits"])

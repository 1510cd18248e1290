"""The Flask app with a FAKE Elasticsearch (no server): limits, error JSON, ops endpoints, degradation.

Everything that needs real search results lives in tests/live/test_query_service.py.
"""

from __future__ import annotations

import io
import json
import threading
from types import SimpleNamespace
from typing import Any

import elasticsearch
import numpy as np
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

from mmsearch.config import Settings
from query_service.app import create_app
from query_service.ranking import SOURCE_FIELDS, RankingConfig
from query_service.validation import ServiceLimits, openapi_document
from tests.unit.fakes import FakeGateway, hits

ALIAS = "products"
NO_PLUGINS = SimpleNamespace(painless=False, native_rrf_usable=False)


_hits = hits


class FakeES(FakeGateway):
    """The fake gateway under this module's historical name."""


class FakeEncoder:
    identity = "fake"

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))


def _app(es: FakeES | None = None, encoder: Any = None, limits: ServiceLimits | None = None,
         capabilities: Any = NO_PLUGINS) -> Any:
    # No rate limit: these tests send hundreds of requests from one address (tests/unit/test_rate_limit.py has it).
    settings = Settings(products_alias=ALIAS, rate_limit="off")
    return create_app(settings, es=es or FakeES(), encoder=encoder, capabilities=capabilities, limits=limits)


def _api_error(status: int = 400) -> elasticsearch.ApiError:
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "127.0.0.1", 9200))
    return elasticsearch.BadRequestError(message="x_content_parse_exception", meta=meta,
                                         body={"error": {"type": "x_content_parse_exception"}, "status": status})


# --- ops endpoints ---------------------------------------------------------------------------------


def test_healthz_and_openapi() -> None:
    client = _app().test_client()
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.get_json() == openapi_document()


def test_metrics_count_requests_by_endpoint_and_status() -> None:
    client = _app().test_client()
    client.get("/healthz")
    client.get("/search?q=shirt")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mmsearch_requests_total{endpoint="healthz",status="200"} 1.0' in text
    assert 'mmsearch_requests_total{endpoint="search",status="200"} 1.0' in text
    assert 'mmsearch_degraded_total{component="text_vector"} 1.0' in text  # no model loaded
    assert 'mmsearch_variant_requests_total{variant="hybrid-rrf"} 1.0' in text


def test_client_named_rankings_do_not_mint_a_metrics_label_each() -> None:
    # A ranking override's name is the client's to choose; one label value per name would let any
    # client grow the Prometheus registry (and every scrape) without bound.
    client = _app().test_client()
    for i in range(5):
        body = {"text": "shirt", "ranking": {"name": f"mine-{i}", "legs": {"bm25": 1.0}}}
        assert client.post("/search", json=body).get_json()["variant"] == f"mine-{i}"  # the response still says
    proxied = client.post("/products/_search", json={"query": {"match": {"title": "shirt"}}},
                          headers={"X-Hybrid-Options": '{"name": "theirs"}'})
    assert proxied.status_code == 200 and proxied.get_json()["hits"]["hits"]
    client.get("/search?q=shirt")
    text = client.get("/metrics").get_data(as_text=True)
    assert "mine-" not in text and "theirs" not in text
    assert 'mmsearch_variant_requests_total{variant="custom"} 5.0' in text
    assert 'mmsearch_request_seconds_count{endpoint="search",variant="custom"} 5.0' in text
    assert 'mmsearch_variant_requests_total{variant="hybrid-rrf"} 1.0' in text  # the deployment's own
    assert 'mmsearch_request_seconds_count{endpoint="proxy",variant="proxy:custom"} 1.0' in text


# --- limits (413) -------------------------------------------------------------------------------------


def test_body_over_the_limit_is_a_413_json() -> None:
    client = _app(limits=ServiceLimits(max_body_bytes=1000, max_image_bytes=500)).test_client()
    response = client.post("/search", json={"text": "x" * 2000})
    assert response.status_code == 413
    assert response.get_json() == {"error": "PayloadTooLargeError", "message": "request body is larger than the limit",
                                   "limit_bytes": 1000}


def test_uploaded_image_over_the_limit_is_a_413() -> None:
    client = _app(limits=ServiceLimits(max_body_bytes=4000, max_image_bytes=500)).test_client()
    response = client.post("/search", data={"text": "x", "image": (io.BytesIO(b"\xff" * 600), "q.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 413
    body = response.get_json()
    assert (body["error"], body["message"], body["limit_bytes"]) == ("PayloadTooLargeError",
                                                                      "image is larger than the limit", 500)


def test_base64_image_over_the_limit_is_a_413() -> None:
    client = _app(limits=ServiceLimits(max_body_bytes=10_000, max_image_bytes=100)).test_client()
    response = client.post("/search", json={"image_base64": "A" * 400})
    assert response.status_code == 413 and response.get_json()["error"] == "PayloadTooLargeError"


# --- 400 JSON ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"data": "text=shirt", "content_type": "text/plain"},
     "send JSON (Content-Type: application/json) or multipart/form-data"),
    ({"data": "{not json", "content_type": "application/json"},
     "send JSON (Content-Type: application/json) or multipart/form-data"),
    ({"json": {"text": "x", "sze": 3}}, "invalid request at (body): Additional properties are not allowed"),
    ({"json": {"text": "x", "size": 1000}}, "invalid request at size: 1000 is greater than the maximum of 100"),
    ({"json": {"text": "x", "ranking": {"method": "borda"}}}, "unknown fusion method"),
    ({"json": {"size": 3}}, "give a text query, an image, or both"),
])
def test_bad_post_bodies_are_400_json(kwargs: dict, message: str) -> None:
    response = _app().test_client().post("/search", **kwargs)
    assert response.status_code == 400 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == "RequestValidationError" and body["message"].startswith(message)


def test_bad_get_params_are_400_json_with_context() -> None:
    response = _app().test_client().get("/search?q=x&colour=red")
    assert response.status_code == 400
    assert response.get_json() == {"error": "RequestValidationError", "message": "unknown query parameters",
                                   "unknown": ["colour"]}


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/products-v1"), ("PUT", "/search"),
                                               ("POST", "/_security/api_key"), ("PUT", "/_cluster/settings"),
                                               ("POST", "/healthz")])
def test_the_passthrough_does_not_forward_writes_to_elasticsearch(method: str, path: str) -> None:
    # Bug (app.passthrough): the catch-all route forwards PUT/DELETE/POST on ANY path with the
    # service's own credentials, so a shopper-facing endpoint can delete the product index,
    # change cluster settings or mint API keys ("PUT /search" creates an index named "search").
    es = FakeES()
    response = _app(es).test_client().open(path, method=method, json={})
    assert es.forwarded == []
    assert response.status_code in (403, 404, 405)


def test_get_filter_year_twice_is_a_400_not_a_500() -> None:
    # Bug (validation.from_query_args): filter.year=2012&filter.year.gte=2010 raises TypeError -> 500.
    response = _app().test_client().get("/search?q=x&filter.year=2012&filter.year.gte=2010")
    assert response.status_code == 400


# --- search with a fake cluster ---------------------------------------------------------------------------


def test_search_without_a_model_degrades_to_bm25_and_says_so() -> None:
    es = FakeES()
    response = _app(es).test_client().post("/search", json={"text": "red shirt", "size": 1, "facets": ["gender"]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["degraded"] == ["text_vector: no model loaded"]
    assert [h["_id"] for h in body["hits"]] == ["a"] and body["total"] == 2
    assert body["hits"][0]["_score"] == pytest.approx(1 / 61)  # rrf, k=60, rank 1, weight 1
    assert body["hits"][0]["breakdown"]["legs"]["bm25"]["rank"] == 1
    assert body["facets"] == {"gender": [{"value": "Men", "count": 2}]}
    assert set(body["took_ms"]) == {"encode", "es", "fuse", "total"}  # one leg: no page fetch
    assert len(es.msearch_calls) == 1 and es.msearch_calls[0][0] == {"index": ALIAS}  # one leg, one _msearch


def test_a_leg_left_alone_by_a_failed_encoder_keeps_its_sources_under_doc_value_ids() -> None:
    # Three legs asked (so the engine looks up the doc-values id field), one left after the
    # encoder fails: that leg is not ids-only, its hits carry _id and _source, and both must
    # survive (an ids-only parse would drop the sources and show empty hits).
    es = FakeES(mappings={"products-v1": {"_meta": {"doc_id_field": "id"}}})
    app = _app(es)
    body = app.test_client().post("/search", json={"text": "red shirt", "size": 2, "facets": ["gender"]}).get_json()
    assert body["degraded"] == ["text_vector: no model loaded"]
    assert [(h["_id"], h["_source"]["title"]) for h in body["hits"]] == [("a", "ta"), ("b", "tb")]
    assert body["facets"] == {"gender": [{"value": "Men", "count": 2}]}
    assert "stored_fields" not in es.msearch_calls[0][1]


def test_a_failing_leg_is_dropped_and_named() -> None:
    es = FakeES(responses=[_hits(("a", 2.0), ("b", 1.0)), _hits(("b", 0.9), ("c", 0.8)),
                           {"error": {"type": "search_phase_execution_exception", "reason": "boom"}, "status": 500}])
    body = _app(es, encoder=FakeEncoder()).test_client().post("/search", json={"text": "x"}).get_json()
    assert body["degraded"] == ["leg:text_image: boom"]
    assert set(body["legs"]) == {"bm25", "text_text"}
    # b: 1/62 (bm25 rank 2) + 1/61 (text_text rank 1) beats a: 1/61
    assert [h["_id"] for h in body["hits"]] == ["b", "a", "c"]
    assert body["hits"][0]["_score"] == pytest.approx(1 / 62 + 1 / 61)


def test_es_unreachable_is_a_503_with_retry_after() -> None:
    es = FakeES(error=elasticsearch.ConnectionError("Connection refused"))
    response = _app(es).test_client().post("/search", json={"text": "shirt"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert (body["error"], body["message"]) == ("ClusterUnavailableError", "search failed: Elasticsearch is unreachable")


def test_es_rejecting_the_search_is_a_502() -> None:
    response = _app(FakeES(error=_api_error(400))).test_client().get("/search?q=shirt")
    assert response.status_code == 502 and response.get_json()["error"] == "ClusterError"
    assert "Retry-After" not in response.headers


def test_unexpected_errors_are_a_generic_500_without_a_traceback() -> None:
    app = _app()

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret detail /srv/app/config.py line 42")

    app.extensions["mmsearch"].engine.search = boom
    response = app.test_client().post("/search", json={"text": "shirt"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "InternalError", "message": "internal error; see the service log"}
    text = response.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text


def test_native_retriever_rejected_by_es_is_not_an_internal_error() -> None:
    # Bug (engine._search): only TransportError is translated; an ApiError from a single search
    # (native rrf retriever, guaranteed-k escalation, exact search) escapes as a generic 500.
    es = FakeES()
    es.search_error = _api_error(400)
    app = _app(es, capabilities=SimpleNamespace(painless=False, native_rrf_usable=True))
    response = app.test_client().post("/search", json={"text": "x", "ranking": {"native_retriever": True}})
    assert response.status_code in (400, 502)


# --- proxy -----------------------------------------------------------------------------------------


def test_proxy_passthrough_says_why() -> None:
    es = FakeES()
    response = _app(es).test_client().post("/products/_search", json={"query": {"match_all": {}}})
    assert response.status_code == 200 and response.get_json() == {"count": 3}
    assert response.headers["X-Hybrid"].startswith("passthrough; no user text")
    assert response.headers["X-Elastic-Product"] == "Elasticsearch"
    assert es.forwarded == [("POST", "/products/_search")] and es.msearch_calls == []


def test_proxy_bad_json_and_bad_options_are_es_shaped_400s() -> None:
    client = _app().test_client()
    response = client.post("/products/_search", data="{nope", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["type"] == "parse_exception"
    response = client.post("/products/_search", json={"query": {"match": {"title": "x"}}},
                           headers={"X-Hybrid-Options": "[1]"})
    assert response.status_code == 400 and response.get_json()["status"] == 400
    assert response.get_json()["error"]["type"] == "illegal_argument_exception"


def test_proxy_hybrid_answer_is_es_shaped() -> None:
    es = FakeES(responses=[_hits(("a", 3.0), ("b", 1.0), index="products-v7")])
    response = _app(es).test_client().post("/products/_search", json={"query": {"match": {"title": "shirt"}},
                                                                      "size": 1})
    body = response.get_json()
    assert response.status_code == 200 and response.headers["X-Elastic-Product"] == "Elasticsearch"
    assert body["hits"]["hits"][0]["_index"] == "products-v7" and body["hits"]["hits"][0]["_id"] == "a"
    assert body["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert body["_hybrid"]["legs"] == ["bm25"] and es.msearch_calls[0][0] == {"index": "products"}


def test_proxy_negative_from_is_not_a_500() -> None:
    # Bug (proxy.plan): from=-1 is planned as improvable, fusion.paginate raises ValueError -> 500.
    response = _app().test_client().post("/products/_search", json={"query": {"match": {"title": "x"}}, "from": -1})
    assert response.status_code != 500


def test_proxy_does_not_redirect_concurrent_searches_to_its_index() -> None:
    # Bug (app._hybrid_proxy): it swaps the shared engine.index to the proxied index while its
    # _msearch runs; a /search served at the same time (threaded server, gunicorn --threads)
    # then searches the proxy's index instead of the products alias.
    es = FakeES()
    app = _app(es)
    proxy_inside, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def hook(searches: list[dict[str, Any]]) -> None:
        seen.append(searches[0]["index"])
        if searches[0]["index"] == "products-v20261201000000" and not proxy_inside.is_set():
            proxy_inside.set()
            release.wait(5)

    es.before_msearch = hook
    worker = threading.Thread(target=lambda: app.test_client().post(
        "/products-v20261201000000/_search", json={"query": {"match": {"title": "x"}}}))
    worker.start()
    assert proxy_inside.wait(5)
    try:
        response = app.test_client().post("/search", json={"text": "shirt"})
    finally:
        release.set()
        worker.join(5)
    assert response.status_code == 200
    assert seen[:2] == ["products-v20261201000000", ALIAS]


# --- guaranteed k with a fake cluster (engine level) -------------------------------------------------


class FilteredKnnES(FakeES):
    """A filtered kNN leg that keeps returning one hit although `matching` docs match the filter."""

    def __init__(self, matching: int, docs: dict[str, list[float]]) -> None:
        super().__init__(responses=[_hits(("y", 0.9))])
        self.matching, self.docs, self.searches = matching, docs, []

    def count(self, index: str, query: Any = None) -> int:
        return self.matching

    def search(self, index: str, body: Any, *, timeout_s: float | None = None) -> dict[str, Any]:
        if "aggs" in body:  # the query parser's vocabulary: none here
            return {"hits": {"hits": []}, "aggregations": {}}
        self.searches.append(body)
        if "knn" in body.get("query", {}):
            return _hits(("y", 0.9))
        field = body["_source"]["includes"][-1]
        return {"hits": {"hits": [{"_id": doc, "_score": 0.0, "_source": {"id": doc, field: vector}}
                                  for doc, vector in self.docs.items()]}}


def _engine(es: FakeES, **options: Any) -> Any:
    from query_service.engine import EngineOptions, SearchEngine

    return SearchEngine(es, FakeEncoder(), Settings(products_alias=ALIAS), NO_PLUGINS, EngineOptions(**options))


def test_guaranteed_k_escalates_then_ranks_exactly_in_python() -> None:
    from query_service.ranking import SOURCE_FIELDS, RankingConfig, SearchRequest

    es = FilteredKnnES(matching=3, docs={"x": [0.0, 1.0], "y": [1.0, 0.0], "z": [1.0, 1.0]})
    ranking = RankingConfig(legs={"text_text": 1.0}, depth=3, num_candidates=3)
    run = _engine(es).run_legs(SearchRequest(text="shirt", filters={"gender": "Men"}), ranking)
    # query [1, 0]: y cos 1 -> 1.0, z cos 0.707 -> 0.854, x cos 0 -> 0.5
    assert [doc for doc, _ in run.legs["text_text"]] == ["y", "z", "x"]
    assert [s for _, s in run.legs["text_text"]] == pytest.approx([1.0, (1 + 2 ** -0.5) / 2, 0.5], abs=1e-6)
    knn_searches = [b["query"]["knn"] for b in es.searches if "knn" in b.get("query", {})]
    assert [knn["num_candidates"] for knn in knn_searches] == [12, 48, 192, 768, 3072, 10_000]
    assert run.guaranteed_k == [{"leg": "text_text", "returned": 1, "needed": 3, "strategy": "exact",
                                 "returned_after": 3}]
    assert all(knn.get("filter") == [{"terms": {"gender": ["Men"]}}] for knn in knn_searches)


def test_exact_limit_keeps_the_knn_hits_it_already_had() -> None:
    # Bug (engine._exact): above exact_limit it returns [] and _guarantee_k replaces the leg with it,
    # throwing away the hits approximate kNN did find; it should keep them (and say degraded).
    from query_service.ranking import RankingConfig, SearchRequest

    es = FilteredKnnES(matching=20_000, docs={})
    ranking = RankingConfig(legs={"text_text": 1.0}, depth=3, num_candidates=3)
    run = _engine(es, exact_limit=10).run_legs(SearchRequest(text="shirt", filters={"gender": "Men"}), ranking)
    assert any(reason.startswith("exact:text_vector") for reason in run.degraded)
    assert run.legs["text_text"] == [("y", 0.9)]


def test_lean_legs_fetch_only_the_page_sources_and_count_facets_from_doc_values() -> None:
    class PageES(FakeES):
        def __init__(self) -> None:
            stub = {"took": 1, "timed_out": False, "hits": {"hits": [
                {"_id": doc, "_score": score, "fields": {"gender": [gender]}}
                for doc, score, gender in (("a", 3.0, "Men"), ("b", 2.0, "Women"), ("c", 1.0, "Women"))]}}
            super().__init__([stub, stub, stub])
            self.search_bodies: list[dict[str, Any]] = []

        def search(self, index: str, body: Any, *, timeout_s: float | None = None) -> dict[str, Any]:
            if "aggs" in body:  # the query parser's vocabulary: none here
                return {"hits": {"hits": []}, "aggregations": {}}
            self.search_bodies.append(body)
            ids = body["query"]["ids"]["values"]
            return {"hits": {"hits": [{"_id": d, "_score": None, "_source": {"id": d, "title": f"full {d}"}}
                                      for d in ids]}}

    es = PageES()
    response = _app(es, encoder=FakeEncoder()).test_client().post(
        "/search", json={"text": "red shirt", "size": 2, "from": 1, "facets": ["gender"]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # The lexical leg goes alone while the text is encoded, the vector legs after: both lean.
    leg_bodies = [body for call in es.msearch_calls for body in call[1::2]]
    assert [len(call) // 2 for call in es.msearch_calls] == [1, 2]
    assert all(b["_source"] is False for b in leg_bodies)
    # The lexical leg also fetches the type, which the query vector may add to the parse.
    assert [b["docvalue_fields"] for b in leg_bodies] == [["gender", "article_type"], ["gender"], ["gender"]]
    assert [b["query"]["ids"]["values"] for b in es.search_bodies] == [["b", "c"]]  # the page, nothing more
    assert [h["_source"]["title"] for h in body["hits"]] == ["full b", "full c"]
    assert body["facets"] == {"gender": [{"value": "Women", "count": 2}, {"value": "Men", "count": 1}]}
    assert body["took_ms"]["es"] >= body["took_ms"]["fetch"]


def test_a_single_leg_brings_its_own_sources_in_one_round_trip() -> None:
    es = FakeES()
    body = _app(es).test_client().post("/search", json={"text": "red shirt", "size": 1}).get_json()
    leg = es.msearch_calls[0][1]
    assert leg["_source"] == list(SOURCE_FIELDS) and "docvalue_fields" not in leg
    assert "fetch" not in body["took_ms"] and body["hits"][0]["_source"]["title"] == "ta"


def test_search_responses_go_through_orjson_in_hit_order() -> None:
    from query_service.jsonio import OrjsonProvider

    app = _app(FakeES([_hits(("z", 3.0), ("a", 1.0))]))
    assert isinstance(app.json, OrjsonProvider)
    response = app.test_client().get("/search?q=shirt&explain=false")
    assert response.status_code == 200
    # orjson writes compact JSON; the hits keep fused order and keys their insertion order.
    assert response.data.startswith(b'{"variant":')
    assert [h["_id"] for h in json.loads(response.data)["hits"]] == ["z", "a"]


def test_default_ranking_and_proxy_options_come_from_the_deployment() -> None:
    settings = Settings.load(environ={}, es_hosts="http://127.0.0.1:9200", products_alias=ALIAS)
    es = FakeES()
    app = create_app(settings, es=es, encoder=None, capabilities=NO_PLUGINS,
                     default_ranking=RankingConfig(name="from-config", legs={"bm25": 1.0}),
                     proxy_options={"off": True})
    client = app.test_client()
    assert client.get("/search?q=shirt").get_json()["variant"] == "from-config"
    body = {"query": {"match": {"title": "red shirt"}}}
    # Configured off: the proxy forwards the search untouched ...
    off = client.post(f"/{ALIAS}/_search", json=body)
    assert off.headers["X-Hybrid"].startswith("passthrough") and es.forwarded
    # ... and a request's own header replaces the configured options.
    on = client.post(f"/{ALIAS}/_search", json=body, headers={"X-Hybrid-Options": '{"name": "per-request"}'})
    assert "X-Hybrid" not in on.headers and on.get_json()["_hybrid"]["variant"] == "per-request"


def test_huge_integers_are_a_400_not_a_500() -> None:
    client = _app(encoder=FakeEncoder()).test_client()
    for response in (client.get("/search?q=shirt&size=100000000000000000000"),
                     client.get("/search?q=shirt&from=100000000000000000000"),
                     client.post("/search", data=b'{"text": "x", "size": 100000000000000000000}',
                                 content_type="application/json")):
        assert response.status_code == 400, response.data
        assert response.get_json()["error"] == "RequestValidationError"


def test_proxy_passes_a_malformed_filter_through_for_elasticsearch_to_report() -> None:
    es = FakeES()
    body = {"query": {"bool": {"must": [{"match": {"title": "red"}}], "filter": [True, "x"]}}}
    response = _app(es, encoder=FakeEncoder()).test_client().post(f"/{ALIAS}/_search", json=body)
    assert response.status_code == 200 and response.headers["X-Hybrid"].startswith("passthrough")
    assert es.forwarded == [("POST", f"/{ALIAS}/_search")]


def test_proxy_answers_a_rejected_app_query_with_elasticsearchs_own_4xx() -> None:
    error = {"error": {"type": "x_content_parse_exception", "reason": "[1:20] unknown field [zzz]"}, "status": 400}
    es = FakeES([error, _hits(("a", 0.9))])
    response = _app(es, encoder=FakeEncoder()).test_client().post(
        f"/{ALIAS}/_search", json={"query": {"match": {"title": "red"}}, "aggs": {"zzz": 1}})
    assert response.status_code == 400
    assert response.get_json() == error and response.headers["X-Elastic-Product"] == "Elasticsearch"


def test_random_bad_input_never_gets_a_5xx() -> None:
    """Seeded fuzz of POST /search, GET /search and the proxy: every answer is < 500 (found three bugs)."""
    import random

    client = _app(FakeES(), encoder=FakeEncoder()).test_client()
    rng = random.Random(20261125)
    atoms: list[Any] = [None, True, False, 0, -1, 1, 10**20, 1.5, "", "x", "red shirt", [], {}, [1, "a"], {"a": 1},
                        "ä" * 600]
    keys = ["text", "image_base64", "negative_text", "filters", "size", "from", "facets", "text_weight",
            "image_weight", "explain", "user_id", "ranking", "zzz", "legs", "method", "depth", "gender", "year"]

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth < 2 and roll < 0.2:
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 3))}
        if depth < 2 and roll < 0.3:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return rng.choice(atoms)

    for _ in range(600):
        body = {k: value() for k in rng.sample(keys, rng.randint(0, 6))}
        if rng.random() < 0.5:
            body["text"] = "red shirt"
        assert client.post("/search", json=body).status_code < 500, body
        args = {rng.choice(["q", "size", "from", "facets", "filter.gender", "filter.year.gte", "filter.a.b.c",
                            "explain", "zz"]): str(rng.choice(atoms)) for _ in range(3)}
        assert client.get("/search", query_string=args).status_code < 500, args
        dsl = {"query": {"bool": {"must": [{"match": {"title": rng.choice(["red", {"query": "x"}, 3, None])}}],
                                  "filter": value(1)}},
               "size": rng.choice([0, 5, -1, "x", 10**6, 10**20]), "aggs": value(1)}
        header = rng.choice(["", "off", "{}", '{"method": "linear"}', "[1]", "{bad", '{"depth": -1}'])
        response = client.post(f"/{ALIAS}/_search", json=dsl, headers={"X-Hybrid-Options": header})
        assert response.status_code < 500, (dsl, header)


def test_the_bm25_leg_queries_the_analysed_field_only_where_every_index_fills_it() -> None:
    client = {"products-v1": {"_meta": {"lexical_analysis": "client", "doc_id_field": "id"}}}
    mixed = {**client, "products-v2": {"_meta": {"lexical_analysis": "server"}}}
    for mappings, expected in ((client, True), (mixed, False), ({}, False)):
        es = FakeES(mappings=mappings)
        _app(es).test_client().post("/search", json={"text": "mens shoes", "size": 1})
        assert ("search_text_analyzed" in json.dumps(es.msearch_calls[0][1])) is expected, mappings


def test_weights_too_small_to_fuse_count_as_zero_not_a_500() -> None:
    # 1e-7 x 1e-6 = 1e-13, below fusion.MIN_WEIGHT: that leg is skipped like a weight-0 one.
    client = _app(encoder=FakeEncoder()).test_client()
    response = client.post("/search", json={"text": "shirt", "text_weight": 1e-7,
                                            "ranking": {"legs": {"bm25": 1.0, "text_text": 1e-6}}})
    assert response.status_code == 200, response.json

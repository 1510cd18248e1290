"""The query service against the real node, with the real ONNX encoders and real products."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmsearch.capabilities import detect_capabilities
from mmsearch.config import Settings
from mmsearch.gateway import ElasticsearchGateway
from query_service import queries
from query_service.app import create_app
from tests.live.serving import served
from query_service.engine import EngineOptions, SearchEngine
from query_service.fusion import COMBINATIONS, NORMALIZATIONS
from query_service.ranking import RankingConfig, SearchRequest
from query_service.validation import ServiceLimits

ALIAS = "qs-live"


@pytest.fixture(scope="session")
def client(search_index: str, search_settings: Settings, encoder: Any) -> Any:
    return create_app(search_settings, encoder=encoder).test_client()


@pytest.fixture(scope="session")
def photo(catalog_dir: Path, search_index: str, es_session_client: Any) -> tuple[str, bytes]:
    hit = es_session_client.search(index=ALIAS, query={"term": {"has_image": True}}, size=1,
                                   sort=[{"id": "asc"}])["hits"]["hits"][0]
    return hit["_id"], (catalog_dir / hit["_source"]["image"]).read_bytes()


def _check_breakdown(result: dict) -> None:
    scores = [h["_score"] for h in result["hits"]]
    assert scores == sorted(scores, reverse=True)
    for hit in result["hits"]:
        parts = hit["breakdown"]["legs"]
        assert parts, "every hit comes from at least one leg"
        assert sum(p["contribution"] for p in parts.values()) == pytest.approx(hit["_score"], abs=1e-9)
        for leg in parts.values():
            assert leg["rank"] >= 1 and leg["weight"] > 0


@pytest.mark.parametrize("method,normalization,combination",
                         [("rrf", "min_max", "arithmetic")]
                         + [("linear", n, c) for n in NORMALIZATIONS for c in COMBINATIONS])
def test_every_fusion_method_over_text_queries(client: Any, method: str, normalization: str,
                                               combination: str) -> None:
    ranking = {"method": method, "normalization": normalization, "combination": combination}
    response = client.post("/search", json={"text": "blue skirt for girls", "size": 10, "ranking": ranking})
    assert response.status_code == 200, response.json
    result = response.json
    assert set(result["legs"]) == {"bm25", "text_text", "text_image"}
    assert all(info["hits"] > 0 for info in result["legs"].values())
    assert result["fusion"]["method"] == method and result["degraded"] == []
    assert len(result["hits"]) == 10
    _check_breakdown(result)


def test_query_modes_text_image_both_and_negative(client: Any, photo: tuple[str, bytes]) -> None:
    photo_id, image = photo
    encoded = base64.b64encode(image).decode()
    by_image = client.post("/search", json={"image_base64": encoded, "size": 5}).json
    assert set(by_image["legs"]) == {"image_image", "image_text"}
    assert by_image["hits"][0]["_id"] == photo_id  # a product's own photo finds it first
    _check_breakdown(by_image)

    both = client.post("/search", json={"image_base64": encoded, "text": "shoes", "size": 5,
                                        "text_weight": 1.0, "image_weight": 2.0}).json
    assert set(both["legs"]) == {"bm25", "text_text", "text_image", "image_image", "image_text"}
    assert both["legs"]["image_image"]["weight"] == 2.0 and both["legs"]["bm25"]["weight"] == 1.0
    _check_breakdown(both)

    upload = client.post("/search", data={"image": (io.BytesIO(image), "q.jpg"), "size": "3"},
                         content_type="multipart/form-data").json
    assert [h["_id"] for h in upload["hits"]] == [h["_id"] for h in by_image["hits"][:3]]

    plain = client.post("/search", json={"text": "black leather shoes", "size": 20}).json
    negative = client.post("/search", json={"text": "black leather shoes", "negative_text": "leather",
                                            "size": 20}).json
    plain_titles = " ".join(h["_source"].get("title", "") for h in plain["hits"]).lower()
    negative_titles = " ".join(h["_source"].get("title", "") for h in negative["hits"]).lower()
    assert negative_titles.count("leather") < max(1, plain_titles.count("leather"))


def test_get_search(client: Any) -> None:
    result = client.get("/search?q=watch&size=3&filter.gender=Men&facets=base_colour").json
    assert len(result["hits"]) == 3
    assert all(h["_source"]["gender"] == "Men" for h in result["hits"])
    assert result["facets"]["base_colour"]


def test_filters_apply_to_every_leg_and_k_is_guaranteed(client: Any, es: Any, search_index: str) -> None:
    filters = {"gender": ["Women"], "year": {"gte": 2012}}
    # Understanding off: this test is about the client's filters (the parse would add "black" as a colour filter).
    result = client.post("/search", json={"text": "black", "filters": filters, "size": 100,
                                          "ranking": {"depth": 50, "num_candidates": 50,
                                                      "understanding": False}}).json
    assert result["hits"]
    for hit in result["hits"]:
        assert hit["_source"]["gender"] == "Women" and hit["_source"]["year"] >= 2012
    base = {"bool": {"filter": queries.filter_clauses({"gender": ["Women"], "year": {"gte": 2012}})}}
    for leg, field_name in (("text_text", "text_vector"), ("text_image", "image_vector")):
        query = {"bool": {"filter": base["bool"]["filter"] + [{"exists": {"field": field_name}}]}}
        matching = es.count(index=ALIAS, query=query)["count"]
        assert result["legs"][leg]["hits"] == min(50, matching), leg


class _LossyKnnGateway(ElasticsearchGateway):
    """Simulates HNSW returning too few neighbours under a filter (the ES #115018 complaint)."""

    lose_escalations = False

    def msearch(self, searches: Any, *, timeout_s: float | None = None) -> list:
        responses = super().msearch(searches, timeout_s=timeout_s)
        for body, response in zip(list(searches)[1::2], responses):
            if "knn" in body.get("query", {}) and "hits" in response:
                response["hits"]["hits"] = response["hits"]["hits"][:3]
        return responses

    def search(self, index: str, body: Any, *, timeout_s: float | None = None) -> dict:
        response = super().search(index, body, timeout_s=timeout_s)
        if self.lose_escalations and "knn" in body.get("query", {}):
            response["hits"]["hits"] = response["hits"]["hits"][:3]
        return response


@pytest.mark.parametrize("lose_escalations,strategy", [(False, "num_candidates="), (True, "exact")])
def test_guaranteed_k_escalates_then_goes_exact(es: Any, search_index: str, search_settings: Settings,
                                                encoder: Any, lose_escalations: bool, strategy: str) -> None:
    gateway = _LossyKnnGateway(es)
    gateway.lose_escalations = lose_escalations
    engine = SearchEngine(gateway, encoder, search_settings, detect_capabilities(es))
    request = SearchRequest(text="casual shoes", filters={"gender": ["Men"]}, size=20)
    ranking = RankingConfig(depth=30, num_candidates=30, legs={"text_text": 1.0}, understanding=False)
    result = engine.search(request, ranking)
    record = result["guaranteed_k"][0]
    assert record["leg"] == "text_text" and record["returned"] == 3
    assert record["strategy"].startswith(strategy)
    assert result["legs"]["text_text"]["hits"] == record["needed"] == 30
    if strategy == "exact":  # brute force must equal numpy over every matching document
        docs = es.search(index=ALIAS, size=1000, query={"term": {"gender": "Men"}},
                         source={"includes": ["text_vector"], "exclude_vectors": False})["hits"]["hits"]
        query_vector = encoder.encode_texts(["casual shoes"])[0]
        expected = queries.rank_by_cosine(query_vector, [d for d in docs if "text_vector" in d["_source"]],
                                          "text_vector", 30)
        assert [h["_id"] for h in result["hits"]] == [doc_id for doc_id, _, _ in expected][:20]


def test_pages_have_no_overlaps_or_gaps(client: Any) -> None:
    query = {"text": "cotton t-shirt", "ranking": {"depth": 40}}
    whole = client.post("/search", json={**query, "size": 63}).json
    pages = [client.post("/search", json={**query, "size": 9, "from": start}).json for start in range(0, 63, 9)]
    ids = [h["_id"] for page in pages for h in page["hits"]]
    assert len(ids) == len(set(ids)) == 63
    assert ids == [h["_id"] for h in whole["hits"]]
    assert all(page["total"] == whole["total"] for page in pages)
    beyond = client.post("/search", json={**query, "size": 10, "from": whole["total"]}).json
    assert beyond["hits"] == []


def test_facets_count_the_fused_candidate_set(client: Any) -> None:
    query = {"text": "sports shoes", "ranking": {"depth": 25}, "facets": ["article_type", "gender"]}
    result = client.post("/search", json={**query, "size": 100}).json
    assert result["total"] <= 75 and len(result["hits"]) == result["total"]
    for facet in ("article_type", "gender"):
        counts: dict[str, int] = {}
        for hit in result["hits"]:
            if hit["_source"].get(facet):
                counts[hit["_source"][facet]] = counts.get(hit["_source"][facet], 0) + 1
        expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert [(b["value"], b["count"]) for b in result["facets"][facet]] == expected
    assert sum(b["count"] for b in result["facets"]["gender"]) > result["legs"]["bm25"]["hits"] or \
        result["legs"]["bm25"]["hits"] == result["total"]


class _BrokenEncoder:
    def __init__(self, real: Any, mode: str) -> None:
        self._real, self._mode = real, mode
        self.identity, self.dim, self.name = real.identity, real.dim, real.name

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if self._mode == "slow":
            time.sleep(1.0)
            return self._real.encode_texts(texts)
        raise RuntimeError("onnxruntime session crashed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("mode,reason", [("fail", "encoder failed"), ("slow", "timed out")])
def test_broken_encoder_degrades_to_bm25_and_says_so(search_index: str, search_settings: Settings, encoder: Any,
                                                     mode: str, reason: str) -> None:
    app = create_app(search_settings, encoder=_BrokenEncoder(encoder, mode),
                     engine_options=EngineOptions(encoder_timeout_s=0.3))
    client = app.test_client()
    result = client.post("/search", json={"text": "red dress", "size": 5}).json
    assert list(result["legs"]) == ["bm25"] and len(result["hits"]) == 5
    assert len(result["degraded"]) == 1 and result["degraded"][0].startswith("text_vector:")
    assert reason in result["degraded"][0]
    metrics = client.get("/metrics").data.decode()
    assert 'mmsearch_degraded_total{component="text_vector"} 1.0' in metrics


class _OneBadLegGateway(ElasticsearchGateway):
    def msearch(self, searches: Any, *, timeout_s: float | None = None) -> list:
        searches = [dict(item) for item in searches]
        for body in searches[1::2]:
            if body.get("query", {}).get("knn", {}).get("field") == "image_vector":
                body["query"] = {"knn": {**body["query"]["knn"], "query_vector": [0.5, 0.5, 0.5]}}  # wrong dims
        return super().msearch(searches, timeout_s=timeout_s)


def test_a_failing_leg_is_dropped_and_named(es: Any, search_index: str, search_settings: Settings,
                                            encoder: Any) -> None:
    engine = SearchEngine(_OneBadLegGateway(es), encoder, search_settings)
    result = engine.search(SearchRequest(text="handbag", size=5), RankingConfig())
    assert set(result["legs"]) == {"bm25", "text_text"}
    assert any(d.startswith("leg:text_image:") for d in result["degraded"])
    assert len(result["hits"]) == 5


def test_bad_input_gets_400_or_413_never_500(search_index: str, search_settings: Settings, encoder: Any,
                                              client: Any) -> None:
    small = create_app(search_settings, encoder=encoder,
                       limits=ServiceLimits(max_body_bytes=64 * 1024, max_image_bytes=32 * 1024)).test_client()
    big = b"\xff" * (200 * 1024)
    assert small.post("/search", data=big, content_type="application/json").status_code == 413
    upload = small.post("/search", data={"image": (io.BytesIO(b"x" * 40 * 1024), "a.jpg")},
                        content_type="multipart/form-data")
    assert upload.status_code == 413 and upload.json["error"] == "PayloadTooLargeError"
    cases = [
        client.post("/search", data="{not json", content_type="application/json"),
        client.post("/search", json={"text": "x", "size": 10_000}),
        client.post("/search", json={"text": "x", "filters": {"password": "1"}}),
        client.post("/search", json={"text": "x", "ranking": {"method": "magic"}}),
        client.post("/search", json={"text": "x" * 5000}),
        client.post("/search", json={}),
        client.post("/search", json={"image_base64": "%%%not base64%%%"}),
        client.post("/search", json={"image_base64": base64.b64encode(b"\xff\xd8\xff\xe0 truncated jpeg").decode()}),
        client.get("/search?q=x&size=abc"),
        client.get("/search?q=x&colour=red"),
    ]
    for response in cases:
        assert response.status_code == 400, (response.status_code, response.json)
        assert set(response.json) >= {"error", "message"} and "Traceback" not in response.get_data(as_text=True)


def test_png_bomb_is_refused(client: Any) -> None:
    image = Image.new("1", (20000, 20000))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    response = client.post("/search", json={"image_base64": base64.b64encode(buffer.getvalue()).decode()})
    assert response.status_code == 400 and response.json["error"] == "ImageDecodeError"


def test_es_down_is_503_with_retry_after(encoder: Any) -> None:
    dead = Settings(es_hosts=("http://127.0.0.1:9",), request_timeout_s=2)
    client = create_app(dead, encoder=encoder, capabilities=object()).test_client()
    response = client.post("/search", json={"text": "shirt"})
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit() and response.json["error"] == "ClusterUnavailableError"
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_readyz_checks_model_identity(client: Any, search_index: str, search_settings: Settings,
                                      encoder: Any) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["alias"] == search_index
    other = _BrokenEncoder(encoder, "fail")
    other.identity = "0" * 64
    mismatch = create_app(search_settings, encoder=other).test_client().get("/readyz")
    assert mismatch.status_code == 503 and "different model" in mismatch.json["checks"]["error"]


@pytest.fixture()
def service_url(search_index: str, search_settings: Settings, encoder: Any) -> Any:
    with served(create_app(search_settings, encoder=encoder)) as url:
        yield url


def test_drop_in_proxy_with_the_official_client(service_url: str, es: Any) -> None:
    from elasticsearch import Elasticsearch

    app_client = Elasticsearch(service_url)  # the legacy app, pointed at us instead of ES
    body = {"query": {"bool": {"must": [{"match": {"title": "blue shirt"}}],
                               "filter": [{"term": {"gender": "Men"}}]}},
            "aggs": {"colours": {"terms": {"field": "base_colour"}}}, "size": 8}
    hybrid = app_client.search(index=ALIAS, **body)
    direct = es.search(index=ALIAS, **body)
    assert hybrid.meta.headers["X-Elastic-Product"] == "Elasticsearch"
    assert len(hybrid["hits"]["hits"]) == 8
    assert all(h["_source"]["gender"] == "Men" for h in hybrid["hits"]["hits"])  # app filters kept in vector legs
    # Default: aggregations over the fused candidates (tests/live/test_proxy_compat.py); "lexical": ES's own.
    assert hybrid["_hybrid"]["facets"] == "fused"
    assert sum(b["doc_count"] for b in hybrid["aggregations"]["colours"]["buckets"]) <= hybrid["_hybrid"]["fused_total"]
    lexical = app_client.options(headers={"X-Hybrid-Options": '{"facets": "lexical"}'}).search(index=ALIAS, **body)
    assert lexical["aggregations"] == direct["aggregations"]
    assert hybrid["hits"]["total"]["value"] >= direct["hits"]["total"]["value"]
    assert set(hybrid["_hybrid"]["legs"]) == {"bm25", "text_text", "text_image"}
    vector_only = {h["_id"] for h in hybrid["hits"]["hits"]} - {h["_id"] for h in direct["hits"]["hits"]}
    assert vector_only or [h["_id"] for h in hybrid["hits"]["hits"]] != [h["_id"] for h in direct["hits"]["hits"]]

    # Presentation options reach every fused hit, including hits only a vector leg found.
    highlighted = app_client.search(index=ALIAS, query={"match": {"title": "blue shirt"}}, size=10,
                                    highlight={"fields": {"title": {}}}, version=True, source=["title"])
    plain = es.search(index=ALIAS, query={"match": {"title": "blue shirt"}}, size=100)
    lexical_ids = {h["_id"] for h in plain["hits"]["hits"]}
    for hit in highlighted["hits"]["hits"]:
        assert set(hit["_source"]) <= {"title"} and isinstance(hit["_version"], int)
        if hit["_id"] in lexical_ids:  # a BM25 match always has a term to highlight
            assert "<em>" in " ".join(hit["highlight"]["title"]), hit

    # What we cannot improve is passed through unchanged.
    sorted_body = {"query": {"match": {"title": "shirt"}}, "sort": [{"year": "desc"}], "size": 5}
    assert [h["_id"] for h in app_client.search(index=ALIAS, **sorted_body)["hits"]["hits"]] == \
        [h["_id"] for h in es.search(index=ALIAS, **sorted_body)["hits"]["hits"]]
    assert app_client.count(index=ALIAS)["count"] == es.count(index=ALIAS)["count"]
    assert app_client.indices.exists(index=ALIAS)
    off = app_client.options(headers={"X-Hybrid-Options": "off"}).search(index=ALIAS, **body)
    assert [h["_id"] for h in off["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
    linear = app_client.options(headers={"X-Hybrid-Options": json.dumps({"method": "linear"})}).search(
        index=ALIAS, **body)
    assert linear["_hybrid"]["variant"] == "hybrid-rrf" and len(linear["hits"]["hits"]) == 8


def test_native_retriever_request_falls_back_visibly_where_unavailable(client: Any, es: Any) -> None:
    caps = detect_capabilities(es)
    result = client.post("/search", json={"text": "white shirt", "size": 5,
                                          "ranking": {"native_retriever": True}}).json
    assert len(result["hits"]) == 5
    if caps.native_rrf_usable:
        assert result["fusion"]["method"] == "native_rrf"
    else:  # the integ-test node: no rank-rrf, basic license
        assert result["fusion"]["method"] == "rrf"
        assert any(d.startswith("native_retriever: unavailable") for d in result["degraded"])


def test_proxy_reports_elasticsearchs_own_errors_for_a_bad_app_query(service_url: str, es: Any) -> None:
    """A query ES rejects must fail through the proxy exactly as it fails against ES: same class, status, type."""
    from elasticsearch import BadRequestError, Elasticsearch

    app_client = Elasticsearch(service_url)
    bad_agg = {"query": {"match": {"title": "blue shirt"}}, "size": 5,
               "aggs": {"t": {"terms": {"field": "title"}}}}  # a text field: ES refuses to aggregate it
    malformed_filter = {"query": {"bool": {"must": [{"match": {"title": "shirt"}}], "filter": [True]}}, "size": 5}
    for body in (bad_agg, malformed_filter):
        with pytest.raises(BadRequestError) as direct:
            es.search(index=ALIAS, **body)
        with pytest.raises(BadRequestError) as proxied:
            app_client.search(index=ALIAS, **body)
        assert proxied.value.meta.status == direct.value.meta.status == 400
        assert proxied.value.error == direct.value.error  # ES's error type, e.g. illegal_argument_exception


def test_doc_value_ids_give_the_same_results_and_recover_from_an_undeclared_index(
        es: Any, search_index: str, search_settings: Settings, encoder: Any) -> None:
    """Catalog builds declare _meta.doc_id_field; the lean legs then skip stored _id reads. Same hits,
    scores and facets as the ordinary path, and a hit from an index that does not declare the field
    makes the engine fall back instead of trusting it."""
    sent: list[list[dict[str, Any]]] = []

    class Spy(ElasticsearchGateway):
        """Records the leg bodies; ``claims`` replaces what the index mappings declare."""

        claims: dict[str, dict[str, Any]] | None = None
        mapping_lookups = 0

        def msearch(self, searches: Any, *, timeout_s: float | None = None) -> list:
            sent.append(list(searches)[1::2])
            return super().msearch(searches, timeout_s=timeout_s)

        def mappings(self, index: str) -> dict[str, dict[str, Any]]:
            self.mapping_lookups += 1
            return super().mappings(index) if self.claims is None else self.claims

    request = SearchRequest(text="blue jeans", size=10, facets=("gender", "base_colour"), explain=True)
    fast = SearchEngine(Spy(es), encoder, search_settings)
    assert fast.doc_id_field() == "id"
    fast_result = fast.search(request, RankingConfig(understanding=False))
    # Two _msearch: the lexical leg, sent while the text is encoded, then the vector legs.
    assert len(sent) == 2 and all(body["stored_fields"] == "_none_" for call in sent for body in call)

    undeclared = Spy(es)
    # As for an index without the id declaration (same lexical analysis, so the same BM25 leg).
    undeclared.claims = {search_index: {"_meta": {"lexical_analysis": "client"}}}
    plain = SearchEngine(undeclared, encoder, search_settings)
    plain_result = plain.search(request, RankingConfig(understanding=False))
    assert plain.doc_id_field() is None
    for key in ("facets", "total"):
        assert fast_result[key] == plain_result[key], key
    assert [h["_id"] for h in fast_result["hits"]] == [h["_id"] for h in plain_result["hits"]]
    assert all(hit["_source"].get("title") for hit in fast_result["hits"])

    sent.clear()
    moved = Spy(es)
    # The alias moved since the look; same lexical analysis as the others, so the same BM25 leg.
    moved.claims = {"qs-live-v20000101000000": {"_meta": {"doc_id_field": "id", "lexical_analysis": "client"}}}
    stale = SearchEngine(moved, encoder, search_settings)
    stale_result = stale.search(request, RankingConfig(understanding=False))
    # Each of the two _msearch trusted the (stale) declaration, found a hit it does not cover, and
    # re-ran the ordinary way (the spy keeps claiming the stale declaration on every look-up).
    assert [("stored_fields" in call[0]) for call in sent] == [True, False, True, False]
    assert [h["_id"] for h in stale_result["hits"]] == [h["_id"] for h in plain_result["hits"]]
    lookups = moved.mapping_lookups
    stale.search(request, RankingConfig(understanding=False))
    # The stale declaration was forgotten: looked up again, before each of the search's two _msearch.
    assert moved.mapping_lookups == lookups + 2


# Shopper phrasing of intents the live subset holds (type, gender, colour in catalog values).
SHOPPER_QUERIES = [
    ("black tees for guys", ("Tshirts", "Men", "Black")),
    ("white t shirt ladies", ("Tshirts", "Women", "White")),
    ("mens blue shirts", ("Shirts", "Men", "Blue")),
    ("black dress shoes for him", ("Formal Shoes", "Men", "Black")),
    ("brown purse for her", ("Handbags", "Women", "Brown")),
    ("steel wrist watch women", ("Watches", "Women", "Steel")),
    ("white sneakers men", ("Sports Shoes", "Men", "White")),
    ("yellow tee mens", ("Tshirts", "Men", "Yellow")),
]


def _precision_at_10(hits: list[dict[str, Any]], intent: tuple[str, str, str]) -> float:
    kind, gender, colour = intent
    good = [h for h in hits[:10] if h["_source"].get("article_type") == kind and h["_source"].get("base_colour") ==
            colour and h["_source"].get("gender") in (gender, "Unisex")]
    return len(good) / 10


def test_understood_is_returned_used_and_can_be_turned_off(client: Any, service_url: str) -> None:
    """The parse is in the answer (/search and the proxy), shapes the legs, and helps shopper phrasing."""
    from elasticsearch import Elasticsearch

    result = client.post("/search", json={"text": "black tees for guys", "size": 10}).json
    understood = result["understood"]
    assert understood["attributes"]["article_type"]["values"] == ["Tshirts"]
    assert understood["attributes"]["gender"]["values"] == ["Men"]
    assert understood["attributes"]["base_colour"]["values"] == ["Black"]
    assert set(understood["filtered"]) == {"article_type", "gender", "base_colour"} and understood["boosted"]
    assert any("understood" in hit["breakdown"]["legs"] for hit in result["hits"])
    off = client.post("/search", json={"text": "black tees for guys", "size": 10,
                                       "ranking": {"understanding": False}}).json
    assert off["understood"] is None and all("understood" not in h["breakdown"]["legs"] for h in off["hits"])

    proxied = Elasticsearch(service_url).search(index=ALIAS, query={"match": {"title": "black tees for guys"}})
    assert proxied["_hybrid"]["understood"]["attributes"]["article_type"]["values"] == ["Tshirts"]

    on_scores, off_scores = [], []
    for text, intent in SHOPPER_QUERIES:
        on_scores.append(_precision_at_10(client.post("/search", json={"text": text, "size": 10}).json["hits"],
                                          intent))
        off_scores.append(_precision_at_10(client.post("/search", json={
            "text": text, "size": 10, "ranking": {"understanding": False}}).json["hits"], intent))
    # Measured on this 600-product subset with the test model; the full evaluation is in docs/relevance.md.
    assert sum(on_scores) > sum(off_scores), (on_scores, off_scores)
    assert min(on_scores) >= 0.5, on_scores


def test_a_parse_that_filters_everything_out_falls_back_instead_of_going_empty(client: Any, es: Any) -> None:
    """A confident type + gender that no product has together: the vector legs' pre-filter matches
    nothing, so those legs run again without it and the query still answers."""
    aggs = es.search(index=ALIAS, size=0, aggs={"t": {"terms": {"field": "article_type", "size": 200}, "aggs": {
        "g": {"terms": {"field": "gender"}}}}})["aggregations"]["t"]["buckets"]
    kind = next(b["key"] for b in aggs if b["doc_count"] >= 20 and not any(
        g["key"] == "Girls" for g in b["g"]["buckets"]))
    result = client.post("/search", json={"text": f"girls {kind.lower()}", "size": 5}).json
    assert result["understood"]["attributes"]["gender"]["values"] == ["Girls"]
    assert set(result["understood"]["filtered"]) >= {"gender", "article_type"}
    assert set(result["understood"]["filter_dropped"]) == {"text_text", "text_image"}
    assert len(result["hits"]) == 5 and set(result["legs"]) == {"bm25", "text_text", "text_image"}


def test_a_composed_photo_and_colour_query_end_to_end(client: Any, es: Any, catalog_dir: Path) -> None:
    """Photo of a product + "but in <colour>": the words set the colour, the photo the type."""
    aggs = es.search(index=ALIAS, size=0, query={"term": {"has_image": True}}, aggs={"t": {
        "terms": {"field": "article_type", "size": 5}, "aggs": {"c": {"terms": {"field": "base_colour",
                                                                              "size": 10}}}}})
    kind_bucket = aggs["aggregations"]["t"]["buckets"][0]  # the most common photographed type (T-shirts here)
    colours = [b["key"] for b in kind_bucket["c"]["buckets"] if b["doc_count"] >= 5]
    photo_colour, asked = colours[0], colours[1]
    hit = es.search(index=ALIAS, size=1, sort=[{"id": "asc"}], query={"bool": {"filter": [
        {"term": {"has_image": True}}, {"term": {"article_type": kind_bucket["key"]}},
        {"term": {"base_colour": photo_colour}}]}})["hits"]["hits"][0]
    photo = base64.b64encode((catalog_dir / hit["_source"]["image"]).read_bytes()).decode()
    body = {"image_base64": photo, "text": f"but in {asked.lower()}", "size": 10}
    composed = client.post("/search", json=body).json
    plain = client.post("/search", json={**body, "ranking": {"understanding": False}}).json

    def asked_share(result: dict[str, Any]) -> float:
        return sum(h["_source"].get("article_type") == kind_bucket["key"] and h["_source"].get("base_colour") == asked
                   for h in result["hits"]) / len(result["hits"])

    assert composed["understood"]["attributes"]["base_colour"]["values"] == [asked]
    assert set(composed["legs"]) == {"bm25", "text_text", "text_image", "image_image", "image_text"}
    assert asked_share(composed) >= 0.6 and asked_share(composed) > asked_share(plain), (
        asked_share(composed), asked_share(plain), composed["understood"])


def test_a_photo_alone_is_read_by_the_image_graphs_classifiers(client: Any, es: Any, catalog_dir: Path) -> None:
    """A photo query with no words: the exported classifiers name its type and colour, which re-rank."""
    aggs = es.search(index=ALIAS, size=0, query={"term": {"has_image": True}},
                     aggs={"t": {"terms": {"field": "article_type", "size": 1}}})
    kind = aggs["aggregations"]["t"]["buckets"][0]["key"]
    hit = es.search(index=ALIAS, size=1, sort=[{"id": "asc"}], query={"bool": {"filter": [
        {"term": {"has_image": True}}, {"term": {"article_type": kind}}]}})["hits"]["hits"][0]
    photo = base64.b64encode((catalog_dir / hit["_source"]["image"]).read_bytes()).decode()
    read = client.post("/search", json={"image_base64": photo, "size": 10}).json
    plain = client.post("/search", json={"image_base64": photo, "size": 10,
                                         "ranking": {"understanding": False}}).json
    attributes = read["understood"]["attributes"]
    assert attributes["article_type"]["source"] == "photo" and kind in attributes["article_type"]["values"]
    assert attributes["base_colour"]["source"] == "photo"
    assert plain.get("understood") is None

    def same_type(result: dict[str, Any]) -> int:
        return sum(h["_source"].get("article_type") == kind for h in result["hits"])

    assert same_type(read) >= same_type(plain) and same_type(read) >= 8, (same_type(read), same_type(plain))


def test_boosts_in_a_window_score_exactly_like_boosts_in_the_query(es: Any, search_index: str,
                                                                    search_settings: Settings, encoder: Any,
                                                                    client: Any) -> None:
    """``boost_window`` re-adds the parse's boosts in the service; with a window that holds every match
    (this index has 600 products) the BM25 leg must equal Elasticsearch's own boosted query: the same
    ids in the same order with the same scores, and the fused /search answer the same too."""
    engine = SearchEngine(ElasticsearchGateway(es), encoder, search_settings, detect_capabilities(es))
    in_query = RankingConfig(legs={"bm25": 1.0}, depth=50, num_candidates=50)
    windowed = in_query.with_overrides({"boost_window": 5000})
    compared = 0
    for text, _ in SHOPPER_QUERIES:
        expected = engine.run_legs(SearchRequest(text=text), in_query).legs["bm25"]
        got = engine.run_legs(SearchRequest(text=text), windowed).legs["bm25"]
        assert [doc for doc, _ in got] == [doc for doc, _ in expected], text
        assert np.allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5), text
        compared += len(expected)
    assert compared > 100  # the queries really matched documents
    for text, _ in SHOPPER_QUERIES[:3]:
        default = client.post("/search", json={"text": text, "size": 10}).json
        window = client.post("/search", json={"text": text, "size": 10, "ranking": {"boost_window": 5000}}).json
        assert [h["_id"] for h in window["hits"]] == [h["_id"] for h in default["hits"]], text


def test_a_prefilter_no_photo_matches_is_dropped_before_the_search(es: Any, search_index: str,
                                                                    search_settings: Settings, encoder: Any) -> None:
    """The parser reads which (type, gender, colour) combinations have each vector from the real index
    (one composite aggregation). A type and colour with products but no photo get their text->image
    leg unfiltered at once: the same hits as the old path (filtered, empty, sent again), one
    ``_msearch`` less."""
    body = {"size": 0, "aggs": {"c": {
        "composite": {"size": 1000, "sources": [{"t": {"terms": {"field": "article_type"}}},
                                                {"c": {"terms": {"field": "base_colour"}}}]},
        "aggs": {"photos": {"filter": {"exists": {"field": "image_vector"}}}}}}}
    buckets = es.search(index=search_index, **body)["aggregations"]["c"]["buckets"]
    kind, colour = next((b["key"]["t"], b["key"]["c"]) for b in buckets
                        if b["photos"]["doc_count"] == 0 and b["doc_count"] >= 3 and b["key"]["c"] not in ("NA", "Multi"))
    calls: list[int] = []

    class Counting(ElasticsearchGateway):
        def msearch(self, searches: Any, *, timeout_s: float | None = None) -> list:
            calls.append(len(searches) // 2)
            return super().msearch(searches, timeout_s=timeout_s)

    request, ranking = SearchRequest(text=f"{colour} {kind}"), RankingConfig()
    engine = SearchEngine(Counting(es), encoder, search_settings)
    table = engine.understander.filter_combinations()
    assert table is not None
    run = engine.run_legs(request, ranking)
    assert {"article_type", "base_colour"} <= set(run.prefiltered), run.understanding
    assert run.filter_dropped == ["text_image"] and run.legs["text_image"]  # unfiltered: photos of other products
    assert run.legs["text_text"] and calls == [1, 2]  # the lexical leg, then both vector legs; no re-run
    calls.clear()
    unknown = SearchEngine(Counting(es), encoder, search_settings)
    unknown.understander.filter_combinations = lambda: None  # as before: no table
    again = unknown.run_legs(request, ranking)
    assert calls == [1, 2, 1]  # the emptied leg was sent a second time, unfiltered
    assert again.filter_dropped == ["text_image"] and again.legs == run.legs

"""The service's per-request CPU work outside Elasticsearch and the encoder, in one run.

Three measurements, each an A/B in the same process (or, for fusion, the same script
run against two revisions of the code):

* ``client``: Elasticsearch client round trips (a single kNN leg with ``_source``; three
  ids-only legs in one ``_msearch`` + the page fetch, as ``SearchEngine`` sends them) with
  the client's standard-library JSON serializers vs ``mmsearch.serializers`` (orjson).
  The two clients alternate query by query; figures are medians over passes of per-pass
  medians.
* ``fusion``: ``query_service.fusion.fuse`` (RRF) over the real legs of the dev queries
  (3 x ``depth`` hits), and the same plus the breakdown of one page of 10 hits (what
  ``explain=true`` reads). Minimum over repeats of the mean per call: the cost without
  scheduler noise.
* ``doc_value_ids``: three ids-only legs in one ``_msearch`` loading each hit's stored ``_id``
  vs reading it from the ``id`` doc values (``queries.ids_only(..., id_field="id")``), alternating
  query by query (the index must be a catalog build: ``_id`` = ``id``).
* ``json``: serialising a real ``/search`` response with Flask's default provider vs
  ``query_service.jsonio.OrjsonProvider`` (minimum over repeats).
* ``photo_legs``: what the engine does with the five ids-only legs of a text+photo query
  (doc-value ids) once Elasticsearch has answered: parse every leg, RRF, the page. Real
  responses of the first ``--photos`` catalog photos (+ dev queries); median over repeats of
  the mean per query. Revision-aware like ``fusion`` (older code: ``restore_ids`` + parse).
  The responses are recorded by a gateway wrapper (``RecordingGateway``) handed to
  ``SearchEngine``, so capturing them needs an engine that takes a ``SearchGateway``.
* ``gc``: the cyclic collector during ``/search`` requests to an in-process app with the real
  engine and encoder (hybrid text, Flask test client): collections per generation and their
  durations, before and after ``gc.freeze()`` of everything loaded (what a gunicorn worker
  does after loading, ``query_service.wsgi.create_app``).

    ES_URL=http://127.0.0.1:9201 python benchmarks/hot_path.py --model .state/models/dev \\
        --alias relevance-products [--only fusion] [--out FILE]

To compare fusion code across revisions, run ``--only fusion`` (or ``photo_legs``) with
``PYTHONPATH`` set to a worktree of the older revision (the script imports
``query_service`` from there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH, when set, wins

from mmsearch.config import Settings, default_catalog_dir  # noqa: E402
from onnx_models.runtime import Encoder  # noqa: E402
from query_service import fusion, queries  # noqa: E402
from query_service.ranking import RankingConfig  # noqa: E402

LEG_FIELDS = {"bm25": None, "text_text": "text_vector", "text_image": "image_vector"}


def leg_bodies(text: str, vector: Any, ranking: RankingConfig, id_field: str | None = None) -> list[dict[str, Any]]:
    return [queries.ids_only(queries.bm25_body(text, ranking, {}, timeout_ms=2000) if field is None
                             else queries.knn_body(field, vector, ranking, {}, timeout_ms=2000), id_field=id_field)
            for field in LEG_FIELDS.values()]


def measure_doc_value_ids(settings: Settings, alias: str, texts: list[str], vectors: Any, ranking: RankingConfig,
                          passes: int) -> dict[str, Any]:
    es = settings.es_client()
    variants = {"stored_id": None, "doc_value_id": "id"}
    first = es.msearch(searches=queries.msearch_payload(alias, leg_bodies(texts[0], vectors[0], ranking)))
    lean = es.msearch(searches=queries.msearch_payload(alias, leg_bodies(texts[0], vectors[0], ranking, "id")))
    same = [[h["_id"] for h in r["hits"]["hits"]] for r in first["responses"]] == \
        [[h["fields"]["id"][0] for h in r["hits"]["hits"]] for r in lean["responses"]]

    def legs_with(id_field: str | None) -> Any:
        return lambda text, vector: es.msearch(
            searches=queries.msearch_payload(alias, leg_bodies(text, vector, ranking, id_field)))

    row: dict[str, Any] = alternating_medians({name: legs_with(field) for name, field in variants.items()},
                                              texts, vectors, passes)
    row["doc_value_vs_stored"] = round(row["doc_value_id"] / row["stored_id"], 3)
    row["same_ids_in_the_same_order"] = same
    return row


def alternating_medians(calls: dict[str, Any], texts: list[str], vectors: Any, passes: int,
                        warmup: int = 0) -> dict[str, float]:
    """Per variant, the median over passes of the per-pass median round trip (ms). The variants
    alternate query by query, their order flipping every query, so load drift hits them alike."""
    for text, vector in zip(texts[:warmup], vectors[:warmup]):
        for call in calls.values():
            call(text, vector)
    per_pass: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(passes):
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for i, (text, vector) in enumerate(zip(texts, vectors)):
            for name, call in (list(calls.items()) if i % 2 else list(reversed(calls.items()))):
                start = time.perf_counter()
                call(text, vector)
                samples[name].append((time.perf_counter() - start) * 1000)
        for name, values in samples.items():
            per_pass[name].append(statistics.median(values))
    return {name: round(statistics.median(values), 3) for name, values in per_pass.items()}


def best_mean_ms(call: Any, calls: int = 200, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls * 1000)
    return round(best, 4)


def measure_client(settings: Settings, alias: str, texts: list[str], vectors: Any, ranking: RankingConfig,
                   passes: int) -> dict[str, Any]:
    from elasticsearch import Elasticsearch

    kwargs = settings.client_kwargs()
    clients = {"orjson": Elasticsearch(**kwargs)}
    kwargs.pop("serializers")
    clients["stdlib_json"] = Elasticsearch(**kwargs)

    def single(es: Any, text: str, vector: Any) -> None:
        es.msearch(searches=queries.msearch_payload(alias, [queries.knn_body("image_vector", vector, ranking, {},
                                                                             timeout_ms=2000)]))

    def hybrid(es: Any, text: str, vector: Any) -> None:
        response = es.msearch(searches=queries.msearch_payload(alias, leg_bodies(text, vector, ranking)))
        page = [doc_id for doc_id, _ in queries.parse_leg_response(response["responses"][0])[0][:10]]
        es.search(index=alias, **queries.page_sources_body(page))

    out: dict[str, Any] = {}
    for name, call in (("knn_single_leg", single), ("hybrid_3_legs_plus_fetch", hybrid)):
        row: dict[str, Any] = alternating_medians(
            {client: (lambda text, vector, es=es, call=call: call(es, text, vector)) for client, es in clients.items()},
            texts, vectors, passes, warmup=5)
        row["orjson_vs_stdlib"] = round(row["orjson"] / row["stdlib_json"], 3)
        out[name] = row
    return out


def real_legs(settings: Settings, alias: str, texts: list[str], vectors: Any,
              ranking: RankingConfig) -> list[dict[str, list[tuple[str, float]]]]:
    es = settings.es_client()
    legs = []
    for text, vector in zip(texts, vectors):
        responses = es.msearch(searches=queries.msearch_payload(alias, leg_bodies(text, vector, ranking)))["responses"]
        legs.append({leg: queries.parse_leg_response(r)[0] for leg, r in zip(LEG_FIELDS, responses)})
    return legs


def measure_fusion(all_legs: list[dict[str, list[tuple[str, float]]]]) -> dict[str, Any]:
    weights = {leg: 1.0 for leg in LEG_FIELDS}

    def fuse_all() -> None:
        for legs in all_legs:
            fusion.fuse(legs, "rrf", weights)

    def fuse_and_explain_page() -> None:
        for legs in all_legs:
            for hit in fusion.fuse(legs, "rrf", weights)[:10]:
                _ = hit.legs

    n = len(all_legs)
    return {"code": str(Path(fusion.__file__).resolve()), "queries": n,
            "hits_per_query": round(statistics.mean(sum(len(v) for v in legs.values()) for legs in all_legs), 1),
            "rrf_ms": round(best_mean_ms(fuse_all, calls=3) / n, 4),
            "rrf_plus_page_breakdown_ms": round(best_mean_ms(fuse_and_explain_page, calls=3) / n, 4)}


def measure_json(settings: Settings, alias: str, encoder: Any, text: str) -> dict[str, Any]:
    from flask import Flask
    from flask.json.provider import DefaultJSONProvider

    from query_service.app import create_app
    from query_service.jsonio import OrjsonProvider

    app = create_app(settings, encoder=encoder)
    response = app.test_client().post("/search", json={"text": text, "size": 10, "explain": True,
                                                       "facets": ["brand", "base_colour"]})
    payload = response.get_json()
    default = DefaultJSONProvider(Flask("default"))
    default.sort_keys = False
    fast = OrjsonProvider(Flask("orjson"))
    return {"response_bytes": len(response.data),
            "stdlib_dumps_ms": best_mean_ms(lambda: default.dumps(payload)),
            "orjson_dumps_ms": best_mean_ms(lambda: fast.dumps(payload))}


class RecordingGateway:
    """A ``SearchGateway`` that delegates to an ``ElasticsearchGateway`` and keeps every
    ``msearch`` call: its searches, its ``timeout_s`` and the responses, as the engine sent and
    received them. It wraps the engine's public seam (``SearchEngine(gateway, ...)``), so the
    benchmark touches no engine internals."""

    is_search_gateway = True  # mmsearch.gateway.as_gateway takes it as it is

    def __init__(self, client: Any) -> None:
        from mmsearch.gateway import ElasticsearchGateway

        self.inner = ElasticsearchGateway(client)
        self.client = client  # capability detection reads the client behind a gateway
        self.msearch_calls: list[dict[str, Any]] = []

    def msearch(self, searches: Any, *, timeout_s: float | None = None) -> list[dict[str, Any]]:
        responses = self.inner.msearch(searches, timeout_s=timeout_s)
        self.msearch_calls.append({"searches": list(searches), "timeout_s": timeout_s, "responses": responses})
        return responses

    def search(self, index: str, body: Any, *, timeout_s: float | None = None) -> dict[str, Any]:
        return self.inner.search(index, body, timeout_s=timeout_s)

    def count(self, index: str, query: Any = None) -> int:
        return self.inner.count(index, query)

    def mappings(self, index: str) -> dict[str, dict[str, Any]]:
        return self.inner.mappings(index)

    def alias_targets(self, alias: str) -> list[str]:
        return self.inner.alias_targets(alias)

    def cluster_health(self, timeout: str = "2s") -> dict[str, Any]:
        return self.inner.cluster_health(timeout)

    def forward(self, method: str, path: str, params: Any, body: Any) -> Any:
        return self.inner.forward(method, path, params, body)


def photo_leg_responses(settings: Settings, alias: str, encoder: Any, texts: list[str],
                        photos: int) -> tuple[list[list[bytes]], dict[str, str | None]]:
    """The raw ``_msearch`` items of text+photo queries as the engine sends them (5 ids-only legs),
    recorded by a gateway wrapper (``RecordingGateway``)."""
    from latency import catalog_photos

    from query_service.engine import SearchEngine
    from query_service.ranking import SearchRequest

    es = settings.es_client()
    gateway = RecordingGateway(es)
    engine = SearchEngine(gateway, encoder, settings)
    if engine.doc_id_field() != "id":
        raise SystemExit(f"{alias} does not declare _meta.doc_id_field: photo_legs measures the doc-value-id path")
    ranking = RankingConfig.from_dict({"name": "photo", "legs": {leg: 1.0 for leg in
                                       ("bm25", "text_text", "text_image", "image_image", "image_text")}})
    captured: list[list[bytes]] = []
    for text, photo in zip(texts, catalog_photos(es, alias, default_catalog_dir(), photos)):
        gateway.msearch_calls.clear()
        engine.search(SearchRequest(text=text, image=photo, explain=False), ranking)
        # One _msearch per search: its legs (the page fetch is a search, not an msearch).
        captured.append([orjson.dumps(r) for r in gateway.msearch_calls[-1]["responses"]])
    return captured, engine.declared_id_fields


def measure_photo_legs(captured: list[list[bytes]], id_fields: dict[str, str | None],
                       repeats: int = 30) -> dict[str, Any]:
    def parse(response: dict[str, Any]) -> Any:
        if hasattr(queries, "parse_id_field_leg"):
            return queries.parse_id_field_leg(response, id_fields, "id", False)
        assert queries.restore_ids(response, id_fields, "id", False)  # older revisions
        return queries.parse_leg_response(response)

    names = ("bm25", "text_text", "text_image", "image_image", "image_text")
    per_repeat, pages = [], []
    for _ in range(repeats):
        batch = [[orjson.loads(r) for r in responses] for responses in captured]  # fresh: older code mutates
        start = time.perf_counter()
        pages = []
        for responses in batch:
            legs = {name: parse(r)[0] for name, r in zip(names, responses)}
            fused = fusion.fuse(legs, "rrf", {name: 1.0 for name in names})
            pages.append([hit.doc_id for hit in fusion.paginate(fused, 0, 10)])
        per_repeat.append((time.perf_counter() - start) / len(batch) * 1000)
    return {"code": str(Path(queries.__file__).resolve()), "queries": len(captured), "legs": len(names),
            "hits_per_query": round(statistics.mean(sum(len(orjson.loads(r)["hits"]["hits"]) for r in responses)
                                                    for responses in captured), 1),
            "parse_fuse_page_ms": round(statistics.median(per_repeat), 4),
            "first_page": pages[0] if pages else []}


def measure_gc(settings: Settings, encoder: Any, texts: list[str], requests_per_phase: int = 1000) -> dict[str, Any]:
    import gc
    import logging

    from query_service.app import create_app

    logging.getLogger("mmsearch").setLevel(logging.WARNING)
    client = create_app(settings, encoder=encoder).test_client()
    durations: dict[int, list[float]] = {}
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            durations.setdefault(info["generation"], []).append((time.perf_counter() - started.pop()) * 1000)

    def phase() -> dict[str, Any]:
        for i in range(20):
            client.post("/search", json={"text": texts[i % len(texts)], "size": 10})
        durations.clear()
        gc.callbacks.append(on_gc)
        try:
            for i in range(requests_per_phase):
                client.post("/search", json={"text": texts[i % len(texts)], "size": 10, "explain": False})
        finally:
            gc.callbacks.remove(on_gc)
        return {f"gen{g}": {"collections": len(d), "median_ms": round(statistics.median(d), 3),
                            "max_ms": round(max(d), 3), "total_ms": round(sum(d), 1)}
                for g, d in sorted(durations.items())}

    out: dict[str, Any] = {"requests_per_phase": requests_per_phase, "tracked_objects": len(gc.get_objects())}
    out["not_frozen"] = phase()
    gc.collect()
    gc.freeze()
    out["frozen_objects"] = gc.get_freeze_count()
    out["frozen"] = phase()
    gc.unfreeze()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--queries", type=int, default=80)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--only", choices=("client", "fusion", "json", "doc_value_ids", "photo_legs", "gc"))
    parser.add_argument("--photos", type=int, default=20, help="text+photo queries for photo_legs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    catalog = default_catalog_dir()
    if catalog is None:
        raise SystemExit("shared catalog not found; set MMSEARCH_CATALOG_DIR")
    es_url = os.environ.get("ES_URL", "http://127.0.0.1:9200")
    settings = Settings.load(es_hosts=es_url, products_alias=args.alias, request_timeout_s=60,
                             rate_limit="off")  # unthrottled: all load comes from one address
    texts = [json.loads(line)["query"] for line in (catalog / "dev_queries.jsonl").open() if line.strip()]
    texts = texts[:args.queries]
    encoder = Encoder.load(args.model)
    vectors = encoder.encode_texts(texts)
    ranking = RankingConfig()
    result: dict[str, Any] = {"alias": args.alias, "cpus": os.cpu_count(), "load_avg_before": os.getloadavg(),
                              "queries": len(texts), "passes": args.passes, "depth": ranking.depth}
    if args.only in (None, "fusion"):
        result["fusion"] = measure_fusion(real_legs(settings, args.alias, texts, vectors, ranking))
    if args.only in (None, "client"):
        result["client"] = measure_client(settings, args.alias, texts, vectors, ranking, args.passes)
    if args.only in (None, "doc_value_ids"):
        result["doc_value_ids"] = measure_doc_value_ids(settings, args.alias, texts, vectors, ranking, args.passes)
    if args.only in (None, "json"):
        result["json"] = measure_json(settings, args.alias, encoder, texts[0])
    if args.only in (None, "photo_legs"):
        result["photo_legs"] = measure_photo_legs(*photo_leg_responses(settings, args.alias, encoder, texts,
                                                                       args.photos))
    if args.only in (None, "gc"):
        result["gc"] = measure_gc(settings, encoder, texts)
    result["load_avg_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Query latency at a fixed request rate: the service vs raw Elasticsearch for the same legs.

Serving: the Flask app from ``query_service.app.create_app`` runs behind werkzeug's
threaded ``make_server`` in a daemon thread of this process, on a free port (real HTTP,
one process, no gunicorn fork). An open-loop generator sends requests on a fixed schedule
(``--qps``) from a thread pool whatever the latency, so queueing shows up in the tail.

For every scenario, in the same run, at the same rate and interleaved (three streams, each a
third of a period after the previous one):

1. the service: ``POST /search`` (JSON; the photo as ``image_base64``) with the scenario's
   ``ranking`` overrides, client-side latency;
2. raw: the encoder alone (text, and image if any) then one ``_msearch`` of exactly the
   bodies the engine builds (``query_service.queries.bm25_body`` / ``knn_body`` with the
   engine's leg timeout, ids-only as ``queries.ids_only`` makes them) followed by the
   ``page_sources_body`` request for 10 ids, client round trips, timed separately from encoding
   (not mirrored: what query understanding, on by default in ``RankingConfig``, adds to the
   engine's bodies, i.e. the parse's lexical boosts and kNN pre-filter);
3. ``GET /healthz`` on the service: the HTTP stack with no work behind it;
4. for ``hybrid-text`` only, a fourth stream (the streams then a quarter of a period apart):
   the same query through the Elasticsearch-compatible proxy as an app sends it,
   ``POST /<alias>/_search`` with a ``multi_match`` over ``RankingConfig().field_boosts`` and
   ``X-Hybrid-Options: {"legs": ...}`` naming the scenario's legs, so both paths run the
   same three legs (``depth``/``num_candidates`` join the header only when they differ from
   ``RankingConfig``'s defaults). Every answer is checked: 200, ``_hybrid.legs`` the three
   legs, 10 hits. Proxy cost = p50(proxy) / p50(``/search``).

    service overhead excl. encoding = p50(service) - p50(encode) - p50(raw ES)
    ... excl. the service's own encoding = p50(service - its took_ms.encode) - p50(raw ES)

and, per request, ``client latency - took_ms.encode - took_ms.es`` from the service's own
stage timings (HTTP, validation, fusion, JSON), which does not compare two phases.
Hybrid cost = p50(hybrid-text) / max p50 of its single-leg scenarios.

    ES_URL=http://127.0.0.1:9200 python benchmarks/latency.py [--alias ALIAS] [--write-doc]

``--alias`` is used when it exists (e.g. a full shared-catalog build); otherwise ``qs-dev``.
``--model`` defaults to the live tests' package for the shared catalog
(``.state/models/test-<key>``, built by ``onnx_models.testing.build_test_model``).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import datetime as dt
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import requests
import urllib3
from werkzeug.serving import make_server

from mmsearch.config import PROJECT_ROOT, Settings, default_catalog_dir
from mmsearch.esnode import free_port
from onnx_models.runtime import Encoder
from query_service import queries
from query_service.app import create_app
from query_service.engine import EngineOptions
from query_service.ranking import LEGS, RankingConfig
from query_service.wsgi import serving_runtime_options

FALLBACK_ALIAS = "qs-dev"

#: name -> (legs, uses an image)
SCENARIOS: dict[str, tuple[dict[str, float], bool]] = {
    "bm25": ({"bm25": 1.0}, False),
    "knn-text_text": ({"text_text": 1.0}, False),
    "knn-text_image": ({"text_image": 1.0}, False),
    "hybrid-text": ({"bm25": 1.0, "text_text": 1.0, "text_image": 1.0}, False),
    "hybrid-text+image": ({leg: 1.0 for leg in LEGS}, True),
}
SINGLE_LEGS_OF_HYBRID_TEXT = ("bm25", "knn-text_text", "knn-text_image")
#: The scenario that is also sent through the proxy (``POST /<alias>/_search``).
PROXY_SCENARIO = "hybrid-text"


def default_model() -> Path:
    """The package ``onnx_models.testing.build_test_model`` builds for the shared catalog (the live tests' model)."""
    from onnx_models.testing import test_model_key

    catalog = default_catalog_dir()
    return PROJECT_ROOT / ".state" / "models" / (f"test-{test_model_key(catalog)}" if catalog else "test")


def proxy_request(text: str, legs: dict[str, float], depth: int) -> tuple[dict[str, Any], str]:
    """(body, X-Hybrid-Options) of an app's search for ``text`` that runs exactly ``legs`` in the proxy:
    the lexical query on the fields and boosts the service's own BM25 leg uses."""
    fields = [name if boost == 1 else f"{name}^{boost:g}" for name, boost in RankingConfig().field_boosts.items()]
    options: dict[str, Any] = {"legs": {leg: int(w) if float(w).is_integer() else w for leg, w in legs.items()}}
    defaults = RankingConfig()
    for key, value in (("method", "rrf"), ("depth", depth), ("num_candidates", max(200, depth))):
        if getattr(defaults, key) != value:  # the /search scenario's ranking, where it is not the default
            options[key] = value
    return ({"query": {"multi_match": {"query": text, "fields": fields}}, "size": 10},
            json.dumps(options, separators=(",", ":")))


def code_state() -> dict[str, Any]:
    """The commit measured and the tracked code files that differed from it (the tree is shared)."""
    import subprocess

    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), *argv], capture_output=True, text=True).stdout.rstrip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
             if line[3:].split("/")[0] in ("query_service", "mmsearch", "onnx_models", "indexer", "benchmarks")]
    return {"commit": git("rev-parse", "--short", "HEAD"), "modified": dirty}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def open_loop(n: int, qps: float, calls: tuple[Any, ...], workers: int) -> tuple[list[list[Any]], int]:
    """Fire every ``call(i)`` of ``calls`` for i < n, each stream on its own fixed schedule at ``qps``,
    the streams offset by an equal share of the period (two streams: the second half a period later).

    Why interleaved: run one phase after the other and any drift in the host's load (these
    machines are shared) lands on one phase only and shows up as fake overhead; interleaved,
    both phases see the same minute. Returns one result list per call and the peak in-flight count.
    """
    in_flight = peak = 0
    lock = threading.Lock()

    def wrapped(call: Any, i: int) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return call(i)
        finally:
            with lock:
                in_flight -= 1

    schedule = sorted((i / qps + s / (len(calls) * qps), s, i) for i in range(n) for s in range(len(calls)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures: list[list[Any]] = [[] for _ in calls]
        begin = time.perf_counter()
        for at, stream, i in schedule:
            delay = begin + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures[stream].append(pool.submit(wrapped, calls[stream], i))
        return [[f.result() for f in stream_futures] for stream_futures in futures], peak


def catalog_photos(es: Any, index: str, catalog: Path, count: int) -> list[bytes]:
    """Photos of products that are in the index with an image vector (deterministic: lowest ids)."""
    response = es.search(index=index, query={"exists": {"field": "image_vector"}}, size=count,
                         sort=[{"id": "asc"}], source=["image"])
    photos = []
    for hit in response["hits"]["hits"]:
        path = catalog / hit["_source"]["image"]
        if path.is_file():
            photos.append(path.read_bytes())
    if not photos:
        raise SystemExit(f"no catalog photos found for {index}")
    return photos


def stop_with_parent() -> None:
    """In the service's process before exec: on Linux, SIGTERM it when this script dies, however it
    dies (a killed run once left its gunicorn serving, and loading, the next measurements)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def serve_gunicorn(es_url: str, alias: str, model: Path, workers: int,
                   ready_tries: int = 240) -> tuple[str, subprocess.Popen[bytes]]:
    """``mmsearch serve --workers N`` on a free port, in its own process, unthrottled (the load comes
    from one address), once ``/readyz`` answers 200 (polled every 0.5 s, ``ready_tries`` times; else
    SystemExit). Returns its base URL and process, which is stopped however this script ends."""
    port = free_port()
    env = {**os.environ, "ES_URL": es_url, "MMSEARCH_ALIAS": alias, "MMSEARCH_MODEL_DIR": str(model),
           "MMSEARCH_RATE_LIMIT": "off"}
    service = subprocess.Popen([sys.executable, "-m", "mmsearch.cli", "serve", "--port", str(port), "--workers",
                                str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=stop_with_parent)
    for _ in range(ready_tries):
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    else:
        service.terminate()
        raise SystemExit(f"the gunicorn service on {alias} did not become ready")
    # Stopped however this script ends: a run that died mid-way once left its gunicorn serving.
    atexit.register(service.terminate)
    return f"http://127.0.0.1:{port}", service


def write_doc_section(doc: Path, body: str, heading: str = "Query latency") -> None:
    """Replace only the body of the '## <heading>' section up to its first subsection
    (other sections and subsections belong to others)."""
    text = doc.read_text()
    match = re.search(rf"^## {re.escape(heading)}[^\n]*\n", text, flags=re.M)
    if not match:
        raise SystemExit(f"no '## {heading}' heading in {doc}")
    start = match.end()
    following = re.search(r"^##+ ", text[start:], flags=re.M)  # keeps later subsections (### ...)
    end = start + following.start() if following else len(text)
    doc.write_text(text[:start] + "\n" + body.rstrip() + "\n\n" + text[end:].lstrip("\n"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--alias", help=f"index alias to search if it exists (else {FALLBACK_ALIAS})")
    parser.add_argument("--model", type=Path, default=None, help="model package (default: the live tests' one)")
    parser.add_argument("--qps", type=float, default=20.0)
    parser.add_argument("--image-qps", type=float, default=4.0,
                        help="rate for the photo scenario (one image encode costs ~0.1-0.2 CPU-s here)")
    parser.add_argument("--requests", type=int, default=120, help="per scenario and phase")
    parser.add_argument("--workers", type=int, default=32, help="load-generator threads (max in flight)")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="repeat everything; figures are medians over runs")
    parser.add_argument("--gunicorn", type=int, default=0, metavar="WORKERS",
                        help="serve with `mmsearch serve --workers N` in its own process instead of in-process")
    parser.add_argument("--no-proxy", action="store_true",
                        help=f"no proxy stream in {PROXY_SCENARIO} (its other streams then a third of a period apart)")
    parser.add_argument("--out", type=Path, help="write the raw results as JSON")
    parser.add_argument("--write-doc", action="store_true", help="fill the Query latency section of docs/benchmarks.md")
    parser.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                        help="only write the docs section from earlier --out files (one block per file)")
    args = parser.parse_args()
    if args.render:
        summaries = [json.loads(path.read_text()) for path in args.render]
        write_doc_section(PROJECT_ROOT / "docs" / "benchmarks.md", "\n\n".join(render(s) for s in summaries))
        return
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log on stdout
    logging.getLogger("mmsearch").setLevel(logging.WARNING)
    args.model = args.model or default_model()

    catalog = default_catalog_dir()
    if catalog is None:
        raise SystemExit("shared catalog not found; set MMSEARCH_CATALOG_DIR")
    dev = [json.loads(line)["query"] for line in (catalog / "dev_queries.jsonl").open() if line.strip()]
    es_url = os.environ.get("ES_URL", "http://127.0.0.1:9200")
    probe = Settings.load(es_hosts=es_url).es_client()
    alias = args.alias if args.alias and probe.indices.exists_alias(name=args.alias) else FALLBACK_ALIAS
    if args.alias and alias != args.alias:
        print(f"alias {args.alias!r} does not exist; using {FALLBACK_ALIAS!r}", flush=True)
    # Unthrottled: the load comes from one address, which the per-client rate limit would answer with 429s.
    settings = Settings.load(es_hosts=es_url, products_alias=alias, request_timeout_s=60, rate_limit="off")
    es = settings.es_client()
    docs = int(es.count(index=alias)["count"])
    with_image_vector = int(es.count(index=alias, query={"exists": {"field": "image_vector"}})["count"])
    photos = [base64.b64encode(p).decode() for p in catalog_photos(es, alias, catalog, 20)]
    raw_photos = [base64.b64decode(p) for p in photos]

    # The raw phase encodes with the settings a serving worker uses, so "encode" means the same on both sides.
    encoder = Encoder.load(args.model, **serving_runtime_options(os.environ))
    options = EngineOptions()
    # The engine reads ids from doc values when the index declares _meta.doc_id_field; so does the raw phase.
    from query_service.engine import SearchEngine

    probe_engine = SearchEngine(es, None, settings, options=options)
    id_field, id_fields = probe_engine.doc_id_field(), probe_engine.declared_id_fields
    from mmsearch.capabilities import detect_capabilities

    if args.gunicorn:
        # A separate process, as in production: the load generator's threads then do not share the
        # service's GIL, which the in-process server makes them do.
        base_url, service = serve_gunicorn(es_url, alias, args.model, args.gunicorn)
        server = SimpleNamespace(shutdown=service.terminate)
        url = f"{base_url}/search"
    else:
        app = create_app(settings, es=es, encoder=encoder, capabilities=detect_capabilities(es),
                         engine_options=options)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/search"
    # urllib3 for the service calls: the same HTTP stack the Elasticsearch client uses for the
    # raw phase, so client-side cost is alike on both sides (requests adds ~0.5-1 ms per call).
    http = urllib3.PoolManager(maxsize=args.workers, headers={"Content-Type": "application/json"})

    load_before = os.getloadavg()
    code_before = code_state()
    started = dt.datetime.now(dt.timezone.utc)
    runs: list[dict[str, dict[str, Any]]] = []
    proxy_runs: list[dict[str, Any]] = []
    proxy_url = url[: -len("/search")] + f"/{alias}/_search"
    for run in range(args.runs):
        results: dict[str, dict[str, Any]] = {}
        runs.append(results)
        print(f"run {run + 1}/{args.runs}", flush=True)
        for name, (legs, with_image) in SCENARIOS.items():
            ranking = {"name": name, "legs": legs, "method": "rrf", "depth": args.depth,
                       "num_candidates": max(200, args.depth)}
            config = RankingConfig.from_dict(ranking)

            def service_call(i: int) -> dict[str, Any]:
                body: dict[str, Any] = {"text": dev[i % len(dev)], "size": 10, "explain": False, "ranking": ranking}
                if with_image:
                    body["image_base64"] = photos[i % len(photos)]
                start = time.perf_counter()
                # orjson both ways: the JSON library of the raw phase's Elasticsearch client
                # (mmsearch/serializers.py), so the client's JSON costs alike on both sides.
                try:
                    response = http.request("POST", url, body=orjson.dumps(body), timeout=60.0)
                except urllib3.exceptions.HTTPError as exc:
                    # Counted, not fatal: past what the host can serve, a kept-alive connection
                    # can be reset under the client (seen at 100/s per stream on 2 vCPUs).
                    return {"ms": (time.perf_counter() - start) * 1000, "status": 0, "took": {},
                            "degraded": [f"{type(exc).__name__}: {exc}"[:200]]}
                payload = orjson.loads(response.data)
                elapsed = (time.perf_counter() - start) * 1000
                return {"ms": elapsed, "status": response.status, "took": payload.get("took_ms", {}),
                        "degraded": payload.get("degraded", [payload.get("message")])}

            def raw_call(i: int) -> dict[str, float]:
                text = dev[i % len(dev)]
                start = time.perf_counter()
                vectors: dict[str, np.ndarray] = {}
                if any(LEGS[leg][1] and LEGS[leg][0] == "text" for leg in legs):
                    vectors["text"] = encoder.encode_texts([text])[0]
                if with_image:
                    vectors["image"] = encoder.encode_images([raw_photos[i % len(raw_photos)]])[0]
                encode_ms = (time.perf_counter() - start) * 1000
                bodies = []
                for leg in legs:
                    modality, field = LEGS[leg]
                    bodies.append(queries.bm25_body(text, config, {}, timeout_ms=options.leg_timeout_ms) if field is None
                                  else queries.knn_body(field, vectors[modality], config, {},
                                                        timeout_ms=options.leg_timeout_ms))
                lean = probe_engine.lean_for(len(bodies))
                if lean:  # exactly what the engine sends: ids-only legs (doc-value ids if declared), then the page
                    bodies = [queries.ids_only(body, id_field=id_field) for body in bodies]
                start = time.perf_counter()
                response = es.msearch(searches=queries.msearch_payload(alias, bodies))
                assert all("error" not in r for r in response["responses"]), response["responses"]
                if lean:
                    first = response["responses"][0]
                    parsed = (queries.parse_id_field_leg(first, id_fields, id_field, keep_field=False)
                              if id_field is not None else queries.parse_leg_response(first))
                    assert parsed is not None
                    page = [doc_id for doc_id, _ in parsed[0][:10]]
                    es.search(index=alias, **queries.page_sources_body(page))
                es_ms = (time.perf_counter() - start) * 1000
                return {"encode_ms": encode_ms, "es_ms": es_ms}

            def proxy_call(i: int, legs: dict[str, float] = legs) -> dict[str, Any]:
                """The same query as an app sends it to the proxy, the same legs (X-Hybrid-Options)."""
                body, header = proxy_request(dev[i % len(dev)], legs, args.depth)
                start = time.perf_counter()
                try:
                    response = http.request("POST", proxy_url, body=orjson.dumps(body), timeout=60.0,
                                            headers={"Content-Type": "application/json", "X-Hybrid-Options": header})
                except urllib3.exceptions.HTTPError as exc:
                    return {"ms": (time.perf_counter() - start) * 1000, "status": 0, "legs": None, "hits": 0,
                            "degraded": [], "request": body, "header": header,
                            "response": f"{type(exc).__name__}: {exc}"[:500]}
                elapsed = (time.perf_counter() - start) * 1000
                try:
                    payload = orjson.loads(response.data)
                except orjson.JSONDecodeError:
                    payload = {"unparsed": response.data[:500].decode(errors="replace")}
                hybrid = payload.get("_hybrid") or {}
                hits = (payload.get("hits") or {}).get("hits") or []
                out = {"ms": elapsed, "status": response.status, "legs": hybrid.get("legs"), "hits": len(hits),
                       "degraded": hybrid.get("degraded") or []}
                if response.status != 200 or out["legs"] != sorted(legs) or len(hits) != 10:
                    # kept for the report: what was sent and what came back (sources left out)
                    shown = {k: v for k, v in payload.items() if k != "hits"}
                    shown["hits"] = {"count": len(hits), "ids": [h.get("_id") for h in hits]}
                    out.update(request=body, header=header, response=shown)
                return out

            proxying = name == PROXY_SCENARIO and not args.no_proxy
            for i in range(5):  # warm-up: model sessions, connections, ES caches for this scenario
                service_call(i)
                raw_call(i)
                if proxying:
                    proxy_call(i)
            qps = args.image_qps if with_image else args.qps
            def floor_call(i: int) -> float:
                """GET /healthz: the HTTP stack alone (gunicorn or werkzeug, Flask, this client), same rate."""
                start = time.perf_counter()
                http.request("GET", url.replace("/search", "/healthz"), timeout=60.0)
                return (time.perf_counter() - start) * 1000

            calls: tuple[Any, ...] = (service_call, raw_call, floor_call) + ((proxy_call,) if proxying else ())
            streams, peak = open_loop(args.requests, qps, calls, args.workers)
            samples, raw, floor = streams[:3]
            ok = [s for s in samples if s["status"] == 200]
            total = [s["ms"] for s in ok]
            in_process = [s["ms"] - s["took"].get("encode", 0.0) - s["took"].get("es", 0.0) for s in ok]
            without_encode = [s["ms"] - s["took"].get("encode", 0.0) for s in ok]
            # took_ms.total is SearchEngine.search from start to end; the rest is HTTP, Flask, validation, JSON.
            outside_engine = [s["ms"] - s["took"]["total"] for s in ok if "total" in s["took"]]
            engine_own = [s["took"]["total"] - s["took"].get("encode", 0.0) - s["took"].get("es", 0.0)
                          for s in ok if "total" in s["took"]]
            encode = [r["encode_ms"] for r in raw]
            raw_es = [r["es_ms"] for r in raw]
            results[name] = {
                "requests": len(samples), "non_200": len(samples) - len(ok),
                "degraded": sum(bool(s["degraded"]) for s in ok),
                "qps": qps, "peak_in_flight": peak,
                "p50_ms": pct(total, 50), "p95_ms": pct(total, 95), "p99_ms": pct(total, 99),
                "encode_p50_ms": pct(encode, 50), "raw_es_p50_ms": pct(raw_es, 50), "raw_es_p95_ms": pct(raw_es, 95),
                "raw_es_p99_ms": pct(raw_es, 99),
                "overhead_excl_encode_p50_ms": pct(total, 50) - pct(encode, 50) - pct(raw_es, 50),
                # Encoding is excluded by subtracting the encode time the service itself measured, not the
                # raw phase's: the same ONNX call costs differently in the gunicorn worker and in this process.
                "overhead_excl_service_encode_p50_ms": pct(without_encode, 50) - pct(raw_es, 50),
                "in_service_overhead_p50_ms": statistics.median(in_process) if in_process else float("nan"),
                "engine_own_work_p50_ms": pct(engine_own, 50), "outside_engine_p50_ms": pct(outside_engine, 50),
                "healthz_p50_ms": pct(floor, 50),
                "service_encode_p50_ms": statistics.median(s["took"].get("encode", 0.0) for s in ok) if ok else None,
                "service_es_p50_ms": statistics.median(s["took"].get("es", 0.0) for s in ok) if ok else None,
            }
            print(name, json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in results[name].items()}),
                  flush=True)
            if proxying:
                proxied = streams[3]
                answered = [s for s in proxied if s["status"] == 200]
                proxy_ms = [s["ms"] for s in answered]
                failed = [s for s in proxied if "response" in s]
                proxy_runs.append({
                    "scenario": name, "qps": qps, "requests": len(proxied), "non_200": len(proxied) - len(answered),
                    "wrong_legs": sum(s["legs"] != sorted(legs) for s in answered),
                    "not_10_hits": sum(s["hits"] != 10 for s in answered),
                    "degraded": sum(bool(s["degraded"]) for s in answered), "failures": len(failed),
                    "p50_ms": pct(proxy_ms, 50), "p95_ms": pct(proxy_ms, 95), "p99_ms": pct(proxy_ms, 99),
                    "search_p50_ms": pct(total, 50), "search_p95_ms": pct(total, 95), "search_p99_ms": pct(total, 99),
                    "proxy_vs_search_p50": pct(proxy_ms, 50) / pct(total, 50),
                    "failure_examples": failed[:3],
                })
                print("proxy", json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                           for k, v in proxy_runs[-1].items() if k != "failure_examples"}),
                      flush=True)
                for example in failed[:3]:
                    print("proxy failure", json.dumps(example, default=str)[:2000], flush=True)
    results = {name: {key: (statistics.median(r[name][key] for r in runs)
                            if isinstance(runs[0][name][key], (int, float)) else runs[0][name][key])
                      for key in runs[0][name]} for name in SCENARIOS}
    server.shutdown()
    load_after = os.getloadavg()

    slowest = max(SINGLE_LEGS_OF_HYBRID_TEXT, key=lambda n: results[n]["p50_ms"])
    slowest_raw = max(SINGLE_LEGS_OF_HYBRID_TEXT, key=lambda n: results[n]["raw_es_p50_ms"])
    model_arg = args.model.relative_to(PROJECT_ROOT) if args.model.is_relative_to(PROJECT_ROOT) else args.model
    command = f"ES_URL={es_url} python benchmarks/latency.py --model {model_arg}" + \
        (f" --alias {args.alias}" if args.alias else "") + \
        f" --qps {args.qps:g} --image-qps {args.image_qps:g} --requests {args.requests} --runs {args.runs}" + \
        (f" --gunicorn {args.gunicorn}" if args.gunicorn else "") + (" --no-proxy" if args.no_proxy else "")
    summary = {
        "command": command, "started": started.isoformat(timespec="seconds"), "alias": alias, "index_docs": docs,
        "code_at_start": code_before, "code_at_end": code_state(),
        "gunicorn": args.gunicorn, "lean_legs": options.lean_legs, "interleaved": True, "doc_value_ids": id_field,
        "client_json": "orjson", "ort": serving_runtime_options(os.environ),
        "model": f"{encoder.name} {encoder.manifest.get('version', '')} ({encoder.identity[:12]})",
        "docs_with_image_vector": with_image_vector, "cpus": os.cpu_count(),
        "load_avg_before": load_before, "load_avg_after": load_after, "qps": args.qps, "image_qps": args.image_qps,
        "requests_per_phase": args.requests, "workers": args.workers, "depth": args.depth,
        "hybrid_text_vs_slowest_single_leg": results["hybrid-text"]["p50_ms"] / results[slowest]["p50_ms"],
        "slowest_single_leg": slowest,
        "hybrid_text_vs_slowest_single_leg_raw_es": results["hybrid-text"]["raw_es_p50_ms"]
        / results[slowest_raw]["raw_es_p50_ms"],
        "slowest_single_leg_raw_es": slowest_raw,
        "scenarios": results, "runs": args.runs, "per_run": runs,
        "per_run_hybrid_text_vs_slowest_single_leg": [
            r["hybrid-text"]["p50_ms"] / max(r[n]["p50_ms"] for n in SINGLE_LEGS_OF_HYBRID_TEXT) for r in runs],
    }
    if proxy_runs:
        example_body, header = proxy_request("<dev query>", SCENARIOS[PROXY_SCENARIO][0], args.depth)
        medians = {key: statistics.median(r[key] for r in proxy_runs)
                   for key in ("p50_ms", "p95_ms", "p99_ms", "search_p50_ms", "search_p95_ms", "search_p99_ms")}
        summary["proxy"] = {
            "scenario": PROXY_SCENARIO, "path": f"POST /{alias}/_search", "body": example_body, "header": header,
            "expected_legs": sorted(SCENARIOS[PROXY_SCENARIO][0]), **medians,
            "proxy_vs_search_p50": medians["p50_ms"] / medians["search_p50_ms"],
            "per_run_proxy_vs_search_p50": [r["proxy_vs_search_p50"] for r in proxy_runs],
            **{f"{key}_total": sum(r[key] for r in proxy_runs)
               for key in ("requests", "non_200", "wrong_legs", "not_10_hits", "degraded", "failures")},
            "per_run": proxy_runs,
        }
    print(json.dumps({k: v for k, v in summary.items() if k not in ("scenarios", "proxy")}), flush=True)
    if "proxy" in summary:
        print(json.dumps({k: v for k, v in summary["proxy"].items() if k != "per_run"}), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
    if args.write_doc:
        write_doc_section(PROJECT_ROOT / "docs" / "benchmarks.md", render(summary))


def render(summary: dict[str, Any]) -> str:
    def f(value: float) -> str:
        return f"{value:.1f}"

    def split(r: dict[str, Any]) -> str:
        if "engine_own_work_p50_ms" not in r:
            return ""
        return f" ({r['engine_own_work_p50_ms']:.2f} / {r['outside_engine_p50_ms']:.2f})"

    command = summary["command"]
    la, lb = summary["load_avg_before"], summary["load_avg_after"]
    lines = [
        f"Command: `{command}` (run started {summary['started']}; `--out FILE` keeps the raw figures, "
        "`--write-doc` writes this section, `--render A.json B.json` rewrites it from saved runs).",
        "",
        f"Conditions: {summary['cpus']} vCPUs (load average "
        f"{la[0]:.1f} before, {lb[0]:.1f} after the run); Elasticsearch 9.2 integ-test distribution, single "
        f"node on the same host; index `{summary['alias']}` ({summary['index_docs']:,} products, "
        f"{summary['docs_with_image_vector']:,} with `image_vector`, int8_hnsw, dim 256); model "
        f"`{summary.get('model', '?')}` "
        + ("(onnxruntime CPU, default threads, spinning off in the workers and the raw phase: "
           "`query_service.wsgi.serving_runtime_options`). "
           # runs that recorded doc_value_ids came after the serving options existed
           if (summary.get("ort") or {}).get("allow_spinning") is False or "doc_value_ids" in summary
           else "(onnxruntime CPU, default threads). ")
        + (f"The service runs as `mmsearch serve --workers {summary['gunicorn']}` (gunicorn) in its own process; "
           if summary.get("gunicorn") else
           "The service runs under werkzeug's threaded `make_server` in a thread of the benchmark process "
           "(no gunicorn); ")
        + ("the open-loop generator (urllib3 and orjson, the HTTP stack and JSON library of the Elasticsearch client "
           "used for the raw phase) fires " if summary.get("client_json") == "orjson" else
           "the open-loop generator (urllib3, the HTTP stack of the Elasticsearch client used for the raw phase; "
           "the standard library's json for the service's bodies) fires ")
        + f"{summary['qps']:g} requests/s ({summary['image_qps']:g}/s for the photo scenario: one image encode "
        f"costs 0.1–0.2 CPU-s here, so 20/s would exceed the 2 CPUs), {summary['requests_per_phase']} per "
        "scenario and phase, up to "
        f"{summary['workers']} in flight; dev queries from `dev_queries.jsonl`, photos of indexed products; "
        f"`size` 10, `depth` {summary['depth']}, `num_candidates` {max(200, summary['depth'])}, RRF, no filters. "
        + ("With two or more legs, legs are ids-only (`queries.ids_only`) and the page's `_source` is fetched "
           "after fusion" + (f" (ids from the `{summary['doc_value_ids']}` doc values: the index declares "
                             "`_meta.doc_id_field`)" if summary.get("doc_value_ids") else "")
           + "; raw phase: encoder alone, then one client `_msearch` with the same bodies followed by "
           "the same page fetch, "
           if summary.get("lean_legs") else
           "Raw phase: encoder alone, then one client `_msearch` with the same bodies (`query_service.queries`), ")
        + ("same rate, interleaved with the service requests (offset by a third of a period, so load drift hits both "
           "alike; `/healthz` a third stream). " if summary.get("interleaved") else "same rate, run after the service phase. ")
        + f"{summary['runs']} runs back to back; every figure is the median over runs of the per-run "
        "figure." + (" The load average exceeded 1.5 (other jobs on the host), so treat tails as indicative."
                     if max(la[0], lb[0]) > 1.5 else ""),
        "",
        "| scenario | QPS | service p50 | p95 | p99 | encode p50 | raw ES p50 | raw ES p95 | overhead excl. encode "
        "(p50 − encode − raw ES) | overhead excl. the service's own encode | in-service overhead p50 "
        "(engine's own work / HTTP + Flask) | `/healthz` p50 "
        "| peak in flight | non-200 / degraded |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in summary["scenarios"].items():
        lines.append(f"| {name} | {r['qps']:g} | {f(r['p50_ms'])} | {f(r['p95_ms'])} | {f(r['p99_ms'])} | {f(r['encode_p50_ms'])} | "
                     f"{f(r['raw_es_p50_ms'])} | {f(r['raw_es_p95_ms'])} | {f(r['overhead_excl_encode_p50_ms'])} | "
                     f"{f(r['overhead_excl_service_encode_p50_ms']) if 'overhead_excl_service_encode_p50_ms' in r else '–'} | "
                     f"{f(r['in_service_overhead_p50_ms'])}{split(r)} | "
                     f"{f(r['healthz_p50_ms']) if 'healthz_p50_ms' in r else '–'} | {r['peak_in_flight']} | "
                     f"{r['non_200']} / {r['degraded']} |")
    lines += [
        "",
        "All times in ms. *Overhead excl. the service's own encode* is p50(client latency − the service's "
        "`took_ms.encode`) − p50(raw ES): encoding excluded as the service measured it, because the same ONNX call "
        "costs differently in a gunicorn worker than in the benchmark process. *In-service overhead* is, per request, "
        "client latency minus the service's own `took_ms.encode` and `took_ms.es` (HTTP, validation, fusion, JSON), "
        "median; in brackets, its two parts: the engine's own work (`took_ms.total − encode − es`: leg bodies, "
        "parsing, fusion, facets) and everything outside the engine (client latency − `took_ms.total`: the HTTP "
        "server, Flask, validation, JSON, this client). `/healthz` p50 is a third stream at the same rate, "
        "interleaved with the other two: the HTTP stack with no work behind it.",
        "",
        f"Hybrid text (3 legs) vs its slowest single leg (`{summary['slowest_single_leg']}`), service p50: "
        f"**{summary['hybrid_text_vs_slowest_single_leg']:.2f}×** (target ≤ 1.1×); raw ES only "
        f"(vs `{summary['slowest_single_leg_raw_es']}`): {summary['hybrid_text_vs_slowest_single_leg_raw_es']:.2f}×. "
        "Per run (service p50): " + ", ".join(f"{x:.2f}×" for x in summary["per_run_hybrid_text_vs_slowest_single_leg"])
        + ".",
    ]
    if "proxy" in summary:
        lines += ["", render_proxy(summary)]
    return "\n".join(lines)


def render_proxy(summary: dict[str, Any]) -> str:
    """The proxy-vs-/search table of one run of the script (medians over its runs)."""
    p = summary["proxy"]
    rows = [("`/search`", "search_"), ("proxy", "")]
    lines = [
        f"Proxy vs `/search`, scenario `{p['scenario']}` (legs {', '.join(p['expected_legs'])}), a fourth stream in "
        f"the same schedule: `{p['path']}` with `{json.dumps(p['body'])}` and `X-Hybrid-Options: {p['header']}`.",
        "",
        "| path | p50 | p95 | p99 |",
        "|---|---|---|---|",
    ]
    lines += [f"| {label} | {p[prefix + 'p50_ms']:.1f} | {p[prefix + 'p95_ms']:.1f} | {p[prefix + 'p99_ms']:.1f} |"
              for label, prefix in rows]
    lines += [
        "",
        f"p50(proxy) / p50(`/search`): **{p['proxy_vs_search_p50']:.2f}×**; per run: "
        + ", ".join(f"{x:.2f}×" for x in p["per_run_proxy_vs_search_p50"]) + ". "
        f"Proxied answers checked: {p['requests_total']} over {len(p['per_run'])} runs, {p['non_200_total']} not 200, "
        f"{p['wrong_legs_total']} with `_hybrid.legs` ≠ `{json.dumps(p['expected_legs'])}`, {p['not_10_hits_total']} without "
        f"10 hits, {p['degraded_total']} degraded.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

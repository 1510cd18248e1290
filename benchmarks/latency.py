"""Query latency at a fixed request rate: the service vs raw Elasticsearch for the same legs.

The service runs in this process behind werkzeug's threaded server on a free port (one
process, so the numbers exclude gunicorn's fork but include real HTTP). An open-loop
generator fires requests at ``--qps`` from a pool of threads, taking queries from the dev
set. For every scenario the same query bodies are then sent straight to Elasticsearch
(``_msearch`` of the same legs, client round trip), and the encoder is timed alone, so

    service overhead = service latency - encode - raw ES     (per-request medians)

    ES_URL=http://127.0.0.1:9200 python benchmarks/latency.py --alias relevance-products --model DIR
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from werkzeug.serving import make_server

from mmsearch.capabilities import detect_capabilities
from mmsearch.config import Settings, default_catalog_dir
from onnx_models.runtime import Encoder
from query_service import queries
from query_service.app import create_app
from query_service.ranking import LEGS, RankingConfig

SCENARIOS = {
    "bm25": {"legs": {"bm25": 1.0}},
    "knn-text": {"legs": {"text_text": 1.0}},
    "hybrid-text": {"legs": {"bm25": 1.0, "text_text": 1.0, "text_image": 1.0}},
    "hybrid-text+image": {"legs": {"bm25": 1.0, "text_text": 1.0, "text_image": 1.0, "image_image": 1.0,
                                   "image_text": 1.0}},
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alias", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--qps", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=200, help="per scenario")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    catalog = default_catalog_dir()
    dev = [json.loads(line)["query"] for line in (catalog / "dev_queries.jsonl").open()]
    photo = (catalog / "images" / sorted(os.listdir(catalog / "images"))[0]).read_bytes()
    settings = Settings.load(products_alias=args.alias)
    es = settings.es_client()
    encoder = Encoder.load(args.model)
    app = create_app(settings, es=es, encoder=encoder, capabilities=detect_capabilities(es))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/search"
    session = requests.Session()
    results = {}
    for name, ranking in SCENARIOS.items():
        ranking = {**ranking, "depth": args.depth, "num_candidates": max(200, args.depth)}
        config = RankingConfig.from_dict(ranking)
        with_image = "image_image" in ranking["legs"]
        files = {"image": ("q.jpg", photo)} if with_image else None

        def one(i: int) -> dict:
            text = dev[i % len(dev)]
            start = time.perf_counter()
            if with_image:
                body = session.post(url, files=files, data={"text": text, "size": "10"}).json()
            else:
                body = session.post(url, json={"text": text, "size": 10, "explain": False,
                                               "ranking": ranking}).json()
            return {"total_ms": (time.perf_counter() - start) * 1000, "took": body["took_ms"],
                    "degraded": body["degraded"]}

        # warm-up
        for i in range(5):
            one(i)
        pool = ThreadPoolExecutor(max_workers=16)
        futures = []
        begin = time.perf_counter()
        for i in range(args.requests):  # open loop: send on schedule whatever the latency
            delay = begin + i / args.qps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, i))
        samples = [f.result() for f in futures]
        pool.shutdown()

        # raw Elasticsearch for the same legs and the encoder alone, sequentially
        raw_es, encode = [], []
        for i in range(args.requests // 2):
            text = dev[i % len(dev)]
            start = time.perf_counter()
            vectors = {"text": encoder.encode_texts([text])[0]}
            if with_image:
                vectors["image"] = encoder.encode_images([photo])[0]
            encode.append((time.perf_counter() - start) * 1000)
            bodies = []
            for leg in config.legs:
                modality, field = LEGS[leg]
                bodies.append(queries.bm25_body(text, config, {}) if field is None
                              else queries.knn_body(field, vectors[modality], config, {}))
            start = time.perf_counter()
            es.msearch(searches=queries.msearch_payload(args.alias, bodies))
            raw_es.append((time.perf_counter() - start) * 1000)
        total = [s["total_ms"] for s in samples]
        stage_encode = [s["took"]["encode"] for s in samples]
        stage_es = [s["took"]["es"] for s in samples]
        overhead = [s["total_ms"] - s["took"]["encode"] - s["took"]["es"] for s in samples]
        results[name] = {
            "requests": len(samples), "degraded": sum(bool(s["degraded"]) for s in samples),
            "p50_ms": pct(total, 50), "p95_ms": pct(total, 95), "p99_ms": pct(total, 99),
            "service_encode_p50_ms": statistics.median(stage_encode), "service_es_p50_ms": statistics.median(stage_es),
            "raw_es_p50_ms": statistics.median(raw_es), "raw_es_p95_ms": pct(raw_es, 95),
            "encode_alone_p50_ms": statistics.median(encode),
            "overhead_excl_encode_p50_ms": statistics.median(total) - statistics.median(encode)
            - statistics.median(raw_es),
            "in_process_overhead_p50_ms": statistics.median(overhead),
        }
        print(name, json.dumps(results[name]), flush=True)
    slowest_single = max(results["bm25"]["p50_ms"], results["knn-text"]["p50_ms"])
    summary = {"scenarios": results, "qps": args.qps, "depth": args.depth, "cpus": os.cpu_count(),
               "load_avg": os.getloadavg(), "index_docs": es.count(index=args.alias)["count"],
               "hybrid_text_vs_slowest_single_leg_p50": results["hybrid-text"]["p50_ms"] / slowest_single}
    print(json.dumps({k: v for k, v in summary.items() if k != "scenarios"}))
    server.shutdown()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

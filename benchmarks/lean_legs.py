"""Ids-only legs + one page fetch vs legs that return ``_source``: raw Elasticsearch time, one run.

The engine's legs fetch ``depth`` hits each but a page shows ``size``. This measures,
against the same index and queries, the client round-trip time of

* ``full``: one ``_msearch`` whose legs return ``_source`` (product fields) for every hit;
* ``lean``: one ``_msearch`` of ids-only legs (``queries.ids_only``), then the
  ``queries.page_sources_body`` request for the top ``size`` ids,

for a single BM25 leg, a single kNN leg and the three text legs together. The two
variants alternate query by query (so load changes hit both alike); figures are medians
over ``--repeats`` passes of the per-pass median.

    ES_URL=http://127.0.0.1:9201 python benchmarks/lean_legs.py --model .state/models/dev \
        --alias relevance-products [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from mmsearch.config import Settings, default_catalog_dir
from onnx_models.runtime import Encoder
from query_service import queries
from query_service.ranking import RankingConfig

SCENARIOS = {"bm25": ("bm25",), "knn-text_text": ("text_vector",), "hybrid-text": ("bm25", "text_vector", "image_vector")}


def leg_bodies(text: str, vector: Any, legs: tuple[str, ...], ranking: RankingConfig) -> list[dict[str, Any]]:
    return [queries.bm25_body(text, ranking, {}) if leg == "bm25" else queries.knn_body(leg, vector, ranking, {})
            for leg in legs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--queries", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    catalog = default_catalog_dir()
    if catalog is None:
        raise SystemExit("shared catalog not found; set MMSEARCH_CATALOG_DIR")
    es_url = os.environ.get("ES_URL", "http://127.0.0.1:9200")
    es = Settings.load(es_hosts=es_url, request_timeout_s=60).es_client()
    texts = [json.loads(line)["query"] for line in (catalog / "dev_queries.jsonl").open() if line.strip()]
    texts = texts[:args.queries]
    vectors = Encoder.load(args.model).encode_texts(texts)
    ranking = RankingConfig()

    def full(text: str, vector: Any, legs: tuple[str, ...]) -> float:
        start = time.perf_counter()
        es.msearch(searches=queries.msearch_payload(args.alias, leg_bodies(text, vector, legs, ranking)))
        return (time.perf_counter() - start) * 1000

    def lean(text: str, vector: Any, legs: tuple[str, ...]) -> float:
        bodies = [queries.ids_only(body) for body in leg_bodies(text, vector, legs, ranking)]
        start = time.perf_counter()
        response = es.msearch(searches=queries.msearch_payload(args.alias, bodies))
        page = [doc_id for doc_id, _ in queries.parse_leg_response(response["responses"][0])[0][:args.size]]
        es.search(index=args.alias, **queries.page_sources_body(page))
        return (time.perf_counter() - start) * 1000

    load_before = os.getloadavg()
    passes: dict[str, dict[str, list[float]]] = {name: {"full": [], "lean": []} for name in SCENARIOS}
    for text, vector in zip(texts[:5], vectors[:5]):  # warm-up
        for legs in SCENARIOS.values():
            full(text, vector, legs)
            lean(text, vector, legs)
    for _ in range(args.repeats):
        for name, legs in SCENARIOS.items():
            samples: dict[str, list[float]] = {"full": [], "lean": []}
            for i, (text, vector) in enumerate(zip(texts, vectors)):
                order = (("full", full), ("lean", lean)) if i % 2 else (("lean", lean), ("full", full))
                for variant, call in order:
                    samples[variant].append(call(text, vector, legs))
            for variant, values in samples.items():
                passes[name][variant].append(statistics.median(values))
    result = {"alias": args.alias, "docs": int(es.count(index=args.alias)["count"]), "queries": len(texts),
              "repeats": args.repeats, "depth": ranking.depth, "size": args.size, "cpus": os.cpu_count(),
              "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
              "scenarios": {name: {variant: round(statistics.median(values), 2) for variant, values in v.items()}
                            for name, v in passes.items()}}
    for name, row in result["scenarios"].items():
        row["lean_vs_full"] = round(row["lean"] / row["full"], 3)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

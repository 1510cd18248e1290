"""What query understanding costs a hybrid query: the same queries with it on and off, interleaved.

Each round sends every query of a shopper set through ``SearchEngine.search`` (the service's
path, without HTTP, which both arms would pay alike) twice, once per arm, in alternating order
(ABAB, then BABA: neither arm always runs warm). Per run: each arm's p50 and p95 over all its
requests, and the p50 difference; over runs: the median of those. The parse itself is pure
Python; the rest of the cost is Elasticsearch's (the boosted BM25 query, the pre-filtered kNN
legs, the empty-leg retries) and the attribute leg in fusion.

    ES_URL=... MMSEARCH_ALIAS=relevance-products MMSEARCH_MODEL_DIR=<package> \\
    python benchmarks/understanding_cost.py --queries docs/relevance/shopper/test.jsonl --runs 3 \\
        --out docs/relevance/understanding_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.config import Settings
from onnx_models.runtime import Encoder
from query_service.engine import EngineOptions, SearchEngine
from query_service.ranking import RankingConfig, SearchRequest
from query_service.wsgi import serving_runtime_options

ARMS = {"understanding on": RankingConfig(), "understanding off": RankingConfig().with_overrides(
    {"understanding": False})}


def one_run(engine: SearchEngine, texts: list[str], rounds: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    names = list(ARMS)
    for round_no in range(rounds):
        for i, text in enumerate(texts):
            order = names if (i + round_no) % 2 == 0 else names[::-1]
            for arm in order:
                start = time.perf_counter()
                engine.search(SearchRequest(text=text, size=10, explain=False), ARMS[arm])
                times[arm].append((time.perf_counter() - start) * 1000)
    out = arm_figures(times)
    out["p50 on - off (ms)"] = out["understanding on"]["p50_ms"] - out["understanding off"]["p50_ms"]
    return out


def arm_figures(times: dict[str, list[float]]) -> dict[str, Any]:
    """Each arm's p50, p95 and request count (benchmarks/lexical_ahead.py uses it too)."""
    return {arm: {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)), "requests": len(v)}
            for arm, v in times.items()}


def interleaved_arguments(description: str) -> argparse.ArgumentParser:
    """The options of an interleaved A/B over a query set (benchmarks/lexical_ahead.py uses them too)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--queries", type=Path, required=True, help="JSONL with a 'query' per line")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the queries per run")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main() -> None:
    parser = interleaved_arguments(__doc__.split("\n")[0])
    parser.add_argument("--lexical-ahead", choices=("on", "off"), default="on",
                        help="EngineOptions.lexical_ahead for both arms (off: every leg after encoding, in one _msearch)")
    args = parser.parse_args()
    settings = Settings.load()
    encoder = Encoder.load(settings.model_dir, **serving_runtime_options(os.environ))
    engine = SearchEngine(settings.es_client(), encoder, settings,
                          options=EngineOptions(lexical_ahead=args.lexical_ahead == "on"))
    engine.warm_up()
    texts = [json.loads(line)["query"] for line in args.queries.read_text().splitlines() if line.strip()]
    for text in texts[:20]:  # warm the caches and the JIT of the cluster once, outside the runs
        for ranking in ARMS.values():
            engine.search(SearchRequest(text=text, size=10, explain=False), ranking)
    runs = []
    for run_no in range(args.runs):
        runs.append(one_run(engine, texts, args.rounds))
        print(run_no, json.dumps(runs[-1]), flush=True)
    report = {"queries": str(args.queries), "distinct_queries": len(texts), "rounds_per_run": args.rounds,
              "runs": runs, "median p50 on - off (ms)": statistics.median(r["p50 on - off (ms)"] for r in runs),
              "median p50 on (ms)": statistics.median(r["understanding on"]["p50_ms"] for r in runs),
              "median p50 off (ms)": statistics.median(r["understanding off"]["p50_ms"] for r in runs),
              "conditions": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "path": "SearchEngine.search in-process (no HTTP), one request at a time",
                             "index": settings.products_alias, "model": encoder.name,
                             "lexical_ahead": args.lexical_ahead}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))


if __name__ == "__main__":
    main()

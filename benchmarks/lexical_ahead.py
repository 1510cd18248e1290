"""What sending a text query's lexical leg while the text is encoded saves: the same queries with
``EngineOptions.lexical_ahead`` on and off, interleaved.

Two engines over one encoder and one client, identical but for the option, alternate query by query
(ABAB, then BABA) through ``SearchEngine.search`` (the service's path without HTTP), with the default
ranking (three text legs, understanding on). Per run: each arm's p50 and p95, and their ratio; over
runs, the medians. Both arms return the same ranking (checked on every query of the first pass).

    ES_URL=... MMSEARCH_ALIAS=products MMSEARCH_MODEL_DIR=<package> \\
    python benchmarks/lexical_ahead.py --queries docs/relevance/shopper/test.jsonl --runs 3 \\
        --out docs/relevance/lexical_ahead.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from understanding_cost import arm_figures, interleaved_arguments  # noqa: E402

from mmsearch.config import Settings  # noqa: E402
from onnx_models.runtime import Encoder  # noqa: E402
from query_service.engine import EngineOptions, SearchEngine  # noqa: E402
from query_service.ranking import RankingConfig, SearchRequest  # noqa: E402
from query_service.wsgi import serving_runtime_options  # noqa: E402


def one_run(engines: dict[str, SearchEngine], texts: list[str], rounds: int, check: bool) -> dict[str, Any]:
    times: dict[str, list[float]] = {arm: [] for arm in engines}
    names, ranking, differing = list(engines), RankingConfig(), 0
    for round_no in range(rounds):
        for i, text in enumerate(texts):
            ids = {}
            for arm in (names if (i + round_no) % 2 == 0 else names[::-1]):
                start = time.perf_counter()
                result = engines[arm].search(SearchRequest(text=text, size=10, explain=False), ranking)
                times[arm].append((time.perf_counter() - start) * 1000)
                ids[arm] = [hit["_id"] for hit in result["hits"]]
            differing += check and round_no == 0 and len({tuple(v) for v in ids.values()}) > 1
    out = arm_figures(times)
    out["p50 ratio ahead / together"] = out["ahead"]["p50_ms"] / out["together"]["p50_ms"]
    if check:
        out["queries whose top 10 differ"] = differing
    return out


def main() -> None:
    args = interleaved_arguments(__doc__.split("\n")[0]).parse_args()
    settings = Settings.load()
    encoder = Encoder.load(settings.model_dir, **serving_runtime_options(os.environ))
    client = settings.es_client()
    engines = {arm: SearchEngine(client, encoder, settings, options=EngineOptions(lexical_ahead=arm == "ahead"))
               for arm in ("ahead", "together")}
    for engine in engines.values():
        engine.warm_up()
    texts = [json.loads(line)["query"] for line in args.queries.read_text().splitlines() if line.strip()]
    for text in texts[:20]:  # warm the caches and the JIT of the cluster once, outside the runs
        for engine in engines.values():
            engine.search(SearchRequest(text=text, size=10, explain=False), RankingConfig())
    runs = []
    for run_no in range(args.runs):
        runs.append(one_run(engines, texts, args.rounds, check=run_no == 0))
        print(run_no, json.dumps(runs[-1]), flush=True)
    report = {"queries": str(args.queries), "distinct_queries": len(texts), "rounds_per_run": args.rounds,
              "runs": runs,
              "median p50 ahead (ms)": statistics.median(r["ahead"]["p50_ms"] for r in runs),
              "median p50 together (ms)": statistics.median(r["together"]["p50_ms"] for r in runs),
              "median p50 ratio ahead / together": statistics.median(r["p50 ratio ahead / together"] for r in runs),
              "conditions": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "path": "SearchEngine.search in-process (no HTTP), one request at a time, default ranking",
                             "index": settings.products_alias, "model": encoder.name}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}))


if __name__ == "__main__":
    main()

"""Composed photo + text queries ("in black", "for women"): precision of what the shopper asked for.

For each composed judgment (``mmsearch eval shopper-set`` writes the query sets,
``mmsearch eval judgments`` grades them), the photo and the modifier text go through
``SearchEngine.search`` (the service's path) under each setting:

- ``photo-only``: the photo alone (what the modifier would add is not asked);
- ``photo+text, plain``: photo and modifier with query understanding off (before issue 13);
- ``photo+text``: the default ranking (the words' attributes override the photo's; the photo
  names the type).

P@10 counts grade-2 products in the top 10 (same type, compatible gender, the asked colour);
NDCG@10 uses the grades. Medians are not needed: relevance figures are deterministic.

    ES_URL=... MMSEARCH_ALIAS=relevance-products MMSEARCH_MODEL_DIR=... \\
    python benchmarks/composed_queries.py --judgments .state/relevance/shopper_composed_test.jsonl \\
        --out docs/relevance/shopper/composed_test.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from indexer.catalog import catalog_or_default
from mmsearch.config import Settings
from onnx_models.runtime import Encoder
from query_service.engine import SearchEngine
from query_service.ranking import RankingConfig, SearchRequest
from query_service.relevance import metrics, stats
from query_service.relevance.judgments import read_jsonl

SETTINGS: dict[str, tuple[bool, dict[str, Any]]] = {
    "photo-only": (False, {}),
    "photo+text, plain": (True, {"understanding": False}),
    "photo+text": (True, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judgments", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, help="catalog directory or file (default: the shared catalog)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    location = catalog_or_default(args.catalog)
    settings = Settings.load()
    engine = SearchEngine(settings.es_client(), Encoder.load(settings.model_dir), settings)
    judgments = read_jsonl(args.judgments)
    report: dict[str, Any] = {"judgments": str(args.judgments), "queries": len(judgments), "settings": {}}
    for name, (with_text, overrides) in SETTINGS.items():
        ranking = RankingConfig().with_overrides(overrides)
        precision, ndcg = [], []
        for judgment in judgments:
            image = (location.root_dir / str(judgment.image)).read_bytes()
            result = engine.search(SearchRequest(text=judgment.query if with_text else None, image=image, size=10,
                                                 explain=False), ranking)
            ids = [hit["_id"] for hit in result["hits"]]
            precision.append(sum(judgment.grades.get(i, 0) == 2 for i in ids[:10]) / 10)
            ndcg.append(metrics.ndcg_at(ids, judgment.grades, 10))
        report["settings"][name] = {"p@10_grade2": statistics.mean(precision),
                                    "p@10_ci95": list(stats.bootstrap_ci(precision)),
                                    "ndcg@10": statistics.mean(ndcg), "ndcg@10_ci95": list(stats.bootstrap_ci(ndcg))}
        print(name, json.dumps(report["settings"][name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

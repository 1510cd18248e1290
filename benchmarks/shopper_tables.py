"""The docs/relevance.md "Shopper language" tables, from ``mmsearch eval run`` outputs (no search runs).

Per query class: every leg and fusion's NDCG@10 with its 95% CI, the best single leg of that
class, and the default ranking minus that leg with a paired randomisation test.

    python benchmarks/shopper_tables.py docs/relevance/shopper/results_test docs/relevance/shopper/test.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from query_service.relevance import stats

SINGLE_LEGS = ("bm25-plain", "text-knn-plain", "image-knn-plain", "bm25-understood", "text-knn-understood")
SHOWN = ("bm25-plain", "text-knn-plain", "image-knn-plain", "rrf-plain", "tuned-plain", "bm25-understood",
         "text-knn-understood", "default")
CANDIDATE = "default"


def cell(entry: dict) -> str:
    return f"{entry['mean']:.3f} [{entry['ci95'][0]:.2f}, {entry['ci95'][1]:.2f}]"


def main(results: Path, queries: Path) -> None:
    summary = json.loads((results / "summary.json").read_text())
    per_query = json.loads((results / "per_query.json").read_text())
    classes = {"all": {"queries": summary["queries"], "variants": {
        name: summary["variants"][name]["ndcg@10"] for name in summary["variants"]}}, **summary["by_class"]}
    members: dict[str, list[str]] = {"all": list(per_query[CANDIDATE])}
    judged = {item["qid"]: item.get("classes", []) for item in map(json.loads, queries.read_text().splitlines())}
    print("| class | queries | " + " | ".join(SHOWN) + " | best single leg | default − best leg (p) |")
    print("|---|---|" + "---|" * (len(SHOWN) + 2))
    for name, row in classes.items():
        variants = row["variants"]
        best = max(SINGLE_LEGS, key=lambda leg: variants[leg]["mean"])
        qids = members.get(name) or [q for q, cls in judged.items() if name in cls]
        if qids:
            a = [per_query[CANDIDATE][q]["ndcg@10"] for q in qids]
            b = [per_query[best][q]["ndcg@10"] for q in qids]
            delta = f"{sum(a) / len(a) - sum(b) / len(b):+.3f} (p={stats.paired_randomization(a, b):.4f})"
        else:
            delta = "n/a"
        print(f"| {name} | {row['queries']} | " + " | ".join(cell(variants[v]) for v in SHOWN)
              + f" | {best} | {delta} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

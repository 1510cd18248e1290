"""What the BM25 leg's id tie-break sort costs in Elasticsearch, on a large index.

The engine sends its BM25 leg sorted by ``[_score desc, <id doc values> asc]``
(``legs.with_tie_break``) so that tied products are cut at the leg's depth in the same order
on every shard layout, replica and merge. A sort other than plain relevance may keep Lucene from
skipping non-competitive blocks of documents (block-max WAND), so its cost grows with the number
of matching documents. This script measures it: for each query text, the leg's own body
(``queries.bm25_body``, with the index's client-side analysis when it has one) is sent twice,
with and without the sort, in alternating order, and ES's ``took`` and the client round trip are
recorded. Both arms see the same minute of the host's load.

    ES_URL=http://127.0.0.1:9200 python benchmarks/bm25_tiebreak.py --index scale-int8_hnsw \
        --out docs/scale/bm25_tiebreak_1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from indexer.lifecycle import alias_targets, index_meta
from mmsearch.config import Settings, default_catalog_dir
from mmsearch.text_analysis import CLIENT, lexical_analysis_of
from query_service import legs, queries
from query_service.ranking import RankingConfig
from latency import pct
from scale import query_texts


def timed(es: Any, index: str, body: dict[str, Any]) -> tuple[float, float, list[str]]:
    """(ES took ms, client ms, hit ids) of one search."""
    began = time.perf_counter()
    response = es.search(index=index, **{k: v for k, v in body.items() if k != "_source"}, source=False)
    client_ms = (time.perf_counter() - began) * 1000
    return float(response["took"]), client_ms, [hit["_id"] for hit in response["hits"]["hits"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--index", required=True, help="index or alias to search")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    es = Settings.load(es_hosts=os.environ.get("ES_URL", "http://127.0.0.1:9200"), request_timeout_s=120).es_client()
    catalog = default_catalog_dir()
    if catalog is None:
        raise SystemExit("shared catalog not found; set MMSEARCH_CATALOG_DIR")
    index = (alias_targets(es, args.index) or [args.index])[0]
    meta = index_meta(es, index)
    ranking = RankingConfig()
    client_analysis = lexical_analysis_of(meta) == CLIENT
    texts = query_texts(catalog, args.queries)
    arms: dict[str, dict[str, list[float]]] = {arm: {"took": [], "client": []} for arm in ("plain", "tie_break")}
    same_top10 = 0
    for round_number in range(args.rounds):
        for i, text in enumerate(texts):
            body = queries.bm25_body(text, ranking, {}, client_analysis=client_analysis)
            bodies = {"plain": body, "tie_break": legs.with_tie_break(body, meta.get("doc_id_field") or "id")}
            order = ("plain", "tie_break") if (i + round_number) % 2 == 0 else ("tie_break", "plain")
            ids: dict[str, list[str]] = {}
            for arm in order:
                took, client, ids[arm] = timed(es, index, bodies[arm])
                arms[arm]["took"].append(took)
                arms[arm]["client"].append(client)
            same_top10 += round_number == 0 and set(ids["plain"][:10]) == set(ids["tie_break"][:10])
    summary: dict[str, Any] = {"index": index, "docs": int(es.count(index=index)["count"]), "queries": len(texts),
                               "rounds": args.rounds, "client_analysis": client_analysis,
                               "same_top10_set": same_top10, "load_after": os.getloadavg()}
    for arm, values in arms.items():
        summary[arm] = {f"{kind}_p{q}_ms": round(pct(values[kind], q), 2) for kind in ("took", "client")
                        for q in (50, 90, 99)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

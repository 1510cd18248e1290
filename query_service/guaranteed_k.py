"""Guaranteed k under filters: a filtered kNN leg returns min(depth, matching docs) hits.

Approximate kNN with a restrictive filter can come back short: HNSW explores ``num_candidates``
nodes, and too few of them may pass the filter. The engine calls ``guarantee_k`` after the legs
of a request with filters ran; it escalates ``num_candidates``, then searches exactly (painless
``script_score`` where the cluster has it, else brute force in Python up to ``exact_limit``
documents). Every request goes through the functions it is given (the engine's gateway calls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from query_service import queries
from query_service.legs import LegRun
from query_service.ranking import LEGS, MAX_NUM_CANDIDATES, RankingConfig

Search = Callable[[str, dict[str, Any]], dict[str, Any]]
Count = Callable[[str, dict[str, Any]], int]


@dataclass(frozen=True)
class ExactSearch:
    """How the last resort searches: with painless, or in Python up to ``limit`` filtered docs."""

    painless: bool
    limit: int
    escalation_factor: int


def guarantee_k(search: Search, count: Count, index: str, clauses: list[dict[str, Any]], ranking: RankingConfig,
                vectors: dict[str, np.ndarray], run: LegRun, exact: ExactSearch) -> None:
    """Each short vector leg of ``run`` escalates, then goes exact; recorded in ``run.guaranteed_k``."""
    for leg, ranked in list(run.legs.items()):
        modality, field_name = LEGS[leg]
        if field_name is None or len(ranked) >= ranking.depth or modality not in vectors:
            continue
        matching = count(index, {"bool": {"filter": clauses + [{"exists": {"field": field_name}}]}})
        needed = min(ranking.depth, matching)
        if len(ranked) >= needed:
            continue
        record: dict[str, Any] = {"leg": leg, "returned": len(ranked), "needed": needed, "strategy": None}
        num_candidates = ranking.num_candidates
        while len(ranked) < needed and num_candidates < MAX_NUM_CANDIDATES:
            num_candidates = min(MAX_NUM_CANDIDATES, num_candidates * exact.escalation_factor)
            body = queries.knn_body(field_name, vectors[modality], ranking, clauses, num_candidates)
            ranked, sources = queries.parse_leg_response(search(index, body))
            run.sources.update(sources)
            record["strategy"] = f"num_candidates={num_candidates}"
        if len(ranked) < needed:
            found = exact_top(search, index, field_name, vectors[modality], clauses, ranking, matching, run, exact)
            if found is not None:  # None: too many docs to brute-force; keep what kNN found
                ranked = found
                record["strategy"] = "exact"
        record["returned_after"] = len(ranked)
        run.legs[leg] = ranked
        run.guaranteed_k.append(record)


def exact_top(search: Search, index: str, field_name: str, vector: np.ndarray, clauses: list[dict[str, Any]],
              ranking: RankingConfig, matching: int, run: LegRun, exact: ExactSearch
              ) -> list[tuple[str, float]] | None:
    """The filtered docs' exact top ``depth`` by cosine, or None when there are too many to brute-force."""
    if exact.painless:
        body = queries.exact_script_body(field_name, vector, clauses, ranking.depth)
        ranked, sources = queries.parse_leg_response(search(index, body))
        run.sources.update(sources)
        return ranked
    if matching > exact.limit:
        run.degraded.append(f"exact:{field_name}: {matching} filtered docs exceed the exact-search limit")
        return None
    body = queries.exact_fetch_body(field_name, clauses, matching)
    hits = search(index, body)["hits"]["hits"]
    top = queries.rank_by_cosine(vector, hits, field_name, ranking.depth)
    for doc_id, _, source in top:
        run.sources.setdefault(doc_id, source)
    return [(doc_id, score) for doc_id, score, _ in top]

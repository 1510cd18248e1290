"""Read an experiment's exposures and events back from the events index (PIT-free scroll of one id)."""

from __future__ import annotations

from typing import Any


def fetch_experiment_events(es: Any, index: str, experiment_id: str) -> tuple[list[dict], list[dict]]:
    """(exposures of the experiment, click/cart/purchase events on those exposures)."""
    from elasticsearch import helpers

    es.indices.refresh(index=index)
    exposures = [hit["_source"] for hit in helpers.scan(
        es, index=index, query={"query": {"bool": {"filter": [{"term": {"type": "exposure"}},
                                                              {"term": {"experiment_id": experiment_id}}]}}})]
    query_ids = {e["query_id"] for e in exposures}
    events = [hit["_source"] for hit in helpers.scan(
        es, index=index, query={"query": {"bool": {"must_not": [{"term": {"type": "exposure"}}]}}})
        if hit["_source"].get("query_id") in query_ids]
    return exposures, events

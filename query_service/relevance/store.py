"""Read an experiment's exposures and events back from the events index (PIT-free scroll of one id)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmsearch.gateway import guarded


def fetch_experiment_events(es: Any, index: str, experiment_id: str) -> tuple[list[dict], list[dict]]:
    """(exposures of the experiment, click/cart/purchase events on those exposures).

    ES failures leave as the gateway's exceptions (unreachable -> ClusterUnavailableError, no events
    index -> IndexNotFoundError), so the report command prints one clear line.
    """
    from elasticsearch import helpers

    def sources(query: dict[str, Any], keep: Callable[[dict], bool] = lambda _: True) -> list[dict]:
        # Listed inside the guarded call: scan pages lazily, so errors arrive while iterating;
        # filtered while scanning, so only the experiment's events are ever held in memory.
        return guarded("read events", lambda: [hit["_source"] for hit in helpers.scan(es, index=index, query=query)
                                               if keep(hit["_source"])], index=index)

    guarded("refresh events index", lambda: es.indices.refresh(index=index), index=index)
    exposures = sources({"query": {"bool": {"filter": [{"term": {"type": "exposure"}},
                                                       {"term": {"experiment_id": experiment_id}}]}}})
    query_ids = {e["query_id"] for e in exposures}
    events = sources({"query": {"bool": {"must_not": [{"term": {"type": "exposure"}}]}}},
                     lambda event: event.get("query_id") in query_ids)
    return exposures, events

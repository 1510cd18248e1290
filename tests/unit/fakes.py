"""A fake Elasticsearch gateway for unit tests: implements ``mmsearch.gateway.SearchGateway``, no server.

Leg searches are answered from ``responses`` in order (item i of an ``_msearch`` that is not a
page fetch gets ``responses[i]``). A search whose lexical leg was sent ahead, alone, while the query
was encoded (``SearchEngine.run_legs``) sends its vector legs in the next ``_msearch``: those carry on
from ``responses[1]``, so ``responses`` stays in the search's leg order either way. Page fetches (an ``ids`` query) get a hit per id, from the index
the legs said the document lives in; fused-set aggregations get ``aggregations``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmsearch.gateway import ForwardedResponse, translate


def hits(*pairs: tuple[str, float], index: str = "products-v1") -> dict[str, Any]:
    return {"took": 2, "timed_out": False, "hits": {"total": {"value": len(pairs), "relation": "eq"}, "hits": [
        {"_index": index, "_id": doc, "_score": score, "_source": {"id": doc, "title": f"t{doc}", "gender": "Men"}}
        for doc, score in pairs]}}


class FakeGateway:
    """The gateway surface the engine, the proxy and readiness use; records what was sent."""

    is_search_gateway = True

    def __init__(self, responses: list[dict[str, Any]] | None = None, error: Exception | None = None,
                 mappings: dict[str, dict[str, Any]] | None = None) -> None:
        self.responses = responses if responses is not None else [hits(("a", 3.0), ("b", 1.0))]
        self.error = error  # raised by msearch, translated like the real gateway does
        self.search_error: Exception | None = None
        self.index_mappings = mappings or {}
        self.aggregations: dict[str, Any] = {"fake": {"buckets": []}}
        self.msearch_calls: list[list[dict[str, Any]]] = []
        self.search_bodies: list[dict[str, Any]] = []
        self.forwarded: list[tuple[str, str]] = []
        self.forward_answer = ForwardedResponse(200, {"count": 3})
        self.before_msearch: Any = None
        self.count_result = 0
        #: Facet vocabulary the engine's query parser reads (terms aggregations); empty: nothing parsed.
        self.vocabulary: dict[str, Any] = {}
        self._index_of: dict[str, str] = {}
        self._legs_sent_ahead = 0  # legs of the last _msearch when it held one lexical leg and nothing else

    def _raise(self, error: Exception | None, what: str) -> None:
        if error is not None:
            raise translate(error, what) from error

    def msearch(self, searches: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None) -> list[dict[str, Any]]:
        searches = [dict(s) for s in searches]
        self.msearch_calls.append(searches)
        if self.before_msearch is not None:
            self.before_msearch(searches)
        self._raise(self.error, "search")
        bodies = list(searches[1::2])
        lexical = ["knn" not in (body.get("query") or {}) and "ids" not in (body.get("query") or {}) for body in bodies]
        out, leg = [], (self._legs_sent_ahead if not any(lexical) else 0)
        self._legs_sent_ahead = 1 if lexical == [True] else 0
        for header, body in zip(searches[::2], searches[1::2]):
            if "ids" in (body.get("query") or {}):
                out.append(self.ids_answer(body, header.get("index", "")))
            else:
                response = self.responses[leg % len(self.responses)]
                leg += 1
                for hit in (response.get("hits") or {}).get("hits", []):
                    self._index_of.setdefault(str(hit.get("_id")), hit.get("_index", ""))
                out.append(response)
        return out

    def ids_answer(self, body: Mapping[str, Any], index: str) -> dict[str, Any]:
        if body.get("size") == 0:
            return {"took": 1, "hits": {"hits": []}, "aggregations": self.aggregations}
        ids = body["query"]["ids"]["values"]
        return {"took": 1, "hits": {"hits": [
            {"_index": self._index_of.get(doc, index), "_id": doc, "_score": 1.0,
             "_source": {"id": doc, "title": f"full {doc}"}} for doc in ids]}}

    def search(self, index: str, body: Mapping[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]:
        self._raise(self.search_error, "search")
        if "aggs" in body:  # the query parser's facet vocabulary
            return {"hits": {"hits": []}, "aggregations": self.vocabulary}
        self.search_bodies.append(dict(body))
        if "ids" in (body.get("query") or {}):
            return self.ids_answer(body, index)
        return hits(("a", 1.0))

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        return self.count_result

    def mappings(self, index: str) -> dict[str, dict[str, Any]]:
        return dict(self.index_mappings)

    def alias_targets(self, alias: str) -> list[str]:
        return sorted(self.index_mappings)

    def cluster_health(self, timeout: str = "2s") -> dict[str, Any]:
        self._raise(self.error, "cluster health")
        return {"status": "green"}

    def forward(self, method: str, path: str, params: Mapping[str, str], body: Any) -> ForwardedResponse:
        self.forwarded.append((method, path))
        self._raise(self.error, "relay")
        return self.forward_answer

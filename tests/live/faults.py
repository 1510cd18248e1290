"""Fault injection for live tests: a real Elasticsearch client whose chosen bulk calls misbehave.

``faulty_client(es, plan)`` returns a client of a subclass of the official
``Elasticsearch`` class sharing ``es``'s transport. Its ``bulk`` consults the
``BulkFaults`` plan first, so the faults happen exactly where the plan says,
while every other request (and every bulk item the plan leaves alone) goes to the
real node. The helpers call ``client.options()``, which builds another instance of
the same subclass, so the plan is kept on the subclass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig, ObjectApiResponse
from elasticsearch import ApiError, Elasticsearch


def api_error(status: int, error_type: str) -> ApiError:
    """What the client raises when ES answers a whole request with ``status``."""
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "127.0.0.1", 9200))
    return ApiError(error_type, meta=meta, body={"error": {"type": error_type, "reason": "injected"},
                                                 "status": status})


def _item_id(header_line: bytes | str) -> str:
    header = json.loads(header_line)
    return str(next(iter(header.values()))["_id"])


@dataclass
class BulkCall:
    """One bulk request as the client made it, and what the plan did to it."""

    number: int
    ids: list[str]
    answered: str  # "es" (forwarded), or the injected whole-request status, e.g. "429"
    injected_items: dict[str, int] = field(default_factory=dict)


@dataclass
class BulkFaults:
    """The plan: whole-request statuses by call number, per-item statuses by document id.

    ``item_faults[id] = (status, times)`` answers that item with ``status`` on its first
    ``times`` appearances (``times=None``: always) instead of sending it to ES.
    ``before_call`` runs before the given call number reaches ES (e.g. to stop the node).
    """

    request_faults: dict[int, int] = field(default_factory=dict)
    item_faults: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    before_call: dict[int, Callable[[], None]] = field(default_factory=dict)
    calls: list[BulkCall] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    def bulk(self, forward: Callable[..., Any], operations: list[Any], **kwargs: Any) -> Any:
        number = len(self.calls) + 1
        ids = [_item_id(operations[i]) for i in range(0, len(operations), 2)]
        if number in self.before_call:
            self.before_call[number]()
        if number in self.request_faults:
            status = self.request_faults[number]
            self.calls.append(BulkCall(number, ids, str(status)))
            raise api_error(status, "es_rejected_execution_exception" if status == 429 else "unavailable")
        injected = self._injected(ids)
        call = BulkCall(number, ids, "es", injected)
        self.calls.append(call)
        kept = [line for i, doc_id in enumerate(ids) if doc_id not in injected
                for line in operations[2 * i:2 * i + 2]]
        response = forward(operations=kept, **kwargs) if kept else None
        real_items = iter(response.body["items"] if response is not None else [])
        items = [{"index": {"_id": doc_id, "status": injected[doc_id],
                            "error": {"type": _ERROR_TYPES[injected[doc_id]], "reason": "injected"}}}
                 if doc_id in injected else next(real_items) for doc_id in ids]
        body = {"took": 1, "errors": bool(injected) or (response is not None and response.body["errors"]),
                "items": items}
        meta = response.meta if response is not None else api_error(200, "").meta
        return ObjectApiResponse(body=body, meta=meta)

    def _injected(self, ids: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for doc_id in ids:
            if doc_id not in self.item_faults:
                continue
            status, times = self.item_faults[doc_id]
            seen = self._seen.get(doc_id, 0)
            self._seen[doc_id] = seen + 1
            if times is None or seen < times:
                out[doc_id] = status
        return out


_ERROR_TYPES = {429: "es_rejected_execution_exception", 503: "unavailable_shards_exception",
                400: "document_parsing_exception"}


def faulty_client(es: Elasticsearch, plan: BulkFaults) -> Elasticsearch:
    """A client on ``es``'s transport whose ``bulk`` follows ``plan``."""

    class FaultyBulkClient(Elasticsearch):
        def bulk(self, *args: Any, **kwargs: Any) -> Any:
            operations = kwargs.pop("operations")
            return plan.bulk(lambda **kw: Elasticsearch.bulk(self, *args, **kw), list(operations), **kwargs)

    return FaultyBulkClient(_transport=es.transport)

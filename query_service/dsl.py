"""A search an Elasticsearch application wrote in the query DSL, as the engine runs it: pure, no I/O.

The proxy (``query_service.proxy``) turns an app's ``_search`` body into an
:class:`AppQuery`; ``SearchEngine.search_app`` runs it on the same path as
``/search``. The app's own body is the lexical leg, so its filters, boosts and
scoring behave exactly as before; its presentation options (``_source``
filtering, highlight, version, ...) shape the page's hits, which are fetched
after fusion like every lean search's.

Aggregations (``facets``): with ``"fused"`` (the default) the app's ``aggs``
run in Elasticsearch over the fused candidate set, the same set ``/search``
counts its facets over, so a shop's facet counts describe the hits the shopper
can page through, whichever leg found them. With ``"lexical"`` they come from
the lexical leg, exactly as the keyword search answered them. A body with a
``post_filter`` always gets lexical aggregations: the fused candidates already
obey the post filter, and a multi-select facet needs the counts before it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from query_service import attributes, queries

if TYPE_CHECKING:  # annotations only: the engine's run and fusion types
    from query_service.fusion import FusedHit
    from query_service.legs import LegRun

#: Per-hit presentation options of the app's request: they go to the page fetch, not the legs.
PRESENTATION_KEYS = ("_source", "highlight", "fields", "docvalue_fields", "stored_fields", "script_fields",
                     "version", "seq_no_primary_term")
AGGREGATION_KEYS = ("aggs", "aggregations")
FACET_MODES = ("fused", "lexical")


@dataclass(frozen=True)
class AppQuery:
    """One app search to run hybrid: where, the shopper's text, the app's body and what the vector legs obey."""

    index: str
    text: str
    body: Mapping[str, Any]
    knn_filter: Sequence[Mapping[str, Any]] = ()
    offset: int = 0
    size: int = 10
    facets: str = "fused"
    presentation: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.facets not in FACET_MODES:
            raise ValueError(f"facets must be one of {FACET_MODES}")
        if self.offset < 0 or self.size < 0:
            raise ValueError("offset and size must be >= 0")
        object.__setattr__(self, "presentation", presentation_of(self.body))

    @property
    def aggregations(self) -> Mapping[str, Any] | None:
        return next((self.body[key] for key in AGGREGATION_KEYS if key in self.body), None)

    @property
    def lexical_facets(self) -> bool:
        return self.facets == "lexical" or bool(self.body.get("post_filter"))


@dataclass
class AppResult:
    """What one ``AppQuery`` found: the page as Elasticsearch hits, and what to answer around them."""

    hits: list[dict[str, Any]] = field(default_factory=list)
    fused_total: int = 0
    #: The lexical leg's response without its hits: total, timed_out, _shards (and aggregations, lexical mode).
    lexical: dict[str, Any] = field(default_factory=dict)
    aggregations: dict[str, Any] | None = None
    legs: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    took_ms: float = 0.0
    timed_out: bool = False
    max_score: float | None = None
    #: What query understanding read and applied (attributes.summary), or None when it was off.
    understood: dict[str, Any] | None = None
    #: Elasticsearch refused the app's own query (status, error object): answer exactly as it did.
    error: tuple[int, Any] | None = None


def presentation_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request's per-hit presentation options, for the page fetch.

    A highlighter needs query terms, which the page fetch (an ``ids`` query) has none
    of: unless the app set its own ``highlight_query``, hits are highlighted against the
    app's query, so a hit only a vector leg found is highlighted like a lexical one.
    """
    out = {key: copy.deepcopy(body[key]) for key in PRESENTATION_KEYS if key in body}
    highlight = out.get("highlight")
    if isinstance(highlight, dict) and "highlight_query" not in highlight and body.get("query") is not None:
        highlight["highlight_query"] = copy.deepcopy(body["query"])
    return out


def lexical_leg(query: AppQuery, depth: int) -> dict[str, Any]:
    """The app's own body as the lexical leg: from 0, ``depth`` deep, presentation left to the page fetch."""
    leg = {key: copy.deepcopy(value) for key, value in query.body.items()
           if key not in PRESENTATION_KEYS and (query.lexical_facets or key not in AGGREGATION_KEYS)}
    leg["from"] = 0
    leg["size"] = depth
    return leg


def boosted(leg: dict[str, Any], boosts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The app's lexical leg with the parse's soft boosts: the app's query stays the ``must`` (it still
    decides what matches, so totals and lexical aggregations are unchanged); the boosts only score."""
    if not boosts or "query" not in leg:
        return leg
    return {**leg, "query": {"bool": {"must": [leg["query"]], "should": [dict(b) for b in boosts]}}}


def page_body(query: AppQuery, ids: Sequence[str]) -> dict[str, Any]:
    """The page's hits by id, presented as the app asked (``_source`` filter, highlight, version...)."""
    body: dict[str, Any] = {"query": {"ids": {"values": list(ids)}}, "size": len(ids), "track_total_hits": False}
    body.update(copy.deepcopy(dict(query.presentation)))
    return body


def fused_aggregations_body(query: AppQuery, candidate_ids: Sequence[str]) -> dict[str, Any] | None:
    """The app's aggregations over exactly the fused candidates; None when they come from the lexical leg."""
    aggregations = query.aggregations
    if aggregations is None or query.lexical_facets:
        return None
    return {"query": {"ids": {"values": list(candidate_ids)}}, "size": 0, "track_total_hits": False,
            "aggs": copy.deepcopy(dict(aggregations))}


def order_page_hits(response: Mapping[str, Any], ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> hit of a page fetch (an ``ids`` query returns them in index order, not ours)."""
    wanted = set(ids)
    return {str(hit["_id"]): dict(hit) for hit in (response.get("hits") or {}).get("hits", [])
            if str(hit["_id"]) in wanted}


def app_result(query: AppQuery, run: LegRun, fused: list[FusedHit], page: list[FusedHit],
               fetched: list[dict[str, Any] | None]) -> AppResult:
    """One app search's answer: its fused page (as ``page_body`` presented it), the fused set's
    aggregations, or the lexical leg's error when Elasticsearch refused the app's own query."""
    page_response, aggs_response = fetched
    result = AppResult(fused_total=len(fused), lexical=run.envelopes.get("bm25", {}), legs=sorted(run.legs),
                       degraded=run.degraded, timed_out=any(e.get("timed_out") for e in run.envelopes.values()),
                       max_score=fused[0].score if fused else None,
                       understood=attributes.summary(run.understanding, run.prefiltered,
                                                     bool(run.understanding and run.understanding.attributes),
                                                     run.filter_dropped))
    lexical_error = run.errors.get("bm25")
    if lexical_error is not None:
        result.error = lexical_error
        return result
    if aggs_response is not None:
        if queries.leg_error_reason(aggs_response) is not None:  # the app's own aggregations are invalid
            result.error = (int(aggs_response.get("status") or 400), aggs_response.get("error"))
            return result
        result.aggregations = aggs_response.get("aggregations", {})
    elif query.aggregations is not None:
        result.aggregations = result.lexical.get("aggregations")
    by_id: dict[str, dict[str, Any]] = {}
    if page_response is not None:
        reason = queries.leg_error_reason(page_response)
        if reason is not None:
            result.degraded.append(f"page: {reason}")
        else:
            by_id = order_page_hits(page_response, [hit.doc_id for hit in page])
    for hit in page:  # a doc deleted since the legs ran keeps its place, without a source
        shown = by_id.get(hit.doc_id) or {"_index": query.index, "_id": hit.doc_id, "_source": {}}
        result.hits.append({**shown, "_score": hit.score})
    return result

"""The legs of one or more searches, sent as one ``_msearch``: pure planning and parsing, no I/O.

``SearchEngine`` (the only caller) does the one request; everything it does
before and after lives here so it can be tested without a cluster:

- ``LegBatch``: one search's leg bodies, the index they run on, their weights;
- ``lean_bodies`` / ``msearch_searches``: ids-only legs for every batch, one payload;
- ``split_responses`` / ``parse_batches``: the items back to their batch and leg;
- ``collect``: the degradation rules, leg by leg, into a ``LegRun``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from query_service import queries

Ranked = list[tuple[str, float]]
ParsedLeg = tuple[Ranked, dict[str, dict[str, Any]]]


@dataclass
class LegRun:
    """Raw leg results before fusion (also what offline tuning caches)."""

    legs: dict[str, Ranked] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    took_ms: dict[str, float] = field(default_factory=dict)
    leg_took_ms: dict[str, float] = field(default_factory=dict)
    guaranteed_k: list[dict[str, Any]] = field(default_factory=list)
    lean: bool = False  # sources hold facet doc values only; page sources are fetched separately
    #: Each leg's response without its hits (total, _shards, aggregations): the proxy answers with the lexical one's.
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Legs Elasticsearch refused: leg -> (HTTP status of the item, its error object).
    errors: dict[str, tuple[int, Any]] = field(default_factory=dict)
    #: The parsed query (understanding.Understanding) the legs were shaped with, if any, and its text.
    understanding: Any = None
    text: str | None = None
    #: Attribute pre-filters applied to the vector legs, and those dropped because a leg came back empty.
    prefiltered: list[str] = field(default_factory=list)
    filter_dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LegBatch:
    """One search's legs: full bodies (lean copies are made at send time), weights, facet doc values."""

    index: str
    bodies: Mapping[str, Mapping[str, Any]]
    weights: Mapping[str, float]
    docvalue_fields: tuple[str, ...] = ()


def lean_bodies(batch: LegBatch, lean: bool, id_field: str | None) -> list[dict[str, Any]]:
    if not lean:
        return [dict(body) for body in batch.bodies.values()]
    return [queries.ids_only(body, batch.docvalue_fields, id_field) for body in batch.bodies.values()]


def msearch_searches(batches: Sequence[LegBatch], lean: bool, id_field: str | None) -> list[dict[str, Any]]:
    """Header/body pairs of every leg of every batch, in batch then leg order."""
    searches: list[dict[str, Any]] = []
    for batch in batches:
        for body in lean_bodies(batch, lean, id_field):
            searches.append({"index": batch.index})
            searches.append(body)
    return searches


def split_responses(batches: Sequence[LegBatch], responses: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    position = 0
    for batch in batches:
        out.append(list(responses[position:position + len(batch.bodies)]))
        position += len(batch.bodies)
    return out


def parse_batches(batches: Sequence[LegBatch], responses: Sequence[Sequence[dict[str, Any]]],
                  id_fields: Mapping[str, str | None], id_field: str | None) -> list[list[ParsedLeg]] | None:
    """Each leg's (ranked, sources); a failed leg gets empty ones. None: an id can't be trusted
    (a hit from an index that does not declare ``id_field``): send again without it."""
    out: list[list[ParsedLeg]] = []
    for batch, batch_responses in zip(batches, responses):
        keep_field = id_field in batch.docvalue_fields
        parsed: list[ParsedLeg] = []
        for response in batch_responses:
            if queries.leg_error_reason(response) is not None:
                parsed.append(([], {}))
            elif id_field is None:
                parsed.append(queries.parse_leg_response(response))
            else:
                leg_result = queries.parse_id_field_leg(response, id_fields, id_field, keep_field)
                if leg_result is None:
                    return None
                parsed.append(leg_result)
        out.append(parsed)
    return out


def collect(batch: LegBatch, responses: Sequence[dict[str, Any]], parsed: Sequence[ParsedLeg], run: LegRun,
            leg_timeout_ms: int) -> None:
    """The degradation rules: a failed leg is dropped and named; a timed-out one is kept and named."""
    run.weights = {leg: batch.weights[leg] for leg in batch.bodies}
    for leg, response, (ranked, sources) in zip(batch.bodies, responses, parsed):
        reason = queries.leg_error_reason(response)
        if reason is not None:
            run.degraded.append(f"leg:{leg}: {reason}")
            run.weights.pop(leg, None)
            run.errors[leg] = (int(response.get("status") or 500), response.get("error"))
            continue
        if response.get("timed_out"):
            run.degraded.append(f"leg:{leg}: timed out after {leg_timeout_ms}ms (partial results)")
        run.legs[leg] = ranked
        run.sources.update(sources)
        run.leg_took_ms[leg] = float(response.get("took", 0))
        run.envelopes[leg] = {key: value for key, value in response.items() if key != "hits"} | {
            "total": (response.get("hits") or {}).get("total")}

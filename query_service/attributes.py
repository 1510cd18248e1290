"""How a parsed query (``understanding.Understanding``) shapes the legs and the fusion. Pure.

- ``lexical_boosts``: ``should`` clauses that lift documents whose keyword fields hold the
  parsed values, in the service's own BM25 leg (the proxy leaves the app's query as it is);
- ``prefilter_clauses``: confident attributes (type, gender, colour) as kNN pre-filter
  clauses, for the vector legs only: the lexical leg stays unfiltered, and a vector leg whose
  filter matches nothing is run again without it, so a query never goes empty;
- ``attribute_leg``: a ranking of the fused candidates by how well each agrees with the
  parse (type counts most, then colour, then gender), fused as one more leg, so the parse
  reaches every leg's candidates whichever leg found them; its weight is
  ``RankingConfig.attribute_weight``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from query_service.legs import score_ordered
from query_service.understanding import FILTER_CONFIDENCE, Attribute, Understanding, accepted_values

ATTRIBUTE_LEG = "understood"
#: How much agreeing on each field is worth in the attribute leg (the grading rule weighs type first).
FIELD_WEIGHTS: Mapping[str, float] = {"article_type": 3.0, "base_colour": 2.0, "gender": 1.5, "brand": 1.0,
                                      "usage": 0.5, "season": 0.5}
#: Fields that may narrow the vector legs when confident; usage, season and brand only ever boost.
FILTER_FIELDS = ("article_type", "gender", "base_colour")
#: Boost of a lexical ``should`` clause per unit of confidence, times ``RankingConfig.attribute_boost``.
LEXICAL_BOOST = 2.0


def values_for_filter(attribute: Attribute) -> list[str]:
    """A gender filter keeps unisex products, as the grading rule and shoppers do."""
    return [*attribute.values, *sorted(accepted_values(attribute) - set(attribute.values))]


class FilterCombinations:
    """Which combinations of the pre-filter fields' values exist, per vector field: built from one
    composite aggregation (``Understander``), it says without a search whether a pre-filter can match
    any document that has the leg's vector. A leg it cannot match is sent unfiltered at once, instead
    of coming back empty and running again (``legs.recover_empty_legs``): the same hits, one round
    trip less (it was 45 of the 300 shopper test queries, mostly text->image legs: photos are rarer).

    Every subset of ``FILTER_FIELDS`` keeps its own projection of the combinations, so a check is a
    few set look-ups whichever fields the parse named. It is read again with the vocabulary (its
    TTL): after a swap, a stale table can at worst send a leg unfiltered that a filter would now
    match (a weaker ranking for that window), or send a filter that now matches nothing, which
    comes back empty and runs again as before; never an empty leg.
    """

    def __init__(self, buckets: Sequence[Mapping[str, Any]], vector_fields: Sequence[str]) -> None:
        subsets = [tuple(f for i, f in enumerate(FILTER_FIELDS) if mask >> i & 1)
                   for mask in range(1, 2 ** len(FILTER_FIELDS))]
        self._present: dict[tuple[str, tuple[str, ...]], set[tuple[Any, ...]]] = {
            (vector, subset): set() for vector in vector_fields for subset in subsets}
        for bucket in buckets:
            key = bucket["key"]
            for vector in vector_fields:
                if (bucket.get(vector) or {}).get("doc_count", 0) > 0:
                    for subset in subsets:
                        self._present[(vector, subset)].add(tuple(key.get(f) for f in subset))

    @staticmethod
    def aggregation(vector_fields: Sequence[str], size: int) -> dict[str, Any]:
        """The composite aggregation whose buckets ``__init__`` reads (a document without a value is
        counted too, under null: a filter that does not name that field still matches it)."""
        return {"composite": {"size": size, "sources": [{f: {"terms": {"field": f, "missing_bucket": True}}}
                                                         for f in FILTER_FIELDS]},
                "aggs": {vector: {"filter": {"exists": {"field": vector}}} for vector in vector_fields}}

    def can_match(self, clauses: Sequence[Mapping[str, Any]], vector_field: str) -> bool:
        """Whether some document with ``vector_field`` matches every ``terms`` clause of the pre-filter."""
        wanted = {name: values for clause in clauses for name, values in clause["terms"].items()}
        subset = tuple(f for f in FILTER_FIELDS if f in wanted)
        present = self._present.get((vector_field, subset))
        if present is None:  # a field or vector this table does not cover: assume it can
            return True
        return any(combination in present for combination in itertools.product(*(wanted[f] for f in subset)))


def prefilter_clauses(understanding: Understanding | None) -> list[dict[str, Any]]:
    if understanding is None:
        return []
    confident = understanding.confident(FILTER_CONFIDENCE)
    return [{"terms": {name: values_for_filter(confident[name])}} for name in FILTER_FIELDS if name in confident]


def prefiltered_fields(understanding: Understanding | None, enabled: bool) -> list[str]:
    """The fields ``prefilter_clauses`` narrows the vector legs by (``understood.filtered``); none when off."""
    return [name for clause in prefilter_clauses(understanding) for name in clause["terms"]] if enabled else []


def lexical_boosts(understanding: Understanding | None, scale: float) -> list[dict[str, Any]]:
    if understanding is None or scale <= 0:
        return []
    return [{"terms": {name: list(attribute.values), "boost": round(LEXICAL_BOOST * scale * attribute.confidence, 3)}}
            for name, attribute in understanding.attributes.items()]


def with_lexical_boosts(body: Mapping[str, Any], boosts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The BM25 leg with the boosts as ``bool.should`` (scoring only: ``must`` still decides what matches)."""
    if not boosts:
        return dict(body)
    query = dict(body["query"])
    clause = dict(query["bool"])
    clause["should"] = list(clause.get("should", [])) + [dict(b) for b in boosts]
    query["bool"] = clause
    return {**body, "query": query}


def boosted_window(ranked: Sequence[tuple[str, float]], sources: Mapping[str, Mapping[str, Any]],
                   boosts: Sequence[Mapping[str, Any]], depth: int) -> list[tuple[str, float]]:
    """A BM25 leg fetched ``boost_window`` deep without the boosts, with them added here: each hit's
    score plus the boost of every ``terms`` clause its document matches (what the ``bool.should``
    would have added), best first, ties in id order, cut to ``depth``.

    A leg in any other order than by score (an app's own sort) is only cut: boosts never reorder it.
    """
    if not score_ordered(ranked):
        return list(ranked[:depth])
    checks = []
    for clause in boosts:
        terms = dict(clause["terms"])
        boost = float(terms.pop("boost", 1.0))
        checks += [(name, frozenset(values), boost) for name, values in terms.items()]
    rescored = []
    # The membership test is inlined, as in attribute_leg: it runs for every check of every hit.
    for doc_id, score in ranked:
        source = sources.get(doc_id) or {}
        for name, accepted, boost in checks:
            value = source.get(name)
            if (not accepted.isdisjoint(value)) if isinstance(value, list) else value in accepted:
                score += boost
        rescored.append((doc_id, score))
    rescored.sort(key=lambda hit: (-hit[1], hit[0]))
    return rescored[:depth]


def docvalue_fields(understanding: Understanding | None) -> tuple[str, ...]:
    """The keyword fields the attribute leg reads from each candidate (as doc values in lean legs)."""
    return tuple(understanding.attributes) if understanding is not None else ()


def attribute_leg(understanding: Understanding, candidates: Sequence[str],
                  sources: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, float]]:
    """Candidates that agree with the parse, best agreement first; ties keep ``candidates``' order."""
    # Each attribute's accepted values (``understanding.accepted_values``: the one Unisex rule) once
    # per query; ``value_agrees`` is inlined below because this runs over every fused candidate of
    # every query (~200 x 4 checks) and a call per check doubled the leg's cost (0.18 -> 0.33 ms).
    checks = [(a.field, accepted_values(a), FIELD_WEIGHTS.get(a.field, 0.5) * a.confidence)
              for a in understanding.attributes.values()]
    scored: list[tuple[float, int, str]] = []
    for position, doc_id in enumerate(candidates):
        source = sources.get(doc_id)
        if not source:
            continue
        score = 0.0
        for name, accepted, worth in checks:
            value = source.get(name)
            if (not accepted.isdisjoint(value)) if isinstance(value, list) else value in accepted:
                score += worth
        if score > 0:
            scored.append((-score, position, doc_id))
    scored.sort()
    return [(doc_id, -negative) for negative, _, doc_id in scored]


def summary(understanding: Understanding | None, filtered: Sequence[str], boosted: bool,
            dropped_filters: Sequence[str] = ()) -> dict[str, Any] | None:
    """What the response says under ``understood``."""
    if understanding is None:
        return None
    return {"attributes": understanding.to_dict(), "filtered": list(filtered), "boosted": boosted,
            "filter_dropped": list(dropped_filters)}

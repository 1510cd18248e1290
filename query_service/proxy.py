"""Elasticsearch-compatible ``_search``: pure planning and response shaping, no I/O.

An existing keyword application keeps sending its DSL. We pull the shopper's
text out of ``match``, ``multi_match``, ``simple_query_string`` and ``bool.must``
clauses, run the *original* query unchanged as the lexical leg (so its
filters, boosts and aggregations behave exactly as before), add vector legs
with the original ``bool.filter`` as kNN pre-filter, fuse, and answer in ES's
own response shape. Anything we cannot improve safely is passed through.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmsearch.jsoncodec import float_list
from query_service.fusion import FusedHit

#: Body keys that change the meaning of a search so much that fusing would break it.
_NOT_IMPROVABLE = ("sort", "knn", "retriever", "rescore", "collapse", "search_after", "pit", "suggest",
                   "scroll", "rank", "min_score",
                   # Lucene score explanations describe BM25 scores; fused scores have none.
                   "explain")
#: Per-hit presentation options of the app's request, repeated in the vector legs so every
#: fused hit looks like the app expects (highlights, fields, versions), whichever leg found it.
_PRESENTATION = ("_source", "highlight", "fields", "docvalue_fields", "stored_fields", "script_fields", "version",
                 "seq_no_primary_term")
#: Per-hit keys copied from the leg's hit into the fused hit (lexical leg first).
HIT_EXTRAS = ("highlight", "fields", "_version", "_seq_no", "_primary_term", "_ignored")
OPTIONS_HEADER = "X-Hybrid-Options"


@dataclass(frozen=True)
class ProxyPlan:
    improvable: bool
    reason: str = ""
    text: str | None = None
    knn_filter: list[dict[str, Any]] = field(default_factory=list)
    offset: int = 0
    size: int = 10


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def extract_text(query: Any) -> str | None:
    """The user text of a query: from match / multi_match / simple_query_string, recursing into bool.must."""
    if not isinstance(query, Mapping) or len(query) != 1:
        return None
    kind, clause = next(iter(query.items()))
    if kind == "match" and isinstance(clause, Mapping) and len(clause) == 1:
        value = next(iter(clause.values()))
        text = value.get("query") if isinstance(value, Mapping) else value
        return str(text) if isinstance(text, (str, int, float)) and str(text).strip() else None
    if kind in ("multi_match", "simple_query_string") and isinstance(clause, Mapping):
        text = clause.get("query")
        return str(text) if isinstance(text, str) and text.strip() else None
    if kind == "bool" and isinstance(clause, Mapping):
        texts = [t for t in (extract_text(q) for q in _as_list(clause.get("must"))) if t]
        return " ".join(texts) if texts else None
    return None


def filter_of(query: Any) -> list[dict[str, Any]] | None:
    """Every non-scoring constraint of the query as kNN pre-filter clauses, so vector hits obey the
    same restrictions as the lexical leg: ``filter`` and ``must_not`` at every level of ``bool.must``.
    None when a constraint cannot be expressed that way (``minimum_should_match``) or is not a
    query object at all (malformed: Elasticsearch should report it): pass through."""
    if not (isinstance(query, Mapping) and isinstance(query.get("bool"), Mapping)):
        return []
    clause = query["bool"]
    if "minimum_should_match" in clause:
        return None
    filters, must_not = _as_list(clause.get("filter")), _as_list(clause.get("must_not"))
    if not all(isinstance(c, Mapping) for c in filters + must_not):
        return None
    out = [dict(c) for c in filters]
    if must_not:
        out.append({"bool": {"must_not": must_not}})
    for sub in _as_list(clause.get("must")):
        nested = filter_of(sub)
        if nested is None:
            return None
        out.extend(nested)
    return out


_READ_ENDPOINTS = ("_search", "_msearch", "_count", "_mget", "_field_caps", "_validate/query", "_explain",
                   "_search/template", "_msearch/template", "_termvectors", "_mtermvectors")


def is_read_only(method: str, path: str) -> bool:
    """GET/HEAD anywhere, POST only to read endpoints; everything else is refused."""
    if method in ("GET", "HEAD"):
        return True
    if method != "POST":
        return False
    trimmed = path.rstrip("/")
    return any(trimmed.endswith("/" + endpoint) or trimmed == endpoint for endpoint in _READ_ENDPOINTS) \
        or "/_explain/" in trimmed or "/_termvectors/" in trimmed


def plan(body: Mapping[str, Any] | None, params: Mapping[str, str], options: Mapping[str, Any], depth: int) -> ProxyPlan:
    if options.get("off"):
        return ProxyPlan(False, "hybrid disabled by header")
    if not isinstance(body, Mapping):
        return ProxyPlan(False, "no JSON body")
    blocked = [key for key in _NOT_IMPROVABLE if key in body or key in params]
    if blocked:
        return ProxyPlan(False, f"uses {', '.join(blocked)}")
    text = extract_text(body.get("query"))
    if not text:
        return ProxyPlan(False, "no user text in match/multi_match/simple_query_string/bool.must")
    try:
        offset = int(body.get("from", params.get("from", 0)))
        size = int(body.get("size", params.get("size", 10)))
    except (TypeError, ValueError):
        return ProxyPlan(False, "non-integer from/size")
    if size == 0:
        return ProxyPlan(False, "size 0 (aggregations only)")
    if offset < 0 or size < 0:
        return ProxyPlan(False, "negative from/size (Elasticsearch reports the error)")
    if offset + size > depth:
        return ProxyPlan(False, f"from+size beyond the fused depth {depth}")
    knn_filter = filter_of(body.get("query"))
    if knn_filter is None:
        return ProxyPlan(False, "minimum_should_match or a malformed filter cannot be applied to the vector legs")
    if body.get("post_filter"):
        knn_filter.append(dict(body["post_filter"]))
    return ProxyPlan(True, text=text, knn_filter=knn_filter, offset=offset, size=size)


def parse_options(header: str | None) -> dict[str, Any]:
    """``X-Hybrid-Options: off`` or a JSON object of RankingConfig overrides."""
    if not header:
        return {}
    if header.strip().lower() in ("off", "false", "0"):
        return {"off": True}
    try:
        options = json.loads(header)
    except ValueError:
        raise ValueError(f"{OPTIONS_HEADER} must be 'off' or a JSON object") from None
    if not isinstance(options, dict):
        raise ValueError(f"{OPTIONS_HEADER} must be a JSON object")
    return options


def lexical_body(body: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """The app's own query, unchanged but for depth: aggregations, filters and boosts stay as they were."""
    lexical = copy.deepcopy(dict(body))
    lexical["from"] = 0
    lexical["size"] = depth
    return lexical


def presentation_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request's per-hit presentation options, for the vector legs.

    A highlighter needs query terms, which a kNN leg has none of: unless the app set
    its own ``highlight_query``, vector hits are highlighted against the app's query.
    """
    out = {key: copy.deepcopy(body[key]) for key in _PRESENTATION if key in body}
    highlight = out.get("highlight")
    if isinstance(highlight, dict) and "highlight_query" not in highlight and body.get("query") is not None:
        highlight["highlight_query"] = copy.deepcopy(body["query"])
    return out


def knn_leg_body(field_name: str, vector: Sequence[float], knn_filter: list[dict[str, Any]], depth: int,
                 num_candidates: int, presentation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    knn: dict[str, Any] = {"field": field_name, "query_vector": float_list(vector), "k": depth,
                           "num_candidates": num_candidates}
    if knn_filter:
        knn["filter"] = knn_filter
    body: dict[str, Any] = {"query": {"knn": knn}, "size": depth}  # query form: see queries.knn_body
    body.update(presentation or {})
    return body


def hit_extras(response: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{id: the hit's presentation keys (highlight, fields, _version, ...)} of one leg's response."""
    out: dict[str, dict[str, Any]] = {}
    for hit in (response.get("hits") or {}).get("hits", []):
        extras = {key: hit[key] for key in HIT_EXTRAS if key in hit}
        if extras:
            out[str(hit["_id"])] = extras
    return out


def shape_response(index: str, page: Sequence[FusedHit], sources: Mapping[str, Any],
                   index_of: Mapping[str, str], lexical: Mapping[str, Any], fused_total: int, took_ms: int,
                   extra: Mapping[str, Any] | None = None, max_score: float | None = None,
                   extras: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """An Elasticsearch search response built from the fused page."""
    lexical_total = (lexical.get("hits") or {}).get("total") or {"value": 0, "relation": "eq"}
    if isinstance(lexical_total, int):
        lexical_total = {"value": lexical_total, "relation": "eq"}
    total = {"value": max(int(lexical_total.get("value", 0)), fused_total),
             "relation": lexical_total.get("relation", "eq")}
    hits = [{"_index": index_of.get(h.doc_id, index), "_id": h.doc_id, "_score": h.score,
             "_source": sources.get(h.doc_id, {}), **(extras or {}).get(h.doc_id, {})} for h in page]
    response: dict[str, Any] = {
        "took": took_ms, "timed_out": bool(lexical.get("timed_out", False)),
        "_shards": lexical.get("_shards", {"total": 1, "successful": 1, "skipped": 0, "failed": 0}),
        "hits": {"total": total, "max_score": max_score if max_score is not None else
                 (hits[0]["_score"] if hits else None), "hits": hits},
    }
    if "aggregations" in lexical:
        response["aggregations"] = lexical["aggregations"]
    if extra:
        response["_hybrid"] = dict(extra)
    return response


def es_error(status: int, error_type: str, reason: str) -> dict[str, Any]:
    return {"error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
            "status": status}

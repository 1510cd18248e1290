"""Elasticsearch-compatible ``_search`` and ``_msearch``: translation between the DSL and the engine. Pure.

An existing keyword application keeps sending its DSL. We pull the shopper's
text out of ``match``, ``multi_match``, ``simple_query_string`` and ``bool.must``
clauses and hand the engine an ``AppQuery``: the *original* query runs unchanged
as the lexical leg (so its filters, boosts and aggregations behave exactly as
before), the vector legs get the original ``bool.filter`` as kNN pre-filter, and
``SearchEngine.search_app`` fuses and pages on the same path as ``/search``. The
result is answered in ES's own response shape. Anything we cannot improve
safely is passed through; what may pass at all is ``proxy_access``'s allowlist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from mmsearch.exceptions import ForbiddenRequestError, MMSearchError, RequestValidationError
from query_service.dsl import FACET_MODES, AppQuery, AppResult
from query_service.validation import RANKING_OVERRIDES_SCHEMA

#: Body keys that change the meaning of a search so much that fusing would break it.
_NOT_IMPROVABLE = ("sort", "knn", "retriever", "rescore", "collapse", "search_after", "pit", "suggest",
                   "scroll", "rank", "min_score",
                   # Lucene score explanations describe BM25 scores; fused scores have none.
                   "explain")
OPTIONS_HEADER = "X-Hybrid-Options"
#: The header's ranking overrides take the same shape checks as the /search body's ``ranking``.
RANKING_OVERRIDES_VALIDATOR = jsonschema.Draft202012Validator(RANKING_OVERRIDES_SCHEMA)
#: Proxy options that are not ranking overrides: ``off`` (pass through) and ``facets`` (dsl.FACET_MODES).
PROXY_ONLY_OPTIONS = ("off", "facets")


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
    """The user text of a query: from match / multi_match / simple_query_string, recursing into ``bool``.

    ``bool.must`` clauses add up ("red" + "shirt"). A ``bool`` with only ``should`` clauses is read
    when every text clause in it carries the same text: that is how search UIs phrase one query
    several ways (Searchkit: fuzzy, prefix and phrase ``multi_match`` of the same words).
    """
    if not isinstance(query, Mapping) or len(query) != 1:
        return None
    kind, clause = next(iter(query.items()))
    if kind == "match" and isinstance(clause, Mapping) and len(clause) == 1:
        value = next(iter(clause.values()))
        text = value.get("query") if isinstance(value, Mapping) else value
        return str(text) if isinstance(text, (str, int, float)) and str(text).strip() else None
    if kind in ("multi_match", "simple_query_string", "match_phrase", "match_bool_prefix") \
            and isinstance(clause, Mapping):
        text = clause.get("query")
        if kind in ("match_phrase", "match_bool_prefix") and len(clause) == 1:  # {field: text | {query: text}}
            value = next(iter(clause.values()))
            text = value.get("query") if isinstance(value, Mapping) else value
        return str(text) if isinstance(text, str) and text.strip() else None
    if kind == "bool" and isinstance(clause, Mapping):
        texts = [t for t in (extract_text(q) for q in _as_list(clause.get("must"))) if t]
        if texts:
            return " ".join(dict.fromkeys(texts))
        if "should" in clause and "minimum_should_match" not in clause:
            variants = {t.strip().lower(): t for t in (extract_text(q) for q in _as_list(clause.get("should"))) if t}
            return next(iter(variants.values())) if len(variants) == 1 else None
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


def plan(body: Mapping[str, Any] | None, params: Mapping[str, str], options: Mapping[str, Any], depth: int) -> ProxyPlan:
    if options.get("off"):
        return ProxyPlan(False, "hybrid disabled by header")
    if not isinstance(body, Mapping):
        return ProxyPlan(False, "no JSON body")
    blocked = [key for key in _NOT_IMPROVABLE if key in body or key in params]
    if blocked:
        return ProxyPlan(False, f"uses {', '.join(blocked)}")
    malformed = [key for key in ("aggs", "aggregations", "highlight", "post_filter")
                 if key in body and not isinstance(body[key], Mapping)]
    if malformed:
        return ProxyPlan(False, f"malformed {', '.join(malformed)} (Elasticsearch reports it)")
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
    try:
        RANKING_OVERRIDES_VALIDATOR.validate(options)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ValueError(f"{OPTIONS_HEADER} is invalid at {where}: {exc.message}") from None
    return options


def app_query(index: str, body: Mapping[str, Any], proxy_plan: ProxyPlan, options: Mapping[str, Any]) -> AppQuery:
    """The engine's request for an improvable app search (``options``: the proxy options in force)."""
    facets = options.get("facets", "fused")
    if facets not in FACET_MODES:
        raise ValueError(f"facets must be one of {', '.join(FACET_MODES)}")
    return AppQuery(index=index, text=proxy_plan.text or "", body=body, knn_filter=tuple(proxy_plan.knn_filter),
                    offset=proxy_plan.offset, size=proxy_plan.size, facets=facets)


def ranking_overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """The RankingConfig overrides among the proxy options (``off`` and ``facets`` are the proxy's own)."""
    return {key: value for key, value in options.items() if key not in PROXY_ONLY_OPTIONS}


def _total(query: AppQuery, result: AppResult) -> dict[str, Any] | int | None:
    lexical_total = result.lexical.get("total")
    if lexical_total is None and query.body.get("track_total_hits") is False:
        return None  # the app asked for no total; Elasticsearch leaves it out too
    if isinstance(lexical_total, int):  # rest_total_hits_as_int
        return max(lexical_total, result.fused_total)
    lexical_total = lexical_total or {"value": 0, "relation": "eq"}
    return {"value": max(int(lexical_total.get("value", 0)), result.fused_total),
            "relation": lexical_total.get("relation", "eq")}


def shape_response(query: AppQuery, result: AppResult, variant: str) -> dict[str, Any]:
    """An Elasticsearch search response built from the fused page (``hits.total``: at least the fused count)."""
    hits: dict[str, Any] = {}
    total = _total(query, result)
    if total is not None:
        hits["total"] = total
    hits["max_score"] = result.max_score
    hits["hits"] = result.hits
    response: dict[str, Any] = {
        "took": int(result.took_ms), "timed_out": result.timed_out,
        "_shards": result.lexical.get("_shards", {"total": 1, "successful": 1, "skipped": 0, "failed": 0}),
        "hits": hits,
    }
    if result.aggregations is not None:
        response["aggregations"] = result.aggregations
    response["_hybrid"] = {"variant": variant, "legs": result.legs, "degraded": result.degraded,
                           "facets": "lexical" if query.lexical_facets else "fused",
                           "fused_total": result.fused_total, "understood": result.understood}
    return response


def error_of(result: AppResult) -> tuple[dict[str, Any], int]:
    """(ES error body, status) for a result whose app query Elasticsearch refused."""
    status, error = result.error or (500, None)
    if 400 <= status < 500:  # the app's own request is invalid: answer exactly as Elasticsearch did
        return {"error": error, "status": status}, status
    body = es_error(503, "search_phase_execution_exception", "the lexical leg failed in Elasticsearch: "
                    + str(error.get("reason") if isinstance(error, Mapping) else error)[:200])
    return body, 503


# --- _msearch ----------------------------------------------------------------------


@dataclass(frozen=True)
class MsearchItem:
    header: dict[str, Any]
    body: Any


def parse_msearch(raw: bytes, loads: Any) -> list[MsearchItem]:
    """The header/body pairs of an NDJSON ``_msearch`` body; ValueError names the bad line."""
    lines = [line for line in raw.split(b"\n") if line.strip()]
    if not lines:
        raise ValueError("the _msearch body is empty: send header and body lines (NDJSON)")
    if len(lines) % 2:
        raise ValueError("the _msearch body must hold header and body lines in pairs (NDJSON, newline-terminated)")
    items = []
    for number in range(0, len(lines), 2):
        try:
            header, body = loads(lines[number]), loads(lines[number + 1])
        except ValueError:
            raise ValueError(f"line {number + 1} or {number + 2} of the _msearch body is not valid JSON") from None
        if not isinstance(header, dict) or not isinstance(body, dict):
            raise ValueError(f"lines {number + 1}-{number + 2} of the _msearch body must be JSON objects")
        items.append(MsearchItem(header, body))
    return items


def item_target(item: MsearchItem, default_index: str | None) -> str | None:
    index = item.header.get("index", default_index)
    if isinstance(index, list):
        return ",".join(str(name) for name in index)
    return str(index) if index else None


def forbidden_item(reason: str) -> dict[str, Any]:
    return es_error(403, "security_exception", reason)


def msearch_item(query: AppQuery, result: AppResult, variant: str) -> dict[str, Any]:
    """One hybrid item of an ``_msearch`` answer: the search response plus its status, or ES's error."""
    if result.error is not None:
        body, _ = error_of(result)
        return body
    return {**shape_response(query, result, variant), "status": 200}

def es_error_type(error: MMSearchError) -> str:
    """The Elasticsearch error type a client expects for one of our errors (clients dispatch on it)."""
    if isinstance(error, ForbiddenRequestError):
        return "security_exception"
    if isinstance(error, RequestValidationError) and error.http_status == 400:
        return "illegal_argument_exception"
    return type(error).__name__


def es_error(status: int, error_type: str, reason: str) -> dict[str, Any]:
    return {"error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
            "status": status}

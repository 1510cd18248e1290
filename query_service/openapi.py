"""The service's OpenAPI 3.1 document (``GET /openapi.json``): every API path, its input and its answers.

The ``/search`` JSON body is ``validation.SEARCH_SCHEMA`` itself (one schema validates requests and
documents them); the other inputs are described here from the validators they pass through
(``validation.from_query_args`` / ``from_form``, ``relevance.http.validate_event``, the proxy's
allowlist in ``proxy_access``). Every status a route can answer is listed with its body, so that a
contract fuzzer (tests/live/test_fuzz_openapi.py) can check the service against this document.
The HTML pages (``/``, ``/compare``, ``/ops``, ``/photos/...``) are for browsers and not part of it.
"""

from __future__ import annotations

from typing import Any

from query_service.ranking import (
    BOOLEAN_FILTERS,
    FACET_FIELDS,
    KEYWORD_FILTERS,
    MAX_DEPTH,
    MAX_RANGE_BOUND,
    MAX_SIZE,
    MAX_TEXT_CHARS,
    RANGE_FILTERS,
)
from query_service.relevance.http import EVENT_STRING_FIELDS, EVENT_TYPES, MAX_EPOCH_MS, MAX_EVENTS_PER_REQUEST
from query_service.validation import NON_BLANK, SEARCH_SCHEMA

#: The optional string fields of an event (relevance.http.validate_event: at most 200 chars, or null);
#: ``ticket`` is the /search answer's event_ticket for the event's query_id.
_EVENT_STRINGS = tuple(name for name in EVENT_STRING_FIELDS if name not in ("query_id", "doc_id"))

JSON = "application/json"
_REF = "#/components/"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"{_REF}{kind}/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _error_response(description: str, schema: str = "Error", **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _json_content(_ref("schemas", schema))}
    if headers:
        response["headers"] = {name: _ref("headers", ref) for name, ref in headers.items()}
    return response


def _schemas() -> dict[str, Any]:
    keyword = {"type": "object", "additionalProperties": True}
    hit = {"type": "object", "required": ["_id", "_score"], "properties": {
        "_id": {"type": "string"}, "_score": {"type": "number"}, "_source": keyword, "breakdown": keyword}}
    facet_bucket = {"type": "object", "properties": {"value": {}, "count": {"type": "integer"}}}
    return {
        "Error": {"type": "object", "required": ["error", "message"], "description": "error type and message "
                  "(plus the facts behind it)", "properties": {"error": {"type": "string"},
                                                              "message": {"type": "string"}}},
        "EsError": {"type": "object", "required": ["error", "status"], "description": "Elasticsearch's error "
                    "shape (the proxy answers as Elasticsearch would)", "properties": {
                        "error": {"oneOf": [{"type": "object", "required": ["type", "reason"], "properties": {
                            "type": {"type": "string"}, "reason": {"type": ["string", "null"]},
                            "root_cause": {"type": "array"}}}, {"type": "string"}]},
                        "status": {"type": "integer"}}},
        "SearchBody": SEARCH_SCHEMA,
        "SearchForm": _search_form(),
        "SearchResponse": {"type": "object", "required": ["variant", "total", "hits", "degraded"], "properties": {
            "variant": {"type": "string"}, "total": {"type": "integer"}, "offset": {"type": "integer"},
            "size": {"type": "integer"}, "hits": {"type": "array", "items": hit},
            "facets": {"type": "object", "additionalProperties": {"type": "array", "items": facet_bucket}},
            "took_ms": keyword, "legs": keyword, "fusion": keyword, "degraded": {"type": "array"},
            "understood": {"type": ["object", "null"]}, "query_id": {"type": "string"}, "experiment": keyword,
            "event_ticket": {"type": "string", "description": "credential for POST /events about this query_id"}}},
        "Event": _event_schema(),
        "EsDsl": {"type": "object", "description": "an Elasticsearch search body (query DSL); searches the proxy "
                  "can improve (text in match / multi_match / simple_query_string / bool.must) are hybrid, the "
                  "rest are relayed unchanged", "properties": {
                      "query": {"type": "object"}, "size": {"type": "integer"}, "from": {"type": "integer"},
                      "aggs": {"type": "object"}, "post_filter": {"type": "object"},
                      "_source": {"type": ["boolean", "array", "object", "string"]}}},
        "EsAnswer": {"type": "object", "description": "Elasticsearch's response (a hybrid search adds _hybrid)"},
    }


def _search_form() -> dict[str, Any]:
    return {"type": "object", "properties": {
        "image": {"type": "string", "format": "binary", "description": "the photo (JPEG, PNG, WebP)"},
        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS}, "negative_text": {"type": "string",
                                                                                  "maxLength": MAX_TEXT_CHARS},
        "filters": {"type": "string", "description": "a JSON object, as the JSON body's filters"},
        "size": {"type": "integer", "minimum": 0, "maximum": MAX_SIZE},
        "from": {"type": "integer", "minimum": 0, "maximum": MAX_DEPTH},
        "facets": {"type": "string", "pattern": _facet_list_pattern()},
        "user_id": {"type": "string"}, "session_id": {"type": "string"}},
        "anyOf": [{"required": ["text"], "properties": {"text": {"pattern": NON_BLANK}}}, {"required": ["image"]}]}


def _event_schema() -> dict[str, Any]:
    required_id = {"type": "string", "minLength": 1, "maxLength": 200}
    optional_id = {"type": ["string", "null"], "maxLength": 200}
    return {"type": "object", "additionalProperties": False, "required": ["type", "query_id", "doc_id"],
            "properties": {"type": {"enum": list(EVENT_TYPES)}, "query_id": required_id, "doc_id": required_id,
                           "position": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
                           "ts": {"oneOf": [{"type": "string", "format": "date-time", "maxLength": 64},
                                            {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH_MS,
                                             "description": "epoch milliseconds"}]},
                           **{name: optional_id for name in _EVENT_STRINGS}}}


def _facet_list_pattern() -> str:
    name = "(" + "|".join(FACET_FIELDS) + ")"
    return f"^{name}?(,{name}?)*$"


def _query(name: str, schema: dict[str, Any], description: str = "", required: bool = False) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schema, "required": required}
    if description:
        parameter["description"] = description
    return parameter


def _search_get_parameters() -> list[dict[str, Any]]:
    text = {"type": "string", "maxLength": MAX_TEXT_CHARS}
    parameters = [
        _query("q", {**text, "pattern": NON_BLANK}, "the shopper's text", required=True),
        _query("size", {"type": "integer", "minimum": 0, "maximum": MAX_SIZE}),
        _query("from", {"type": "integer", "minimum": 0, "maximum": MAX_DEPTH}),
        _query("facets", {"type": "string", "pattern": _facet_list_pattern()}, "comma-separated facet fields"),
        _query("negative", text, "text to steer away from"),
        _query("user_id", {"type": "string"}), _query("session_id", {"type": "string"}),
        _query("explain", {"type": "boolean"}), _query("understand", {"type": "boolean"}),
    ]
    parameters += [_query(f"filter.{name}", {"type": "boolean"} if name in BOOLEAN_FILTERS else {"type": "string"},
                          "a value or comma-separated values") for name in KEYWORD_FILTERS]
    bound_schema = {"type": "number", "minimum": -MAX_RANGE_BOUND, "maximum": MAX_RANGE_BOUND}
    parameters += [_query(f"filter.{name}.{bound}", bound_schema) for name in RANGE_FILTERS
                   for bound in ("gte", "lte", "gt", "lt")]
    return parameters


def _components() -> dict[str, Any]:
    retry_after = {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
    return {
        "schemas": _schemas(),
        "headers": {"RetryAfter": retry_after,
                    "Allow": {"description": "the methods the path takes", "schema": {"type": "string"}}},
        "responses": {
            "BadRequest": _error_response("invalid request (the message says what to change)"),
            "TooLarge": _error_response("body or image larger than the limit"),
            "RateLimited": _error_response("too many requests from this client", RetryAfter="RetryAfter"),
            "Unavailable": _error_response("Elasticsearch or the encoder unavailable", RetryAfter="RetryAfter"),
            "ClusterRefused": _error_response("Elasticsearch refused the request (or the service's credentials)"),
            "EsBadRequest": _error_response("invalid request, in Elasticsearch's shape", "EsError"),
            "EsForbidden": _error_response("not on the proxy's allowlist (see docs/query_service.md)", "EsError"),
            # A path werkzeug cannot route at all (a newline in the index name) gets the service's
            # own 404 shape: the proxy's catch-all never sees it.
            "EsNotFound": {"description": "Elasticsearch found no such index or document (or the path is not "
                           "routable)", "content": _json_content({"anyOf": [_ref("schemas", "EsError"),
                                                                           _ref("schemas", "Error")]})},
            "EsTooLarge": _error_response("body larger than the limit", "EsError"),
            "EsRateLimited": _error_response("too many requests from this client", "EsError",
                                             RetryAfter="RetryAfter"),
            "EsRefused": _error_response("Elasticsearch refused the request", "EsError"),
            "EsUnavailable": _error_response("Elasticsearch unavailable", "EsError", RetryAfter="RetryAfter"),
        },
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                           "description": "the events token (MMSEARCH_EVENTS_TOKEN)"}},
    }


def _responses(ok: dict[str, Any], **errors: str) -> dict[str, Any]:
    return {**ok, **{status: _ref("responses", name) for status, name in errors.items()}}


_SEARCH_ERRORS = {"400": "BadRequest", "413": "TooLarge", "429": "RateLimited", "502": "ClusterRefused",
                  "503": "Unavailable"}
_PROXY_ERRORS = {"400": "EsBadRequest", "403": "EsForbidden", "404": "EsNotFound", "413": "EsTooLarge",
                 "502": "EsRefused", "503": "EsUnavailable"}
_PROXY_SEARCH_ERRORS = {**_PROXY_ERRORS, "429": "EsRateLimited"}


def _search_path() -> dict[str, Any]:
    ok = {"200": {"description": "the fused page of hits", "content": _json_content(_ref("schemas",
                                                                                       "SearchResponse"))}}
    return {
        "get": {"operationId": "searchGet", "summary": "text search from query parameters",
                "parameters": _search_get_parameters(), "responses": _responses(ok, **_SEARCH_ERRORS)},
        "post": {"operationId": "searchPost", "summary": "text, photo or both (JSON, or a multipart upload)",
                 "requestBody": {"required": True, "content": {
                     JSON: {"schema": _ref("schemas", "SearchBody")},
                     "multipart/form-data": {"schema": _ref("schemas", "SearchForm")}}},
                 "responses": _responses(ok, **_SEARCH_ERRORS)},
    }


def _events_path() -> dict[str, Any]:
    event = _ref("schemas", "Event")
    body = {"oneOf": [event, {"type": "array", "items": event, "minItems": 1, "maxItems": MAX_EVENTS_PER_REQUEST}]}
    accepted = {"202": {"description": "accepted (buffered for the events index)", "content": _json_content(
        {"type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "integer"}}})}}
    return {"post": {
        "operationId": "postEvents", "summary": "click / add_to_cart / purchase events (all or none accepted)",
        "description": "Authorised by the events token (bearer) or by the event_ticket a /search answer "
                       "carries for its query.",
        "security": [{"bearerAuth": []}, {}],
        "requestBody": {"required": True, "content": _json_content(body)},
        "responses": _responses(accepted, **{"400": "BadRequest", "401": "BadRequest", "403": "BadRequest",
                                             "413": "TooLarge", "429": "RateLimited", "503": "Unavailable"}),
    }}


def _index_parameter() -> dict[str, Any]:
    return {"name": "index", "in": "path", "required": True, "description": "the product alias, one of its "
            "versioned indices or an index in MMSEARCH_PROXY_INDICES (comma-separated); anything else is a 403",
            "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}


def _options_header() -> dict[str, Any]:
    return {"name": "X-Hybrid-Options", "in": "header", "required": False, "description": "'off' (pass through) "
            "or a JSON object of ranking overrides (plus facets: fused | lexical); replaces the deployment's",
            "schema": {"type": "string"}}


def _es_ok(description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": _json_content(_ref("schemas", "EsAnswer"))}}


def _proxy_paths() -> dict[str, Any]:
    index = [_index_parameter(), _options_header()]
    dsl = {"required": False, "content": _json_content(_ref("schemas", "EsDsl"))}
    # What the NDJSON lines hold once decoded: header, body, header, body, ... (one JSON object a line).
    ndjson = {"required": True, "content": {"application/x-ndjson": {"schema": {
        "type": "array", "minItems": 2, "maxItems": 20, "items": {"type": "object"},
        "description": "the NDJSON body's lines, decoded: a header ({index}) and a search body per search"}}}}
    hybrid = _responses(_es_ok("Elasticsearch-shaped response (hybrid when improvable)"), **_PROXY_SEARCH_ERRORS)
    plain = _responses(_es_ok("Elasticsearch's response, relayed"), **_PROXY_ERRORS)
    msearch = _responses(_es_ok("one response per search, in order"), **_PROXY_SEARCH_ERRORS)

    def operation(op_id: str, summary: str, responses: dict[str, Any], body: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": ["proxy"], "responses": responses}
        if body is not None:
            out["requestBody"] = body
        return out

    return {
        "/{index}/_search": {"parameters": index,
                             "get": operation("proxySearchGet", "Elasticsearch-compatible search (no body)",
                                              hybrid),
                             "post": operation("proxySearch", "Elasticsearch-compatible search", hybrid, dsl)},
        "/_msearch": {"parameters": [_options_header()],
                      "post": operation("proxyMsearch", "multi-search; each item's index is checked", msearch,
                                        ndjson)},
        "/{index}/_msearch": {"parameters": index,
                              "post": operation("proxyIndexMsearch", "multi-search with a default index", msearch,
                                                ndjson)},
        "/{index}/_count": {"parameters": index,
                            "post": operation("proxyCount", "count, relayed", plain, dsl)},
        "/{index}/_mapping": {"parameters": index, "get": operation("proxyMapping", "mappings, relayed", plain)},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mmsearch query service", "version": "1",
                 "description": "Hybrid multimodal product search. Every error is JSON; 405 answers carry Allow."},
        "components": _components(),
        "paths": {
            "/search": _search_path(),
            "/events": _events_path(),
            **_proxy_paths(),
            "/healthz": {"get": {"operationId": "healthz", "responses": {"200": {
                "description": "alive", "content": _json_content({"type": "object"})}}}},
            "/readyz": {"get": {"operationId": "readyz", "responses": {
                "200": {"description": "ready", "content": _json_content({"type": "object"})},
                "503": {"description": "not ready (the checks say why)", "content": _json_content(
                    {"type": "object"})}}}},
            "/metrics": {"get": {"operationId": "metrics", "responses": {
                "200": {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                "401": _error_response("metrics_public is false: send the admin token"),
                "403": _error_response("metrics_public is false and no admin token is configured")}}},
            "/openapi.json": {"get": {"operationId": "openapi", "responses": {"200": {
                "description": "this document", "content": _json_content({"type": "object"})}}}},
        },
    }

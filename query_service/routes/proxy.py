"""The Elasticsearch-compatible surface: allowlisted reads, hybrid ``_search`` and ``_msearch``.

Every request is checked against ``ProxyAccess`` first (403 in ES's error shape
otherwise). Searches on the product alias that ``proxy.plan`` can improve go to
``SearchService.search_app``, the engine's one path; every other allowed read is
relayed unchanged through the gateway, answered with Elasticsearch's own status.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.routing import Map, Rule

from mmsearch.exceptions import RequestValidationError
from query_service import proxy
from query_service.jsonio import dumps_bytes, loads
from query_service.metrics import CLIENT_DEFINED_VARIANT
from query_service.proxy_access import FORBIDDEN_TYPE, Refusal, Route
from query_service.ranking import RankingConfig
from query_service.service import context

ES_PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]

blueprint = Blueprint("proxy", __name__)


class _BadBody(ValueError):
    """The request body is not what the endpoint takes (answered 400 parse_exception, as ES does)."""


def es_json(body: Any, status: int, extra_headers: dict[str, str] | None = None) -> Response:
    return Response(dumps_bytes(body), status, mimetype="application/json",
                    headers={**ES_PRODUCT_HEADER, **(extra_headers or {})})


@blueprint.route("/", defaults={"path": ""}, methods=METHODS)
@blueprint.route("/<path:path>", methods=METHODS)
def relay(path: str) -> Response:
    ctx = context()
    full_path = "/" + path
    route = ctx.access.route(request.method, full_path)
    if isinstance(route, Refusal):
        # e.g. PUT /search: the service's own route, with a method it does not take, is a 405, not an
        # Elasticsearch write refused. Looked up only here: allowed reads skip it. (GET / reaches the
        # relay from the search page's view, for Elasticsearch clients: a method that route takes.)
        methods = service_route_methods(full_path)
        if methods and request.method not in methods:
            return _method_not_allowed(full_path, methods)
        return es_json(proxy.es_error(403, FORBIDDEN_TYPE, route.message()), 403)
    try:
        return _dispatch(route, full_path)
    except _BadBody as exc:
        return es_json(proxy.es_error(400, "parse_exception", str(exc)), 400)


def _method_not_allowed(path: str, methods: set[str]) -> Response:
    """The service's own error shape, as werkzeug's 405s for other methods have it."""
    response = jsonify({"error": "MethodNotAllowed", "message": f"{request.method} is not allowed on {path}"})
    response.status_code = 405
    response.headers["Allow"] = ", ".join(sorted(methods))
    return response


def service_route_methods(path: str) -> set[str]:
    """The methods the service's own (non-proxy) routes take on ``path``; empty when none matches.

    The catch-all relay matches every path for every method, so without this a PUT on
    ``/search`` would be answered as an Elasticsearch write (403) instead of a 405 with Allow.
    """
    app = current_app
    service_map = app.extensions.get("mmsearch_service_routes")
    if service_map is None:
        service_map = Map([Rule(rule.rule, methods=rule.methods, endpoint=rule.endpoint)
                           for rule in app.url_map.iter_rules() if not rule.endpoint.startswith(f"{blueprint.name}.")],
                          converters=app.url_map.converters)
        app.extensions["mmsearch_service_routes"] = service_map
    return set(service_map.bind("localhost").allowed_methods(path))


def _dispatch(route: Route, full_path: str) -> Response:
    if route.kind == "msearch":
        return _msearch(route.target)
    if route.kind == "search" and context().access.is_product_target(route.target):
        return _search(route.target or "", full_path)
    if route.kind == "pit_search" and not _has_pit(_json_body()):
        refusal = Refusal("a search without an index reaches every index; only point-in-time searches (whose "
                          "PIT was opened on an allowed index) may omit it")
        return es_json(proxy.es_error(403, FORBIDDEN_TYPE, refusal.message()), 403)
    return _forward(full_path, reason="not a search" if route.kind != "search" else "not a product index")


def _has_pit(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("pit"), dict)


def _json_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw:
        return None
    if "parsed_body" not in g:
        try:
            g.parsed_body = loads(raw)
        except ValueError:
            raise _BadBody("request body is not valid JSON") from None
    return g.parsed_body


def _options_and_ranking() -> tuple[dict[str, Any], RankingConfig, bool]:
    """(proxy options, ranking, whether the client chose them): the header replaces the deployment's options."""
    ctx = context()
    header = request.headers.get(proxy.OPTIONS_HEADER)
    try:
        options = proxy.parse_options(header) if header else dict(ctx.proxy_options or {})
        overrides = proxy.ranking_overrides(options)
        ranking = ctx.service.ranking_for(overrides) if not options.get("off") else ctx.service.default_ranking
    except ValueError as exc:
        raise RequestValidationError(str(exc)) from exc
    return options, ranking, bool(header)


def _search(index: str, full_path: str) -> Response:
    body = _json_body()
    options, ranking, client_chosen = _options_and_ranking()
    plan = proxy.plan(body, request.args, options, ranking.depth)
    if not plan.improvable:
        g.variant = "passthrough"
        return _forward(full_path, reason=plan.reason)
    query = _app_query(index, body, plan, options)
    g.variant = f"proxy:{ranking.name}"
    g.variant_label = f"proxy:{CLIENT_DEFINED_VARIANT}" if client_chosen else g.variant
    [result] = context().service.search_app([query], ranking)
    g.degraded = result.degraded
    if result.error is not None:
        return es_json(*proxy.error_of(result))
    return es_json(proxy.shape_response(query, result, ranking.name), 200)


def _app_query(index: str, body: Any, plan: proxy.ProxyPlan, options: dict[str, Any]) -> Any:
    try:
        return proxy.app_query(index, body, plan, options)
    except ValueError as exc:
        raise RequestValidationError(str(exc)) from exc


def _msearch(default_index: str | None) -> Response:
    """Hybrid items run together through the engine, the rest in one relayed ``_msearch``; ES's order."""
    start = time.perf_counter()
    ctx = context()
    try:
        items = proxy.parse_msearch(request.get_data(cache=True), loads)
    except ValueError as exc:
        raise _BadBody(str(exc)) from None
    options, ranking, client_chosen = _options_and_ranking()
    responses: list[Any] = [None] * len(items)
    hybrid: list[tuple[int, Any]] = []
    relayed: list[tuple[int, proxy.MsearchItem]] = []
    for position, item in enumerate(items):
        target = proxy.item_target(item, default_index)
        refusal = ctx.access.target_refusal(target)
        if refusal is not None:
            responses[position] = proxy.forbidden_item(refusal.message())
            continue
        plan = proxy.plan(item.body, {}, options, ranking.depth) if ctx.access.is_product_target(target) else None
        if plan is not None and plan.improvable:
            hybrid.append((position, _app_query(target or "", item.body, plan, options)))
        else:
            relayed.append((position, proxy.MsearchItem({**item.header, "index": target}, item.body)))
    if hybrid:
        g.variant = f"proxy:{ranking.name}"
        g.variant_label = f"proxy:{CLIENT_DEFINED_VARIANT}" if client_chosen else g.variant
        results = ctx.service.search_app([query for _, query in hybrid], ranking)
        g.degraded = sorted({reason for result in results for reason in result.degraded})
        for (position, query), result in zip(hybrid, results):
            responses[position] = proxy.msearch_item(query, result, ranking.name)
    if relayed:
        for position, answer in zip((p for p, _ in relayed), _relay_msearch([item for _, item in relayed])):
            responses[position] = answer
    took = int((time.perf_counter() - start) * 1000)
    return es_json({"took": took, "responses": responses}, 200)


def _relay_msearch(items: list[proxy.MsearchItem]) -> list[Any]:
    searches: list[Any] = []
    for item in items:
        searches += [item.header, item.body]
    answer = context().gateway.forward("POST", "/_msearch", request.args, searches)
    if answer.status == 200 and isinstance(answer.body, dict):
        return list(answer.body.get("responses", []))
    error = answer.body if isinstance(answer.body, dict) else proxy.es_error(answer.status, "exception",
                                                                            str(answer.body)[:200])
    return [{**error, "status": answer.status} for _ in items]


def _forward(path: str, reason: str) -> Response:
    body = _json_body()
    answer = context().gateway.forward(request.method, path, request.args, body)
    headers_out = {**ES_PRODUCT_HEADER, "X-Hybrid": f"passthrough; {reason}"}
    if request.method == "HEAD" or isinstance(answer.body, bool) or answer.body is None:
        return Response(status=answer.status, headers=headers_out)
    text = answer.body if isinstance(answer.body, str) else dumps_bytes(answer.body)
    return Response(text, answer.status, mimetype="application/json", headers=headers_out)

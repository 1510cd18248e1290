"""The Flask query service: wiring, error handling and request metrics around the blueprints.

``create_app`` builds the one ``SearchEngine`` (over the Elasticsearch gateway),
the ``SearchService`` the blueprints call, the proxy allowlist, metrics, and
registers the blueprints (``query_service.routes``: search, proxy, ops; events
when an event logger is given). Every error leaves as JSON: our own errors with
their HTTP status (and ``Retry-After`` on 503), in Elasticsearch's error shape on
the proxy's routes, anything unexpected as a generic 500 that is logged, never shown.

Access (docs/query_service.md, "Authentication and rate limits"): the admin and events
surfaces check their credentials (``query_service.auth``); every other route but the
operations probes is rate limited per client address (Flask-Limiter), 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from mmsearch import retries
from mmsearch.exceptions import MMSearchError, PayloadTooLargeError
from mmsearch.gateway import as_gateway
from query_service import proxy
from query_service.auth import require_admin
from query_service.engine import EngineOptions, SearchEngine
from query_service.jsonio import OrjsonProvider, dumps_bytes
from query_service.metrics import ServiceMetrics
from query_service.proxy_access import ProxyAccess
from query_service.ranking import RankingConfig
from query_service.routes import ops, pages, photos, search
from query_service.routes import proxy as proxy_routes
from query_service.service import SearchService, ServiceContext
from query_service.validation import ServiceLimits

log = logging.getLogger("mmsearch.query")


def create_app(settings: Any, *, es: Any = None, encoder: Any = None, experiments: Any = None,
               event_logger: Any = None, capabilities: Any = None, engine_options: EngineOptions | None = None,
               limits: ServiceLimits | None = None, default_ranking: RankingConfig | None = None,
               proxy_options: dict[str, Any] | None = None) -> Flask:
    """``es``: an Elasticsearch client or a ``SearchGateway`` (tests pass a fake); default: from settings."""
    gateway = as_gateway(es if es is not None else settings.es_client())
    limits = limits or ServiceLimits()
    if capabilities is None:
        capabilities = _detect_capabilities(gateway)
    engine = SearchEngine(gateway, encoder, settings, capabilities, engine_options)
    service = SearchService(engine, default_ranking or RankingConfig(), experiments, event_logger)
    access = ProxyAccess(settings.products_alias, tuple(getattr(settings, "proxy_indices", ())),
                         getattr(settings, "events_index", None))
    app = Flask("mmsearch-query-service")
    app.json = OrjsonProvider(app)  # keys keep their order (hits, facets); see jsonio for why orjson
    app.config["MAX_CONTENT_LENGTH"] = limits.max_body_bytes
    app.extensions["mmsearch"] = ServiceContext(settings=settings, gateway=gateway, engine=engine,
                                                metrics=ServiceMetrics(), limits=limits, service=service,
                                                access=access, encoder=encoder, proxy_options=proxy_options)
    if event_logger is not None:
        from query_service.relevance.http import events_blueprint

        app.register_blueprint(events_blueprint(event_logger))
    app.register_blueprint(search.blueprint)
    app.register_blueprint(ops.blueprint)
    app.register_blueprint(pages.blueprint)  # before the proxy: GET / is the search page for browsers
    app.register_blueprint(photos.blueprint)
    app.register_blueprint(proxy_routes.blueprint)  # last: its catch-all route must not shadow the others
    if not getattr(settings, "metrics_public", True):
        app.view_functions["ops.metrics_endpoint"] = require_admin(app.view_functions["ops.metrics_endpoint"])
    _register_error_handlers(app)
    _register_request_metrics(app)
    _install_rate_limits(app, settings)
    return app


#: Never rate limited: probes and scrapes come from the platform (load balancer, kubelet, Prometheus)
#: at a fixed pace, and a throttled readiness probe would take a healthy worker out of service.
UNLIMITED_ENDPOINTS = ("ops.healthz", "ops.readyz", "ops.metrics_endpoint")


def _install_rate_limits(app: Flask, settings: Any) -> None:
    """Per client address and route, from ``settings.rate_limit`` (off: no limiter at all)."""
    trusted_proxies = int(getattr(settings, "trusted_proxies", 0) or 0)
    if trusted_proxies:
        # Only then is X-Forwarded-For believed: its last ``trusted_proxies`` entries were written
        # by our own proxies; without them any client could name itself anyone, and dodge its limit.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies)  # type: ignore[method-assign]
    rate_limit = str(getattr(settings, "rate_limit", "off"))
    if rate_limit.strip().lower() == "off":
        return

    def remember_reset(limit: RequestLimit) -> None:
        g.rate_limit_reset_at = limit.reset_at

    limiter = Limiter(get_remote_address, app=app, default_limits=[rate_limit],
                      storage_uri=getattr(settings, "rate_limit_storage", "memory://"), on_breach=remember_reset,
                      # A storage outage (redis down) must not take search down with it: the request
                      # passes unlimited and flask-limiter logs the failure.
                      swallow_errors=True)
    for endpoint in UNLIMITED_ENDPOINTS:
        limiter.exempt(app.view_functions[endpoint])


def _detect_capabilities(gateway: Any) -> Any:
    try:
        from mmsearch.capabilities import detect_capabilities

        return detect_capabilities(getattr(gateway, "client", gateway))
    except MMSearchError as exc:  # ES may come up after us; readiness will say so
        log.warning("capability detection failed", extra={"fields": {"error": str(exc)}})
        return None


def _endpoint_label() -> str:
    """The metrics label of a request: the view's name without its blueprint (labels predate blueprints)."""
    if _is_proxy():
        return "proxy"
    return (request.endpoint or "unknown").rsplit(".", 1)[-1]


def _is_proxy() -> bool:
    return request.blueprint == proxy_routes.blueprint.name


def _error_response(error: MMSearchError) -> Response:
    if _is_proxy():
        body = proxy.es_error(error.http_status, proxy.es_error_type(error), error.message)
        response = Response(dumps_bytes(body), error.http_status, mimetype="application/json",
                            headers=proxy_routes.ES_PRODUCT_HEADER)
    else:
        response = jsonify(error.to_dict())
        response.status_code = error.http_status
    if error.http_status == 503:
        response.headers["Retry-After"] = str(retries.SERVICE_RETRY_AFTER_S)
    return response


def _rate_limited_response(limit: str) -> Response:
    """429 in the route's error shape (Elasticsearch's on the proxy), with when to come back."""
    retry_after = max(1, math.ceil(g.get("rate_limit_reset_at", time.time() + 1) - time.time()))
    message = f"rate limit exceeded ({limit} per client); retry after {retry_after} s"
    if _is_proxy():
        # The type Elasticsearch itself answers 429 with: its clients know to back off on it.
        body = proxy.es_error(429, "es_rejected_execution_exception", message)
        response = Response(dumps_bytes(body), 429, mimetype="application/json",
                            headers=proxy_routes.ES_PRODUCT_HEADER)
    else:
        response = jsonify({"error": "TooManyRequests", "message": message})
        response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    return response


def _register_error_handlers(app: Flask) -> None:
    metrics: ServiceMetrics = app.extensions["mmsearch"].metrics

    @app.errorhandler(MMSearchError)
    def _our_error(error: MMSearchError) -> Response:
        metrics.child(metrics.errors, _endpoint_label(), type(error).__name__).inc()
        return _error_response(error)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_: RequestEntityTooLarge) -> Response:
        limit = app.config["MAX_CONTENT_LENGTH"]
        return _error_response(PayloadTooLargeError("request body is larger than the limit", limit_bytes=limit))

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(error: RateLimitExceeded) -> Response:
        return _rate_limited_response(str(error.description))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        response = jsonify({"error": type(error).__name__, "message": error.description})
        response.status_code = error.code or 500
        if error.code == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error", extra={"fields": {"path": request.path}})
        metrics.child(metrics.errors, _endpoint_label(), "internal").inc()
        response = jsonify({"error": "InternalError", "message": "internal error; see the service log"})
        response.status_code = 500
        return response


def _register_request_metrics(app: Flask) -> None:
    metrics: ServiceMetrics = app.extensions["mmsearch"].metrics

    @app.before_request
    def _start_timer() -> None:
        g.start = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = _endpoint_label()
        elapsed = time.perf_counter() - g.get("start", time.perf_counter())
        metrics.child(metrics.requests, endpoint, str(response.status_code)).inc()
        metrics.child(metrics.latency, endpoint, g.get("variant_label") or g.get("variant", "-")).observe(elapsed)
        log.info("request", extra={"fields": {"method": request.method, "path": request.path,
                                              "status": response.status_code, "ms": round(elapsed * 1000, 2),
                                              "variant": g.get("variant"), "degraded": g.get("degraded")}})
        return response

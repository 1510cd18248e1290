"""The Flask query service: ``/search``, the ES-compatible ``/<index>/_search`` proxy, ops endpoints.

``create_app`` wires a ``SearchEngine`` (which does the searching), optional A/B
experiments and event logging, Prometheus metrics and JSON logs. Every error
leaves as JSON: our own errors with their HTTP status (and ``Retry-After`` on
503), anything unexpected as a generic 500 that is logged, never shown.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from mmsearch import retries
from mmsearch.exceptions import ClusterUnavailableError, MMSearchError, PayloadTooLargeError, RequestValidationError
from query_service import proxy, queries, validation
from query_service.engine import EngineOptions, LegRun, SearchEngine
from query_service.fusion import paginate
from query_service.jsonio import OrjsonProvider, dumps_bytes, loads
from query_service.metrics import CLIENT_DEFINED_VARIANT, ServiceMetrics
from query_service.ranking import LEGS, MAX_SIZE, RankingConfig, SearchRequest
from query_service.validation import ServiceLimits

log = logging.getLogger("mmsearch.query")
ES_PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}


def create_app(settings: Any, *, es: Any = None, encoder: Any = None, experiments: Any = None,
               event_logger: Any = None, capabilities: Any = None, engine_options: EngineOptions | None = None,
               limits: ServiceLimits | None = None, default_ranking: RankingConfig | None = None,
               proxy_options: dict[str, Any] | None = None) -> Flask:
    es = es if es is not None else settings.es_client()
    limits = limits or ServiceLimits()
    if capabilities is None:
        try:
            from mmsearch.capabilities import detect_capabilities

            capabilities = detect_capabilities(es)
        except MMSearchError as exc:  # ES may come up after us; readiness will say so
            log.warning("capability detection failed", extra={"fields": {"error": str(exc)}})
    engine = SearchEngine(es, encoder, settings, capabilities, engine_options)
    ranking_default = default_ranking or RankingConfig()
    metrics = ServiceMetrics()
    app = Flask("mmsearch-query-service")
    app.json = OrjsonProvider(app)  # keys keep their order (hits, facets); see jsonio for why orjson
    app.config["MAX_CONTENT_LENGTH"] = limits.max_body_bytes
    app.extensions["mmsearch"] = {"engine": engine, "metrics": metrics, "settings": settings,
                                  "experiments": experiments, "event_logger": event_logger}

    if event_logger is not None:
        try:
            from query_service.relevance.http import events_blueprint
        except ImportError:
            log.warning("event logger given but query_service.relevance.http is missing")
        else:
            app.register_blueprint(events_blueprint(event_logger))

    # -- errors ---------------------------------------------------------------------------

    def _error(error: MMSearchError) -> Response:
        response = jsonify(error.to_dict())
        response.status_code = error.http_status
        if error.http_status == 503:
            response.headers["Retry-After"] = str(retries.SERVICE_RETRY_AFTER_S)
        return response

    @app.errorhandler(MMSearchError)
    def _our_error(error: MMSearchError) -> Response:
        metrics.child(metrics.errors, request.endpoint or "unknown", type(error).__name__).inc()
        if _is_proxy():
            body = proxy.es_error(error.http_status, type(error).__name__, error.message)
            return Response(dumps_bytes(body), error.http_status, mimetype="application/json",
                            headers=ES_PRODUCT_HEADER)
        return _error(error)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_: RequestEntityTooLarge) -> Response:
        return _error(PayloadTooLargeError("request body is larger than the limit", limit_bytes=limits.max_body_bytes))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        response = jsonify({"error": type(error).__name__, "message": error.description})
        response.status_code = error.code or 500
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error", extra={"fields": {"path": request.path}})
        metrics.child(metrics.errors, request.endpoint or "unknown", "internal").inc()
        response = jsonify({"error": "InternalError", "message": "internal error; see the service log"})
        response.status_code = 500
        return response

    @app.before_request
    def _start_timer() -> None:
        g.start = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = "proxy" if _is_proxy() else (request.endpoint or "unknown")
        elapsed = time.perf_counter() - g.get("start", time.perf_counter())
        metrics.child(metrics.requests, endpoint, str(response.status_code)).inc()
        metrics.child(metrics.latency, endpoint, g.get("variant_label") or g.get("variant", "-")).observe(elapsed)
        log.info("request", extra={"fields": {"method": request.method, "path": request.path,
                                              "status": response.status_code, "ms": round(elapsed * 1000, 2),
                                              "variant": g.get("variant"), "degraded": g.get("degraded")}})
        return response

    # -- search ---------------------------------------------------------------------------

    @app.route("/search", methods=["GET", "POST"])
    def search() -> Response:
        if request.method == "GET":
            search_request, overrides, unit_id = validation.from_query_args(request.args)
        elif request.mimetype == "multipart/form-data":
            upload = request.files.get("image")
            image = upload.read(limits.max_image_bytes + 1) if upload else None
            if image is not None and len(image) > limits.max_image_bytes:
                raise PayloadTooLargeError("image is larger than the limit", limit_bytes=limits.max_image_bytes)
            search_request, overrides, unit_id = validation.from_form(request.form, image)
        else:
            body = request.get_json(silent=True)
            if body is None:
                raise RequestValidationError("send JSON (Content-Type: application/json) or multipart/form-data")
            search_request, overrides, unit_id = validation.from_json(body, limits)
        unit_id = unit_id or request.headers.get("X-User-Id")
        result = _run_search(search_request, overrides, unit_id)
        g.variant, g.degraded = result["variant"], result["degraded"]
        # The deployment's variants (default ranking, ranking file, experiments) are a bounded set;
        # a ranking the client defined in the body is counted as one label, whatever its name.
        g.variant_label = CLIENT_DEFINED_VARIANT if overrides else result["variant"]
        metrics.observe_search(result, g.variant_label)
        return jsonify(result)

    def _run_search(search_request: SearchRequest, overrides: dict[str, Any], unit_id: str | None) -> dict[str, Any]:
        assignment = experiments.assign(unit_id) if experiments is not None and unit_id and not overrides else None
        if assignment is not None and assignment.mode == "interleave":
            result = _interleave(search_request, assignment, unit_id or "")
        else:
            if assignment is not None:
                ranking = RankingConfig.from_dict({"name": assignment.variant, **assignment.rankings[assignment.variant]})
            else:
                ranking = ranking_default.with_overrides(overrides) if overrides else ranking_default
            result = engine.search(search_request, ranking)
        result["query_id"] = uuid.uuid4().hex
        if assignment is not None:
            result["experiment"] = {"id": assignment.experiment_id, "variant": assignment.variant,
                                    "mode": assignment.mode}
        if event_logger is not None:
            event_logger.log_exposure({
                "query_id": result["query_id"], "unit_id": unit_id, "query": search_request.text,
                "has_image": search_request.image is not None, "variant": result["variant"],
                "experiment_id": assignment.experiment_id if assignment else None,
                "ids": [h["_id"] for h in result["hits"]],
                "positions": list(range(1, len(result["hits"]) + 1)),
                "teams": result.get("teams"), "total": result["total"], "took_ms": result["took_ms"].get("total"),
            })
        return result

    def _interleave(search_request: SearchRequest, assignment: Any, unit_id: str) -> dict[str, Any]:
        from query_service.relevance.interleaving import team_draft

        # Both rankings must cover the requested page; SearchRequest caps size, so deep pages
        # of an interleaved list are limited to the first MAX_SIZE positions.
        deep = SearchRequest(**{**search_request.__dict__, "offset": 0,
                                "size": min(MAX_SIZE, search_request.offset + search_request.size)})
        results = {team: engine.search(deep, RankingConfig.from_dict({"name": team, **raw}))
                   for team, raw in assignment.rankings.items()}
        a, b = results["A"], results["B"]
        seed = int(hashlib.sha256(f"{unit_id}|{search_request.text}".encode()).hexdigest()[:8], 16)
        merged, teams = team_draft([h["_id"] for h in a["hits"]], [h["_id"] for h in b["hits"]], seed)
        by_id = {h["_id"]: h for h in b["hits"]} | {h["_id"]: h for h in a["hits"]}
        start, end = search_request.offset, search_request.offset + search_request.size
        return {**a, "variant": f"interleave:{assignment.experiment_id}", "hits": [by_id[i] for i in merged[start:end]],
                "teams": teams[start:end], "degraded": sorted(set(a["degraded"]) | set(b["degraded"]))}

    # -- Elasticsearch-compatible proxy --------------------------------------------------

    def _is_proxy() -> bool:
        return request.endpoint in ("proxy_search", "passthrough")

    @app.route("/<index>/_search", methods=["GET", "POST"], endpoint="proxy_search")
    def proxy_search(index: str) -> Response:
        raw = request.get_data(cache=True)
        body = None
        if raw:
            try:
                body = loads(raw)
            except ValueError:
                return _es_json(proxy.es_error(400, "parse_exception", "request body is not valid JSON"), 400)
        try:
            header = request.headers.get(proxy.OPTIONS_HEADER)
            # The header, when sent, replaces the deployment's proxy options (ranking file) wholesale.
            options = proxy.parse_options(header) if header else dict(proxy_options or {})
            ranking = ranking_default.with_overrides({k: v for k, v in options.items() if k != "off"}) \
                if options and not options.get("off") else ranking_default
        except (ValueError, RequestValidationError) as exc:
            return _es_json(proxy.es_error(400, "illegal_argument_exception", str(exc)), 400)
        plan = proxy.plan(body, request.args, options, ranking.depth)
        if not plan.improvable:
            g.variant = "passthrough"
            return _forward(f"/{index}/_search", reason=plan.reason)
        g.variant = f"proxy:{ranking.name}"
        g.variant_label = f"proxy:{CLIENT_DEFINED_VARIANT}" if header else g.variant
        return _es_json(*_hybrid_proxy(index, body or {}, plan, ranking))

    def _hybrid_proxy(index: str, body: dict[str, Any], plan: proxy.ProxyPlan,
                      ranking: RankingConfig) -> tuple[dict[str, Any], int]:
        """(ES-shaped body, HTTP status) of a proxied search run as hybrid."""
        start = time.perf_counter()
        degraded: list[str] = []
        text_request = SearchRequest(text=plan.text)
        vectors = engine.encode(text_request, ranking, degraded)
        weights = {leg: w for leg, w in ranking.legs.items() if w > 0 and LEGS[leg][0] == "text"}
        bodies: dict[str, dict[str, Any]] = {}
        if "bm25" in weights:
            bodies["bm25"] = proxy.lexical_body(body, ranking.depth)
        presentation = proxy.presentation_of(body)
        for leg in weights:
            field_name = LEGS[leg][1]
            if field_name and "text" in vectors:
                bodies[leg] = proxy.knn_leg_body(field_name, vectors["text"], plan.knn_filter, ranking.depth,
                                                 ranking.num_candidates, presentation)
        responses = engine._msearch(bodies, index=index)
        run = LegRun()
        index_of: dict[str, str] = {}
        extras: dict[str, dict[str, Any]] = {}
        lexical: dict[str, Any] = {}
        for leg, response in zip(bodies, responses):
            reason = queries.leg_error_reason(response)
            if reason is not None:
                if leg == "bm25":
                    status = int(response.get("status") or 500)
                    if 400 <= status < 500:  # the app's own request is invalid: answer as Elasticsearch would
                        return {"error": response["error"], "status": status}, status
                    raise ClusterUnavailableError("the lexical leg failed", reason=reason)
                degraded.append(f"leg:{leg}: {reason}")
                continue
            if leg == "bm25":
                lexical = response
            ranked, sources = queries.parse_leg_response(response)
            for doc_id, source in sources.items():  # first leg's copy wins, as before
                run.sources.setdefault(doc_id, source)
            for doc_id, hit_extra in proxy.hit_extras(response).items():  # the lexical leg's highlight wins
                extras.setdefault(doc_id, hit_extra)
            index_of.update({h["_id"]: h["_index"] for h in response["hits"]["hits"] if h["_id"] not in index_of})
            run.legs[leg] = ranked
            run.weights[leg] = weights[leg]
        fused = engine.fuse_run(run, ranking)
        page = paginate(fused, plan.offset, plan.size)
        g.degraded = degraded
        took = int((time.perf_counter() - start) * 1000)
        return proxy.shape_response(index, page, run.sources, index_of, lexical, len(fused), took,
                                    {"variant": ranking.name, "legs": sorted(run.legs), "degraded": degraded},
                                    max_score=fused[0].score if fused else None, extras=extras), 200

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD"], endpoint="passthrough")
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "HEAD"], endpoint="passthrough")
    def passthrough(path: str) -> Response:
        # Read-only: the service holds Elasticsearch credentials and faces shoppers, so it must
        # never relay writes, deletes or admin calls (PUT /search would even create an index).
        if not proxy.is_read_only(request.method, "/" + path):
            return _es_json(proxy.es_error(405, "method_not_allowed",
                                           f"{request.method} /{path} is not relayed by the search proxy"), 405)
        return _forward("/" + path, reason="not a search")

    def _forward(path: str, reason: str) -> Response:
        from elasticsearch import ApiError, TransportError

        raw = request.get_data(cache=True) or None
        headers = {"accept": "application/json"}
        if raw:
            headers["content-type"] = "application/json"
        try:
            response = es.perform_request(request.method, path, params=dict(request.args), headers=headers,
                                          body=loads(raw) if raw else None)
            status, payload = response.meta.status, response.body
        except ApiError as exc:
            status, payload = exc.meta.status, exc.body
        except TransportError as exc:
            raise ClusterUnavailableError("Elasticsearch is unreachable", error=str(exc)[:300]) from exc
        except ValueError:
            return _es_json(proxy.es_error(400, "parse_exception", "request body is not valid JSON"), 400)
        headers_out = {**ES_PRODUCT_HEADER, "X-Hybrid": f"passthrough; {reason}"}
        if request.method == "HEAD" or isinstance(payload, bool):
            return Response(status=status, headers=headers_out)
        text = payload if isinstance(payload, str) else dumps_bytes(payload)
        return Response(text, status, mimetype="application/json", headers=headers_out)

    def _es_json(body: dict[str, Any], status: int) -> Response:
        return Response(dumps_bytes(body), status, mimetype="application/json", headers=ES_PRODUCT_HEADER)

    # -- operations -----------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        checks: dict[str, Any] = {"model_loaded": encoder is not None}
        try:
            es.cluster.health(timeout="2s")
            checks["es_reachable"] = True
            aliases = es.indices.get_alias(name=settings.products_alias).body
            index = next(iter(aliases))
            checks["alias"] = index
            meta = es.indices.get_mapping(index=index).body[index]["mappings"].get("_meta", {})
            checks["index_model_identity"] = meta.get("model_identity")
        except Exception as exc:  # every failure mode here just means "not ready"
            checks.setdefault("es_reachable", False)
            checks["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        checks["model_identity"] = getattr(encoder, "identity", None)
        ready = bool(checks["model_loaded"] and checks.get("alias")
                     and checks.get("index_model_identity") == checks["model_identity"])
        if checks.get("alias") and not ready and checks["model_loaded"]:
            checks["error"] = "the index was built with a different model than the one loaded"
        response = jsonify({"ready": ready, "checks": checks})
        response.status_code = 200 if ready else 503
        return response

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(validation.openapi_document())

    return app

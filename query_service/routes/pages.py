"""The pages: search (``/``), ranking workbench (``/compare``), ops (``/ops``) and their JSON endpoints.

Plain HTML, CSS and JS from ``query_service/web`` (no build step). Every page response
carries a Content-Security-Policy without inline script, so the scripts live in static
files and page data travels in a ``<script type="application/json">`` block (data, never
executed); the scripts write user text with ``textContent`` only.

``GET /`` is shared with the Elasticsearch-compatible surface: Elasticsearch clients call
it for the cluster's info (and ``HEAD /`` to ping). Only a request that prefers HTML (a
browser) gets the page; every other one is handed to the proxy's view exactly as if it
had been routed there, so its errors, metrics and headers stay the proxy's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_from_directory
from werkzeug.datastructures import MIMEAccept

from mmsearch.exceptions import RequestValidationError
from query_service import ops_data, overlap, workbench
from query_service.auth import require_admin
from query_service.fusion import COMBINATIONS, METHODS, NORMALIZATIONS
from query_service.ranking import FACET_FIELDS, LEGS
from query_service.service import context

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_DIR = WEB_DIR / "static"
#: Short: the files are not content-hashed (no build step), so a deploy must show within minutes.
STATIC_MAX_AGE_S = 300

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
#: What the proxy answers ``GET /`` with; a browser asks for HTML above these.
ES_MEDIA_TYPES = ("application/json", "application/vnd.elasticsearch+json")

blueprint = Blueprint("pages", __name__, template_folder=str(WEB_DIR / "templates"))


@blueprint.after_request
def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def prefers_html(accept: MIMEAccept) -> bool:
    """A browser's Accept: text/html named explicitly and ranked above every JSON type Elasticsearch answers."""
    named = any(value == "text/html" and quality > 0 for value, quality in accept)
    return named and accept.quality("text/html") > max(accept.quality(kind) for kind in ES_MEDIA_TYPES)


def _page(template: str, active: str, **data: Any) -> Response:
    response = current_app.make_response(render_template(template, page_data=data, active=active))
    response.headers["Cache-Control"] = "no-cache"
    return response


def _to_proxy() -> Any:
    """Hand ``GET|HEAD /`` to the proxy's view as if routed there (its blueprint, error shape and metrics)."""
    rule = next(r for r in current_app.url_map.iter_rules() if r.endpoint == "proxy.relay" and r.rule == "/")
    request.url_rule, request.view_args = rule, {"path": ""}
    return current_app.view_functions["proxy.relay"](path="")


@blueprint.get("/")
def search_page() -> Any:
    if not prefers_html(request.accept_mimetypes):
        return _to_proxy()
    return _page("search.html", "search", facets=list(FACET_FIELDS), legs=list(LEGS), methods=list(METHODS),
                 normalizations=list(NORMALIZATIONS), combinations=list(COMBINATIONS), modes=workbench.MODES,
                 events=context().service.event_logger is not None)


@blueprint.get("/compare")
def compare_page() -> Response:
    return _page("compare.html", "compare", variants=workbench.named_rankings(context().service))


@blueprint.get("/ops")
def ops_page() -> Response:
    return _page("ops.html", "ops")


@blueprint.get("/ui/<path:filename>")
def static_file(filename: str) -> Response:
    # send_from_directory refuses paths outside the folder (werkzeug.security.safe_join).
    return send_from_directory(STATIC_DIR, filename, max_age=STATIC_MAX_AGE_S)


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise RequestValidationError("send a JSON body (Content-Type: application/json)")
    return body


@blueprint.post("/compare/run")
def compare_run() -> Response:
    ctx = context()
    return jsonify(workbench.compare(ctx.service, _json_body(), ctx.limits))


@blueprint.post("/compare/overlap")
def compare_overlap() -> Response:
    body = _json_body()
    if not isinstance(body, dict):
        raise RequestValidationError("send {\"left\": [ids], \"right\": [ids], \"p\": 0.9}")
    left, right = body.get("left"), body.get("right")
    if not all(isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in (left, right)):
        raise RequestValidationError("send {\"left\": [ids], \"right\": [ids], \"p\": 0.9}")
    p = body.get("p", overlap.DEFAULT_P)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p < 1:
        raise RequestValidationError("p must be a number in (0, 1)")
    return jsonify(overlap.compare_ids(left, right, float(p)))


@blueprint.post("/compare/eval")
def compare_eval() -> Response:
    body = _json_body()
    if not isinstance(body, dict):
        raise RequestValidationError("send {per_query, baseline, candidate, metric, judgments, variants}")
    texts = {name: body.get(name) for name in ("baseline", "candidate", "metric", "judgments", "variants")}
    if not all(value is None or isinstance(value, str) for value in texts.values()):
        raise RequestValidationError("baseline, candidate, metric, judgments and variants are strings")
    deltas = workbench.eval_deltas(body.get("per_query"), texts["baseline"], texts["candidate"], texts["metric"],
                                   workbench.queries_of_judgments(texts["judgments"]))
    return jsonify({**deltas, "variants": workbench.parse_variants(texts["variants"])})


@blueprint.get("/ops/data")
@require_admin
def ops_json() -> Response:
    response = jsonify(ops_data.snapshot(context()))
    response.headers["Cache-Control"] = "no-store"
    return response

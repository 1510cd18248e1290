"""Operations endpoints: liveness, readiness (model identity vs the served index), metrics, OpenAPI."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from query_service import openapi as openapi_spec
from query_service.service import context

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    ready, checks = context().service.readiness()
    response = jsonify({"ready": ready, "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@blueprint.get("/metrics")
def metrics_endpoint() -> Response:
    return Response(context().metrics.render(), mimetype="text/plain; version=0.0.4")


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_spec.openapi_document())

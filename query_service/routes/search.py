"""``/search``: parse the shopper's request (GET, JSON or a multipart photo upload), answer JSON."""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, jsonify, request

from mmsearch.exceptions import PayloadTooLargeError, RequestValidationError
from query_service import auth, validation
from query_service.metrics import CLIENT_DEFINED_VARIANT
from query_service.service import context

blueprint = Blueprint("search", __name__)


@blueprint.route("/search", methods=["GET", "POST"])
def search() -> Response:
    ctx = context()
    limits = ctx.limits
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
    result = ctx.service.search(search_request, overrides, unit_id)
    g.variant, g.degraded = result["variant"], result["degraded"]
    # The deployment's variants (default ranking, ranking file, experiments) are a bounded set;
    # a ranking the client defined in the body is counted as one label, whatever its name.
    g.variant_label = CLIENT_DEFINED_VARIANT if overrides else result["variant"]
    ctx.metrics.observe_search(result, g.variant_label)
    ticket_key = _event_ticket_key(ctx.settings) if ctx.service.event_logger is not None else None
    if ticket_key is not None:  # lets the shopper's browser report events on these results (auth.py)
        result["event_ticket"] = auth.make_event_ticket(ticket_key, result["query_id"], time.time())
    return jsonify(result)


def _event_ticket_key(settings: object) -> bytes | None:
    return auth.event_ticket_key(getattr(settings, "event_ticket_secret", None),
                                 getattr(settings, "events_token", None))

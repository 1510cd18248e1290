"""``POST /events``: clicks, add-to-cart and purchases, authenticated, validated, then buffered for ES.

Credentials (``query_service.auth.check_events``): the events bearer token, or a ``ticket`` per
event (the ``event_ticket`` that ``/search`` answered with the event's ``query_id``). The
ticket is checked, then dropped: it is a credential, not event data.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request

from mmsearch.exceptions import RequestValidationError
from query_service import auth
from query_service.service import context

EVENT_TYPES = ("click", "add_to_cart", "purchase")
MAX_EVENTS_PER_REQUEST = 500
#: ``ticket``: the event ticket of the event's query_id (query_service.auth), not stored.
EVENT_STRING_FIELDS = ("query_id", "doc_id", "unit_id", "experiment_id", "variant", "team", "ticket")


def validate_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise RequestValidationError("each event must be an object")
    unknown = set(event) - {"type", "position", "ts", *EVENT_STRING_FIELDS}
    if unknown:
        raise RequestValidationError("unknown event fields", unknown=sorted(unknown))
    if event.get("type") not in EVENT_TYPES:
        raise RequestValidationError("type must be one of " + ", ".join(EVENT_TYPES), got=str(event.get("type")))
    for name in ("query_id", "doc_id"):
        if not isinstance(event.get(name), str) or not event[name] or len(event[name]) > 200:
            raise RequestValidationError(f"{name} is required (a string of at most 200 chars)")
    for name in EVENT_STRING_FIELDS:
        if name in event and event[name] is not None and (not isinstance(event[name], str) or len(event[name]) > 200):
            raise RequestValidationError(f"{name} must be a string of at most 200 chars")
    position = event.get("position")
    if position is not None and (not isinstance(position, int) or isinstance(position, bool) or not 1 <= position <= 1000):
        raise RequestValidationError("position must be an integer in [1, 1000]")
    clean = dict(event)
    if clean.get("ts") is not None:
        clean["ts"] = normalise_ts(clean["ts"])
    return clean


#: Epoch milliseconds accepted for ``ts``: 1970 up to 2100 (anything else is a client's mistake).
MAX_EPOCH_MS = 4_102_444_800_000


def normalise_ts(value: Any) -> str:
    """``ts`` as the ISO-8601 UTC string the events index's date field takes, or a 400.

    Checked here, not left to Elasticsearch: ES would refuse a bad date only when the buffer is
    flushed, long after the client was told 202, and the event would be lost (schemathesis
    found ts "abc" and "2000-02-30T00:00:00Z" doing exactly that).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (math.isfinite(value) and 0 <= value <= MAX_EPOCH_MS):
            raise RequestValidationError("ts in epoch milliseconds must be between 1970 and 2100")
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc).isoformat()
    if not isinstance(value, str) or len(value) > 64:
        raise RequestValidationError("ts must be an ISO-8601 date-time string or epoch milliseconds")
    try:
        text = value.strip().upper()  # RFC 3339 allows a lowercase t and z
        parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise RequestValidationError("ts must be an ISO-8601 date-time, e.g. 2026-12-02T13:00:00Z",
                                     got=value[:64]) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    try:
        return parsed.astimezone(dt.timezone.utc).isoformat()
    except OverflowError:  # an offset that pushes year 1 or 9999 out of range
        raise RequestValidationError("ts is out of range", got=value[:64]) from None


def events_blueprint(event_logger: Any) -> Blueprint:
    blueprint = Blueprint("events", __name__)

    @blueprint.post("/events")
    def post_events() -> Any:
        settings = context().settings
        header, now = request.headers.get("Authorization"), time.time()
        events_token = getattr(settings, "events_token", None)
        ticket_key = auth.event_ticket_key(getattr(settings, "event_ticket_secret", None), events_token)
        # Unconfigured, or a bearer token: judged before the body is read (a wrong token is 401, not a 400).
        if auth.bearer_token(header) is not None or (not events_token and ticket_key is None):
            denied = auth.check_events(header, (), events_token, ticket_key, now)
            if denied is not None:
                return auth.refusal(*denied, "events")
        body = request.get_json(silent=True)
        events = body if isinstance(body, list) else [body]
        if body is None or not events:
            raise RequestValidationError("send a JSON event object or a list of them")
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise RequestValidationError(f"at most {MAX_EVENTS_PER_REQUEST} events per request")
        clean = [validate_event(e) for e in events]  # all or nothing: no half-accepted batches
        denied = auth.check_events(header, clean, events_token, ticket_key, now)
        if denied is not None:
            return auth.refusal(*denied, "events")
        for event in clean:
            event.pop("ticket", None)
            event_logger.log_event(event)
        response = jsonify({"accepted": len(clean)})
        response.status_code = 202
        return response

    return blueprint

"""Who may use the query service's admin and write surfaces.

Admin (the /ops page's data, and ``/metrics`` unless ``metrics_public``): a request is let
through when it carries ``Authorization: Bearer <token>`` equal to ``Settings.admin_token``
(``MMSEARCH_ADMIN_TOKEN``). Without a configured token the surface is closed (403), never
open: a deployment that forgot the setting must not show its indices and experiments to
shoppers.

Events (``POST /events``) take either credential:

- ``Authorization: Bearer <Settings.events_token>`` (``MMSEARCH_EVENTS_TOKEN``): a storefront
  backend relaying its shoppers' events;
- an *event ticket* per event, in its ``ticket`` field: ``/search`` hands one out with each
  ``query_id`` (``event_ticket``), so the built-in page's click beacons, which cannot hold a
  server token, can report clicks on the results they were shown, and only those, for
  ``EVENT_TICKET_TTL_S``. A ticket is ``<expiry unix seconds>.<HMAC-SHA256(key, expiry, query_id)>``
  (base64url); the key is ``Settings.event_ticket_secret`` (``MMSEARCH_EVENT_SECRET``) or, without
  one, derived from the events token.

With neither configured, /events is closed (403), like the admin surface. Tokens and MACs are
compared in constant time (``hmac.compare_digest``, on bytes) and never logged or echoed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from flask import Response, jsonify, request

from query_service.service import context

F = TypeVar("F", bound=Callable[..., Any])

NOT_CONFIGURED = ("the admin surface is disabled: no admin token is configured "
                  "(set MMSEARCH_ADMIN_TOKEN to enable it)")
MISSING = "send the admin token as 'Authorization: Bearer <token>'"
WRONG = "the admin token is not valid"

EVENTS_NOT_CONFIGURED = ("POST /events is disabled: no events credential is configured (set MMSEARCH_EVENTS_TOKEN "
                         "for a backend's bearer token, or MMSEARCH_EVENT_SECRET for the search page's event tickets)")
EVENTS_MISSING = ("send 'Authorization: Bearer <events token>', or each event's 'ticket' (the event_ticket "
                  "that /search answered with its query_id)")
EVENTS_WRONG_TOKEN = "the events token is not valid"
EVENTS_BAD_TICKET = "an event's ticket is missing, not valid for its query_id, or expired: search again"

#: How long a search's event ticket is good for: a shopper clicks within minutes of a search, and an
#: hour covers a tab left open; later events (a purchase days after) come from a backend, with the token.
EVENT_TICKET_TTL_S = 3600
#: Domain separation: the ticket key derived from the events token is not the token, and is useless elsewhere.
_DERIVED_KEY_LABEL = b"mmsearch event tickets v1"


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def check_admin(header: str | None, configured: str | None) -> tuple[int, str] | None:
    """None when allowed, else (HTTP status, message): 403 unconfigured, 401 missing or wrong token."""
    if not configured:
        return 403, NOT_CONFIGURED
    token = bearer_token(header)
    if token is None:
        return 401, MISSING
    if not same_secret(token, configured):
        return 401, WRONG
    return None


def same_secret(given: str, configured: str) -> bool:
    """Constant-time equality; as bytes because compare_digest on str refuses non-ASCII."""
    return hmac.compare_digest(given.encode("utf-8"), configured.encode("utf-8"))


def refusal(status: int, message: str, surface: str = "admin") -> Response:
    """The 401 (with ``WWW-Authenticate``) or 403 of a surface ("admin" or "events")."""
    kind = surface.capitalize()
    response = jsonify({"error": f"{kind}Forbidden" if status == 403 else f"{kind}Unauthorized", "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="mmsearch-{surface}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# -- event tickets ----------------------------------------------------------------------------------


def event_ticket_key(event_ticket_secret: str | None, events_token: str | None) -> bytes | None:
    """The HMAC key of event tickets: the configured secret, else one derived from the events token, else None."""
    if event_ticket_secret:
        return event_ticket_secret.encode("utf-8")
    if events_token:
        return hmac.new(events_token.encode("utf-8"), _DERIVED_KEY_LABEL, hashlib.sha256).digest()
    return None


def _ticket_mac(key: bytes, query_id: str, expires: int) -> str:
    message = f"{expires}\n{query_id}".encode("utf-8")  # the newline: no query_id can shift into the expiry
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_event_ticket(key: bytes, query_id: str, now: float, ttl_s: int = EVENT_TICKET_TTL_S) -> str:
    """The ticket that lets events name ``query_id`` until ``now + ttl_s``."""
    expires = int(now) + ttl_s
    return f"{expires}.{_ticket_mac(key, query_id, expires)}"


def verify_event_ticket(key: bytes, query_id: str, ticket: Any, now: float) -> bool:
    """True when ``ticket`` was made with ``key`` for ``query_id`` and has not expired."""
    if not isinstance(ticket, str) or not isinstance(query_id, str):
        return False
    expiry_text, dot, mac = ticket.partition(".")
    if not dot or not expiry_text.isascii() or not expiry_text.isdigit() or len(expiry_text) > 12:
        return False
    expires = int(expiry_text)
    # The MAC is checked even for an expired ticket, so a probe cannot time which part failed.
    valid = hmac.compare_digest(mac.encode("utf-8"), _ticket_mac(key, query_id, expires).encode("utf-8"))
    return valid and now <= expires


def check_events(header: str | None, events: Iterable[Mapping[str, Any]], events_token: str | None,
                 ticket_key: bytes | None, now: float) -> tuple[int, str] | None:
    """None when ``POST /events`` may store ``events``, else (HTTP status, message).

    A bearer header is the backend's credential and is judged alone (a wrong token is 401, not a
    fall-back to tickets); without one, every event needs a valid ticket for its own query_id.
    """
    if not events_token and ticket_key is None:
        return 403, EVENTS_NOT_CONFIGURED
    token = bearer_token(header)
    if token is not None:
        return None if events_token and same_secret(token, events_token) else (401, EVENTS_WRONG_TOKEN)
    if ticket_key is None:
        return 401, EVENTS_MISSING
    events = list(events)
    if not all("ticket" in event for event in events):
        return 401, EVENTS_MISSING
    if not all(verify_event_ticket(ticket_key, event.get("query_id"), event.get("ticket"), now) for event in events):
        return 401, EVENTS_BAD_TICKET
    return None


def require_admin(view: F) -> F:
    """Flask view decorator: the view runs only with the configured admin bearer token."""

    @functools.wraps(view)
    def guarded_view(*args: Any, **kwargs: Any) -> Any:
        denied = check_admin(request.headers.get("Authorization"),
                             getattr(context().settings, "admin_token", None))
        if denied is not None:
            return refusal(*denied)
        return view(*args, **kwargs)

    return guarded_view  # type: ignore[return-value]

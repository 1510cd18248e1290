"""The admin bearer token of the query service's read-only admin surface (the /ops page's data).

A request is let through when it carries ``Authorization: Bearer <token>`` equal to
``Settings.admin_token`` (``MMSEARCH_ADMIN_TOKEN``). Without a configured token the
surface is closed (403), never open: a deployment that forgot the setting must not
show its indices and experiments to shoppers. The token is compared in constant time
(``hmac.compare_digest``) and never logged or echoed.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, jsonify, request

from query_service.service import context

F = TypeVar("F", bound=Callable[..., Any])

NOT_CONFIGURED = ("the admin surface is disabled: no admin token is configured "
                  "(set MMSEARCH_ADMIN_TOKEN to enable it)")
MISSING = "send the admin token as 'Authorization: Bearer <token>'"
WRONG = "the admin token is not valid"


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
    # Both as bytes: compare_digest on str refuses non-ASCII, and a token may hold any character.
    if not hmac.compare_digest(token.encode("utf-8"), configured.encode("utf-8")):
        return 401, WRONG
    return None


def refusal(status: int, message: str) -> Response:
    response = jsonify({"error": "AdminForbidden" if status == 403 else "AdminUnauthorized", "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mmsearch-admin"'
    response.headers["Cache-Control"] = "no-store"
    return response


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

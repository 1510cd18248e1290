"""JSON in and out of the service with orjson.

Why: a ``/search`` response carries a page of hits, facets and timings, and a
proxied request may carry a large DSL body; the standard-library ``json`` was a
measurable share of the service's own overhead per request (docs/benchmarks.md,
"Query latency: what changed"). Behaviour differences from Flask's default
provider, on purpose: NaN and Infinity are rejected on input (invalid JSON) and
written as ``null``; keys keep their insertion order (hits and facets are ordered).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from flask.json.provider import JSONProvider

from mmsearch import jsoncodec


def _default(value: Any) -> Any:
    # numpy is handled by orjson itself; these cover the standard-library fallback (jsoncodec).
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_bytes(value: Any) -> bytes:
    return jsoncodec.dumps(value, default=_default)


def loads(data: str | bytes) -> Any:
    """Parse JSON; invalid input (and NaN/Infinity) raises ``ValueError``."""
    return jsoncodec.loads(data)


class OrjsonProvider(JSONProvider):
    """Flask's ``app.json``: ``jsonify``, ``request.get_json`` and ``Response.json`` go through orjson."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps_bytes(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        return self._app.response_class(dumps_bytes(self._prepare_response_obj(args, kwargs)),
                                        mimetype="application/json")

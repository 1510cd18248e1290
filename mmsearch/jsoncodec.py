"""Fast JSON with a safe fallback: orjson first, the standard library when orjson refuses.

Why both: orjson is several times faster (measured: docs/benchmarks.md, "Query latency:
what changed") but refuses integers beyond 64 bits, which are valid JSON and can arrive
from a client (``"size": 1e20`` written as an integer) or from Elasticsearch
(``unsigned_long``). Refusing them would turn a 400 into a 500. The fallback only runs on
the error path, so the fast path costs nothing extra.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def float_list(vector: Any) -> list[float]:
    """A vector (numpy array or sequence of numbers) as JSON-ready Python floats.

    ``tolist()`` gives the same values as a ``float(x)`` loop, about 4x faster for a 256-d
    float32 vector; the query service builds up to four per request, the indexer one or two per
    document.
    """
    return vector.tolist() if hasattr(vector, "tolist") else [float(x) for x in vector]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError: e.g. an integer beyond 64 bits
        return json.dumps(value, default=default, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON; invalid input (and NaN/Infinity, which JSON does not have) raises ``ValueError``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(bytes(data) if isinstance(data, memoryview) else data, parse_constant=_reject_constant)

"""orjson (de)serializers for the Elasticsearch client.

Why: every search sends query vectors (256 floats per kNN leg) and parses up to
``depth`` hits per leg; the standard-library ``json`` spends ~0.25 ms serialising a
three-leg ``_msearch`` body and more parsing its response, on every request. orjson
does both several times faster (measured: docs/benchmarks.md, "Query latency: what
changed"). The behaviour is the client's own: these subclass its serializers and
only swap the JSON calls, keeping their ``default`` hook (dates, UUIDs, Decimals).
"""

from __future__ import annotations

from typing import Any

from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

from mmsearch import jsoncodec  # orjson, falling back to the standard library where orjson refuses


class OrjsonJsonSerializer(JsonSerializer):
    def json_dumps(self, data: Any) -> bytes:
        return jsoncodec.dumps(data, default=self.default)

    def json_loads(self, data: bytes) -> Any:
        return jsoncodec.loads(data)


class OrjsonNdjsonSerializer(NdjsonSerializer):
    def json_dumps(self, data: Any) -> bytes:
        return jsoncodec.dumps(data, default=self.default)

    def json_loads(self, data: bytes) -> Any:
        return jsoncodec.loads(data)


def client_serializers() -> dict[str, Any]:
    """``serializers=`` for ``Elasticsearch(...)``; the client maps the compatibility mimetypes to these too."""
    return {JsonSerializer.mimetype: OrjsonJsonSerializer(), NdjsonSerializer.mimetype: OrjsonNdjsonSerializer()}

"""orjson on both JSON paths: the Elasticsearch client's (de)serializers and the Flask provider."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from flask import Flask, jsonify, request

from mmsearch.config import Settings
from query_service.jsonio import OrjsonProvider


def test_client_serializers_are_orjson_and_take_numpy_vectors() -> None:
    serializers = Settings.load(environ={}, es_hosts="http://127.0.0.1:9200").client_kwargs()["serializers"]
    body = {"query": {"knn": {"field": "v", "query_vector": np.asarray([0.5, -1.25], dtype=np.float32), "k": 3}},
            "ts": dt.datetime(2026, 1, 2, 3, 4, 5)}
    # The standard-library serializer raises on a numpy array; orjson writes it as a list.
    encoded = serializers["application/json"].dumps(body)
    assert serializers["application/json"].loads(encoded) == {
        "query": {"knn": {"field": "v", "query_vector": [0.5, -1.25], "k": 3}}, "ts": "2026-01-02T03:04:05"}
    ndjson = serializers["application/x-ndjson"].dumps([{"index": "a"}, {"size": np.int64(2)}])
    assert ndjson == b'{"index":"a"}\n{"size":2}\n'


def test_client_built_from_settings_uses_them_for_compatibility_mimetypes_too() -> None:
    from mmsearch.serializers import OrjsonJsonSerializer, OrjsonNdjsonSerializer

    client = Settings.load(environ={}, es_hosts="http://127.0.0.1:9200").es_client()
    registry = client.transport.serializers.serializers
    assert isinstance(registry["application/vnd.elasticsearch+json"], OrjsonJsonSerializer)
    assert isinstance(registry["application/vnd.elasticsearch+x-ndjson"], OrjsonNdjsonSerializer)


def _app() -> Flask:
    app = Flask("t")
    app.json = OrjsonProvider(app)

    @app.post("/echo")
    def echo():  # type: ignore[no-untyped-def]
        body = request.get_json(silent=True)
        if body is None:
            return jsonify({"error": "bad json"}), 400
        return jsonify({"z": 1, "a": body, "nan": math.nan, "vec": np.asarray([1.5], dtype=np.float32), 3: "k"})

    return app


def test_flask_provider_keeps_key_order_and_writes_valid_json() -> None:
    response = _app().test_client().post("/echo", json={"b": 2, "a": 1})
    assert response.status_code == 200 and response.mimetype == "application/json"
    # Insertion order kept (hits and facets are ordered), NaN as null, numpy and int keys serialised.
    assert response.data == b'{"z":1,"a":{"b":2,"a":1},"nan":null,"vec":[1.5],"3":"k"}'


def test_flask_provider_rejects_invalid_json_and_nan_input() -> None:
    client = _app().test_client()
    for raw in (b"{", b'{"a": NaN}', b"\xff"):
        response = client.post("/echo", data=raw, content_type="application/json")
        assert response.status_code == 400, raw


def test_integers_beyond_64_bits_fall_back_to_the_standard_library() -> None:
    """orjson refuses them; they are valid JSON (a client's absurd size, an ES unsigned_long)."""
    from mmsearch import jsoncodec

    assert jsoncodec.loads(b'{"size": 100000000000000000000}') == {"size": 10**20}
    assert jsoncodec.dumps({"size": 10**20, "t": "ä"}) == '{"size":100000000000000000000,"t":"ä"}'.encode()
    serializers = Settings.load(environ={}, es_hosts="http://127.0.0.1:9200").client_kwargs()["serializers"]
    assert serializers["application/json"].loads(serializers["application/json"].dumps({"v": 2**64})) == {"v": 2**64}


def test_nan_and_garbage_are_rejected_on_both_paths() -> None:
    import pytest

    from mmsearch import jsoncodec

    for raw in (b'{"a": NaN}', b'{"a": Infinity, "b": 100000000000000000000}', b"{", b"\xff"):
        with pytest.raises(ValueError):
            jsoncodec.loads(raw)


def test_the_fallback_path_still_writes_numpy_values() -> None:
    from query_service.jsonio import dumps_bytes

    # A big integer forces the standard-library path; numpy values must survive it too.
    assert dumps_bytes({"n": 10**20, "v": np.asarray([1.5], dtype=np.float32), "s": np.int64(3)}) == \
        b'{"n":100000000000000000000,"v":[1.5],"s":3}'


def test_vectors_become_the_same_floats_from_numpy_or_a_list() -> None:
    import numpy as np

    from mmsearch.jsoncodec import float_list

    vector = np.array([0.1, -0.25, 1e-8], dtype=np.float32)
    as_list = float_list(vector)
    assert as_list == [float(x) for x in vector] and all(type(x) is float for x in as_list)
    assert float_list([1, 0.5]) == [1.0, 0.5]

"""The engine's parser loader: vocabulary read and type names encoded once, warm-up retried on failure."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmsearch.exceptions import ClusterUnavailableError
from query_service.understander import Understander


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.eye(len(texts), 4, dtype=np.float32)


def vocabulary_response(_: dict[str, Any]) -> dict[str, Any]:
    buckets = {"article_type": ["Shirts", "Watches"], "base_colour": ["Black"], "gender": ["Men"]}
    return {"aggregations": {name: {"buckets": [{"key": v} for v in values]} for name, values in buckets.items()}}


def test_warm_reads_the_vocabulary_and_encodes_the_types_once() -> None:
    encoder = CountingEncoder()
    understander = Understander(vocabulary_response, encoder, ttl_s=60)
    assert understander.warm()
    parsed = understander.parse("black shirts", None)
    assert parsed is not None and parsed.attributes["article_type"].values == ("Shirts",)
    assert encoder.calls == [["Shirts", "Watches"]]  # the query reused the warm parser


def test_a_failed_warm_up_leaves_the_read_to_the_first_query() -> None:
    calls = {"n": 0}

    def flaky(body: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClusterUnavailableError("down")
        return vocabulary_response(body)

    understander = Understander(flaky, CountingEncoder(), ttl_s=600)
    assert not understander.warm()
    assert understander.parse("watches", None) is not None  # not held back for the 600 s ttl
    assert calls["n"] == 2

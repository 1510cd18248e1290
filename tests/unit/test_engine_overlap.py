"""The BM25 leg leaves before the query is encoded (EngineOptions.overlap_lexical), without changing results."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from mmsearch.config import Settings
from mmsearch.exceptions import ClusterUnavailableError
from query_service.engine import EngineOptions, SearchEngine
from query_service.ranking import RankingConfig, SearchRequest

TEXT_LEGS = RankingConfig(name="text", legs={"bm25": 1.0, "text_text": 1.0, "text_image": 1.0})


def _hits(*pairs: tuple[str, float]) -> dict[str, Any]:
    return {"took": 1, "timed_out": False, "hits": {"hits": [{"_index": "p-v1", "_id": d, "_score": s}
                                                               for d, s in pairs]}}


class KeyedES:
    """Answers each search by what it is (BM25, or kNN on a field), whatever call it arrives in; thread-safe."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()
        self.bm25_sent = threading.Event()

    @staticmethod
    def kind(body: dict[str, Any]) -> str:
        return body["query"]["knn"]["field"] if "knn" in body["query"] else "bm25"

    def options(self, **_: Any) -> KeyedES:
        return self

    def msearch(self, searches: list[dict[str, Any]]) -> dict[str, Any]:
        kinds = [self.kind(body) for body in searches[1::2]]
        with self.lock:
            self.calls.append(kinds)
        if "bm25" in kinds:
            self.bm25_sent.set()
        answers = [self.answers[k] for k in kinds]
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return {"responses": answers}

    def search(self, index: str, **body: Any) -> dict[str, Any]:  # the page fetch
        ids = body["query"]["ids"]["values"]
        return {"hits": {"hits": [{"_id": d, "_score": 1.0, "_source": {"id": d, "title": f"t{d}"}} for d in ids]}}


class WaitingEncoder:
    """Encodes only once the BM25 leg has reached Elasticsearch: proves the leg did not wait for encoding."""

    identity = "fake"

    def __init__(self, es: KeyedES | None, fail: bool = False) -> None:
        self.es, self.fail = es, fail

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if self.es is not None and not self.es.bm25_sent.wait(timeout=5):
            raise RuntimeError("the BM25 leg was not sent while encoding")
        if self.fail:
            raise RuntimeError("encoder broke")
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))


ANSWERS = {"bm25": _hits(("a", 9.0), ("b", 5.0)), "text_vector": _hits(("b", 0.9), ("c", 0.8)),
           "image_vector": _hits(("c", 0.7), ("a", 0.6))}


def _engine(es: KeyedES, encoder: Any, overlap: bool) -> SearchEngine:
    return SearchEngine(es, encoder, Settings(products_alias="p"), None, EngineOptions(overlap_lexical=overlap))


def test_bm25_leaves_before_encoding_and_results_match_the_single_msearch() -> None:
    es = KeyedES(ANSWERS)
    overlapped = _engine(es, WaitingEncoder(es), overlap=True).search(SearchRequest(text="red shirt"), TEXT_LEGS)
    assert es.calls == [["bm25"], ["text_vector", "image_vector"]]
    assert overlapped["degraded"] == []
    plain_es = KeyedES(ANSWERS)
    plain = _engine(plain_es, WaitingEncoder(None), overlap=False).search(SearchRequest(text="red shirt"), TEXT_LEGS)
    assert plain_es.calls == [["bm25", "text_vector", "image_vector"]]
    # Same fused list, scores, breakdown and leg order (fusion breaks ties by leg order).
    assert [(h["_id"], h["_score"], h["breakdown"]) for h in overlapped["hits"]] == \
        [(h["_id"], h["_score"], h["breakdown"]) for h in plain["hits"]]
    assert list(overlapped["legs"]) == ["bm25", "text_text", "text_image"]
    assert overlapped["hits"][0]["_source"]["title"].startswith("t")  # page sources fetched after fusion


def test_encoder_failure_still_answers_with_the_overlapped_bm25_leg() -> None:
    es = KeyedES(ANSWERS)
    result = _engine(es, WaitingEncoder(es, fail=True), overlap=True).search(SearchRequest(text="red"), TEXT_LEGS)
    assert es.calls == [["bm25"]]
    assert result["degraded"] == ["text_vector: encoder failed: RuntimeError: encoder broke"]
    assert [h["_id"] for h in result["hits"]] == ["a", "b"]
    # The leg left ids-only (planned for three legs), so the page's sources were fetched.
    assert result["hits"][0]["_source"] == {"id": "a", "title": "ta"}


def test_a_failing_overlapped_bm25_leg_is_dropped_and_named() -> None:
    es = KeyedES({**ANSWERS, "bm25": {"error": {"reason": "boom"}, "status": 500}})
    result = _engine(es, WaitingEncoder(es), overlap=True).search(SearchRequest(text="red"), TEXT_LEGS)
    assert result["degraded"] == ["leg:bm25: boom"]
    assert set(result["legs"]) == {"text_text", "text_image"}


def test_unreachable_cluster_during_the_overlapped_leg_is_a_503_error() -> None:
    from elasticsearch import ConnectionError as ESConnectionError

    es = KeyedES({**ANSWERS, "bm25": ESConnectionError("down")})
    with pytest.raises(ClusterUnavailableError):
        _engine(es, WaitingEncoder(es), overlap=True).search(SearchRequest(text="red"), TEXT_LEGS)


def test_no_overlap_when_there_is_nothing_to_encode() -> None:
    es = KeyedES(ANSWERS)
    _engine(es, WaitingEncoder(None), overlap=True).search(SearchRequest(text="red"),
                                                            RankingConfig(legs={"bm25": 1.0}))
    assert es.calls == [["bm25"]]

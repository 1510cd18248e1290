"""Pure leg bookkeeping: which concrete index a search's legs answered from (alias flips mid-request)."""

from __future__ import annotations

from query_service.legs import LegBatch, LegRun, collect


def _response(*indices: str) -> dict:
    return {"took": 1, "hits": {"total": {"value": len(indices)},
                                "hits": [{"_id": f"d{i}", "_index": index, "_score": 1.0}
                                         for i, index in enumerate(indices)]}}


def _collect(*responses: dict) -> LegRun:
    batch = LegBatch("products", {"bm25": {}, "text_text": {}}, {"bm25": 1.0, "text_text": 1.0})
    parsed = [([(hit["_id"], 1.0) for hit in r["hits"]["hits"]], {}) for r in responses]
    run = LegRun()
    collect(batch, list(responses), parsed, run, leg_timeout_ms=1000)
    return run


def test_legs_from_one_version_answer_from_it() -> None:
    run = _collect(_response("products-v1", "products-v1"), _response("products-v1"))
    assert run.indices == {"products-v1"} and run.answered_from() == "products-v1"


def test_legs_from_two_versions_answer_from_none() -> None:
    # A swap landed between the _msearch's items: the engine runs them again, pinned.
    run = _collect(_response("products-v1"), _response("products-v2"))
    assert run.answered_from() is None


def test_no_hits_answer_from_none() -> None:
    assert _collect(_response(), _response()).answered_from() is None

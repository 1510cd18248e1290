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


def test_dfs_only_where_an_index_is_known_to_have_one_shard_it_is_skipped() -> None:
    from query_service.legs import needs_dfs

    assert needs_dfs({"index_settings": {"shards": 1}}) is False
    assert needs_dfs({"index_settings": {"shards": 3}}) is True
    assert needs_dfs({}) is True and needs_dfs(None) is True  # an undeclared (legacy) index may have several


def test_the_lexical_tie_break_sorts_by_score_then_id_and_keeps_an_apps_own_sort() -> None:
    from query_service.legs import with_tie_break

    body = {"query": {"match_all": {}}}
    assert with_tie_break(body, "id")["sort"] == [{"_score": "desc"}, {"id": "asc"}]
    own = {"query": {"match_all": {}}, "sort": [{"year": "desc"}]}
    assert with_tie_break(own, "id") == own


def test_equal_scores_go_in_id_order_and_other_orders_are_left_alone() -> None:
    from query_service.legs import ties_in_id_order

    assert ties_in_id_order([("b", 2.0), ("c", 1.0), ("a", 1.0)]) == [("b", 2.0), ("a", 1.0), ("c", 1.0)]
    by_app = [("a", 1.0), ("b", 3.0)]  # not score-ordered: an app's sort, not ours to touch
    assert ties_in_id_order(by_app) == by_app

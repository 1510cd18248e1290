"""Pure leg bookkeeping: which concrete index a search's legs answered from (alias flips mid-request),
the DFS and tie rules, the re-runs and the no-answer rule; one engine test checks the re-run is wired in."""

from __future__ import annotations

from collections.abc import Sequence

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


def test_a_run_from_two_indices_runs_again_pinned_to_the_alias_s_one_target() -> None:
    from query_service.legs import rerun_mixed

    batches = [LegBatch("products", {"bm25": {}}, {"bm25": 1.0}), LegBatch("other", {"bm25": {}}, {"bm25": 1.0})]
    mixed, whole = LegRun(indices={"products-v1", "products-v2"}), LegRun(indices={"other-v1"})
    asked: list[str] = []
    sent: list[str] = []

    def targets(alias: str) -> list[str]:
        asked.append(alias)
        return ["products-v2"]

    def run_batches(pinned: Sequence[LegBatch]) -> list[LegRun]:
        sent.extend(batch.index for batch in pinned)
        return [LegRun(indices={"products-v2"})]

    runs = rerun_mixed(batches, [mixed, whole], targets, run_batches)
    assert asked == ["products"] and sent == ["products-v2"]  # the unmixed run costs no alias lookup
    assert runs[0].indices == {"products-v2"} and runs[1] is whole
    # No single target (the alias is gone or points at two): the mixed run is kept.
    assert rerun_mixed(batches[:1], [mixed], lambda alias: [], run_batches)[0] is mixed


def test_a_vector_leg_the_prefilter_emptied_runs_again_unfiltered_and_is_named() -> None:
    from query_service.legs import recover_empty_legs

    batch = LegBatch("products", {"bm25": {"f": 1}, "text_image": {"f": 1}}, {"bm25": 1.0, "text_image": 1.0})
    run = LegRun(legs={"bm25": [("a", 1.0)], "text_image": []}, prefiltered=["gender"])
    sent: list[LegBatch] = []

    def run_batches(retry: Sequence[LegBatch]) -> list[LegRun]:
        sent.extend(retry)
        return [LegRun(legs={"text_image": [("b", 0.5)]}, degraded=["x"])]

    recover_empty_legs([batch], [run], [{"bm25": {}, "text_image": {"unfiltered": 1}}], run_batches)
    assert [dict(b.bodies) for b in sent] == [{"text_image": {"unfiltered": 1}}]  # the empty vector leg only
    assert run.legs["text_image"] == [("b", 0.5)] and run.filter_dropped == ["text_image"] and run.degraded == ["x"]
    sent.clear()
    recover_empty_legs([batch], [LegRun(legs={"text_image": []})], [{}], run_batches)  # not pre-filtered
    assert sent == []
    # Sent without the filter already (FilterCombinations said it cannot match): empty is its answer.
    unmatchable = LegRun(legs={"bm25": [("a", 1.0)], "text_image": []}, prefiltered=["gender"],
                         filter_dropped=["text_image"])
    recover_empty_legs([batch], [unmatchable], [{"text_image": {"unfiltered": 1}}], run_batches)
    assert sent == [] and unmatchable.legs["text_image"] == []


def test_no_leg_answering_raises_with_the_gateway_s_status_for_it() -> None:
    import pytest

    from mmsearch.exceptions import ClusterError, ClusterUnavailableError, IndexNotFoundError
    from query_service.legs import raise_for_unanswered

    raise_for_unanswered(LegRun(legs={"bm25": []}, errors={"knn": (500, None)}), "p")  # one leg answered
    for status, error in ((404, IndexNotFoundError), (429, ClusterUnavailableError), (400, ClusterError)):
        with pytest.raises(error) as raised:
            raise_for_unanswered(LegRun(errors={"bm25": (status, None)}), "p")
        assert type(raised.value) is error


def test_the_engine_sends_a_mixed_run_again_to_the_alias_s_one_index() -> None:
    from mmsearch.config import Settings
    from query_service.engine import SearchEngine
    from query_service.ranking import RankingConfig, SearchRequest
    from tests.unit.fakes import FakeGateway, hits

    mixed = hits(("a", 2.0), index="products-v1")
    mixed["hits"]["hits"] += hits(("b", 1.0), index="products-v2")["hits"]["hits"]  # a swap mid-leg
    es = FakeGateway([mixed], mappings={"products-v2": {}})  # the alias now points at v2 alone

    def answer_pinned(searches: list[dict]) -> None:
        if searches[0]["index"] == "products-v2":
            es.responses = [hits(("b", 1.0), index="products-v2")]

    es.before_msearch = answer_pinned
    engine = SearchEngine(es, None, Settings(products_alias="products"))
    run = engine.run_legs(SearchRequest(text="shirt"), RankingConfig(legs={"bm25": 1.0}, understanding=False))
    assert [call[0]["index"] for call in es.msearch_calls] == ["products", "products-v2"]
    assert run.answered_from() == "products-v2" and run.legs["bm25"] == [("b", 1.0)]


def test_two_batches_of_one_search_join_and_their_runs_merge() -> None:
    from query_service.legs import joined, merged

    lexical = LegBatch("products", {"bm25": {"q": 1}}, {"bm25": 1.0}, ("gender", "article_type"))
    vectors = LegBatch("products", {"text_text": {"k": 1}}, {"text_text": 2.0}, ("gender",))
    both = joined(lexical, vectors)
    assert (dict(both.bodies), dict(both.weights), both.docvalue_fields) == (
        {"bm25": {"q": 1}, "text_text": {"k": 1}}, {"bm25": 1.0, "text_text": 2.0}, ("gender", "article_type"))
    first = LegRun(legs={"bm25": [("a", 2.0)]}, sources={"a": {"gender": "Men"}}, weights={"bm25": 1.0},
                   degraded=["leg:bm25: timed out"], leg_took_ms={"bm25": 3.0}, lean=True, indices={"products-v1"})
    second = LegRun(legs={"text_text": [("b", 0.9)]}, sources={"b": {"gender": "Women"}}, weights={"text_text": 2.0},
                    errors={"text_image": (500, None)}, lean=True, indices={"products-v2"})
    run = merged(first, second)
    assert run.legs == {"bm25": [("a", 2.0)], "text_text": [("b", 0.9)]}
    assert set(run.sources) == {"a", "b"} and run.weights == {"bm25": 1.0, "text_text": 2.0}
    assert run.degraded == ["leg:bm25: timed out"] and run.errors == {"text_image": (500, None)}
    assert run.lean and run.indices == {"products-v1", "products-v2"} and run.answered_from() is None

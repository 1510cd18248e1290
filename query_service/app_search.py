"""The proxy's searches: an Elasticsearch application's DSL queries (``dsl.AppQuery``) run hybrid.

``search_app`` is what ``SearchEngine.search_app`` does: every leg of every query in one
``_msearch`` (the app's own lexical query, boosted by the parse, and kNN legs with the app's filter
plus the parse's pre-filter), the same re-runs, fusion and attribute leg as ``/search``, then every
page (presented as the app asked) and fused-set aggregations in a second ``_msearch``. Text legs
only: an app sends no photo. All I/O goes through the engine's public methods.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.exceptions import RequestValidationError
from query_service import attributes, dsl, legs, queries
from query_service.dsl import AppQuery, AppResult
from query_service.fusion import FusedHit, paginate
from query_service.legs import LegBatch, LegRun
from query_service.ranking import LEGS, RankingConfig
from query_service.understanding import Understanding

if TYPE_CHECKING:
    from query_service.engine import SearchEngine


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def search_app(engine: SearchEngine, app_queries: Sequence[AppQuery], ranking: RankingConfig) -> list[AppResult]:
    """Hybrid results for app DSL searches: every leg of every query in one ``_msearch``, then
    every page (and fused-set aggregations) in a second. Text legs only: an app sends no photo."""
    start = time.perf_counter()
    weights = {leg: w for leg, w in ranking.legs.items() if w > 0 and LEGS[leg][0] == "text"}
    if not weights:
        raise RequestValidationError("the ranking has no text leg with a weight above 0")
    degraded: list[str] = []
    vectors: Any = None
    # The words' parses first: the vector legs search their corrected words (the app's own lexical
    # query is kept as the app wrote it).
    words = [engine.understand(query.text, None, ranking) for query in app_queries]
    if any(LEGS[leg][1] for leg in weights):
        texts = [(parse.corrected_text() if parse is not None else None) or query.text
                 for query, parse in zip(app_queries, words)]
        vectors = engine.encode_guarded("text_vector", lambda: engine.encoder.encode_texts(texts), degraded)
    vector_of = [None if vectors is None else vectors[i] for i in range(len(app_queries))]
    parses = [engine.full_parse(query.text, parse, {} if vector is None else {"text": vector}, ranking)
              for query, vector, parse in zip(app_queries, vector_of, words)]
    hopeless = [engine.unmatchable_prefilters(parse, ranking, weights) for parse in parses]
    batches = [LegBatch(query.index, app_bodies(engine, query, ranking, weights, vector, parse, unfiltered=skip),
                        weights, attributes.docvalue_fields(parse))
               for query, vector, parse, skip in zip(app_queries, vector_of, parses, hopeless)]
    # Always lean: the page fetch applies the app's presentation to every hit, whichever leg found it.
    runs = engine.run_batches(batches, lean=True)
    for run, parse, query, skip in zip(runs, parses, app_queries, hopeless):
        run.understanding, run.text = parse, query.text
        run.prefiltered = attributes.prefiltered_fields(parse, ranking.attribute_filter)
        run.filter_dropped = sorted(skip & set(run.legs))
    unfiltered = [app_bodies(engine, query, ranking, weights, vector, parse, prefilter=False) if run.prefiltered
                  else {} for query, vector, parse, run in zip(app_queries, vector_of, parses, runs)]
    legs.recover_empty_legs(batches, runs, unfiltered, lambda retry: engine.run_batches(retry, lean=True))
    for run in runs:
        engine.boost_in_window(run, ranking)
    fused_lists = []
    for query, run, vector, parse in zip(app_queries, runs, vector_of, parses):
        run.degraded[:0] = degraded
        if query.knn_filter and vector is not None and not run.errors.get("bm25"):
            clauses = engine.knn_filters([dict(c) for c in query.knn_filter], parse, ranking)
            engine.guarantee_k(query.index, queries.filter_clauses(clauses), ranking, {"text": vector}, run)
        fused_lists.append(engine.fuse_run(run, ranking))
    results = app_pages(engine, app_queries, runs, fused_lists)
    took = _ms(start)
    for result in results:
        result.took_ms = took
    return results

def app_bodies(engine: SearchEngine, query: AppQuery, ranking: RankingConfig, weights: dict[str, float],
                vector: np.ndarray | None, understanding: Understanding | None,
                prefilter: bool = True, unfiltered: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """An app search's legs: its own lexical query (boosted), and kNN legs with its filter plus the
    parse's pre-filter (not for legs in ``unfiltered``: ``unmatchable_prefilters``)."""
    bodies: dict[str, dict[str, Any]] = {}
    knn_filter = engine.knn_filters(list(query.knn_filter), understanding, ranking) if prefilter \
        else list(query.knn_filter)
    for leg in weights:
        field_name = LEGS[leg][1]
        if field_name is None:
            boosts = attributes.lexical_boosts(understanding, ranking.attribute_boost)
            window = ranking.boost_window if boosts else 0
            lexical = dsl.lexical_leg(query, window or ranking.depth)
            bodies[leg] = lexical if window else dsl.boosted(lexical, boosts)
        elif vector is not None:
            bodies[leg] = queries.knn_body(field_name, vector, ranking,
                                           list(query.knn_filter) if leg in unfiltered else knn_filter,
                                           timeout_ms=engine.options.leg_timeout_ms)
    return bodies

def app_pages(engine: SearchEngine, app_queries: Sequence[AppQuery], runs: Sequence[LegRun],
               fused_lists: Sequence[list[FusedHit]]) -> list[AppResult]:
    """One ``_msearch`` for every query's page (presented as the app asked) and fused aggregations."""
    searches: list[dict[str, Any]] = []
    slots: list[tuple[int | None, int | None]] = []  # per query: (page item, aggregations item)
    pages = []
    for query, run, fused in zip(app_queries, runs, fused_lists):
        page = paginate(fused, query.offset, query.size) if not run.errors.get("bm25") else []
        pages.append(page)
        page_slot = aggs_slot = None
        index = run.answered_from() or query.index  # the legs' version, even if the alias moved since
        if page:
            page_slot = len(searches) // 2
            searches += [{"index": index}, dsl.page_body(query, [hit.doc_id for hit in page])]
        aggs_body = dsl.fused_aggregations_body(query, [hit.doc_id for hit in fused])
        if aggs_body is not None and not run.errors.get("bm25"):
            aggs_slot = len(searches) // 2
            searches += [{"index": index}, aggs_body]
        slots.append((page_slot, aggs_slot))
    responses = engine.msearch(searches) if searches else []
    return [dsl.app_result(query, run, fused, page, [responses[s] if s is not None else None for s in slot])
            for query, run, fused, page, slot in zip(app_queries, runs, fused_lists, pages, slots)]

"""Elasticsearch request bodies for each leg: pure functions, no I/O.

User text only ever goes into ``multi_match`` (never ``query_string``), so no
shopper can inject query syntax. Filters become ``bool.filter`` clauses in BM25
and ``knn.filter`` pre-filters in every vector leg, so filtered kNN still
returns k neighbours *inside* the filter rather than k neighbours then filtered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmsearch.jsoncodec import float_list
# lexical_analysis_of is re-exported: the engine reads an index's _meta with it to set client_analysis.
from mmsearch.text_analysis import ANALYZED_FIELD, lexical_analysis_of, query_groups  # noqa: F401
from query_service.ranking import KEYWORD_FILTERS, RANGE_FILTERS, SOURCE_FIELDS, RankingConfig


#: A search's filter: the service's own ``filters`` object, or ready query clauses (the proxy's app filter).
Filters = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def filter_clauses(filters: Filters) -> list[dict[str, Any]]:
    """``bool.filter`` clauses of a ``filters`` object; clauses given as a list pass through as they are."""
    if not isinstance(filters, Mapping):
        return [dict(clause) for clause in filters]
    clauses: list[dict[str, Any]] = []
    for name, value in filters.items():
        if name in KEYWORD_FILTERS:
            clauses.append({"terms": {name: list(value)}})
        elif name in RANGE_FILTERS:
            clauses.append({"range": {name: dict(value)}})
    return clauses


#: Weight of the surface-form multi_match beside the pre-analysed clause (client analysis only).
#: It breaks ties towards exact words and title hits (field_boosts) without outvoting the stemmed,
#: synonym-expanded match; top-10 precision (README grade >= 1, 148 dev + 3 probe queries) by the analysed
#: clause's weight relative to the multi_match, on 537 / 1302-product samples: 1x 0.423 / -,
#: 2x 0.434 / 0.574, 5x 0.451 / 0.597, 10x 0.466 / 0.603, 20x 0.470 / 0.607, analysed only
#: 0.472 / 0.598; plain multi_match 0.384 / 0.487. Scaling the multi_match down (not the
#: analysed clause up) keeps the leg's scores near their old range for fixed min-max bounds.
SURFACE_WEIGHT = 0.05


def analyzed_clause(text: str) -> dict[str, Any] | None:
    """The user's words on ``search_text_analyzed``: one ``dis_max`` per concept (a word or synonym
    phrase) over its alternatives, so "sneakers" matching both "sneaker" and "sport shoe" counts once.

    Tokens were analysed here exactly as the indexer analysed the documents, so single tokens
    are ``term`` queries and multi-word synonyms ``match_phrase`` (the field's whitespace analyzer
    only splits). None when nothing of the text survives analysis (only stopwords).
    """
    concepts: list[dict[str, Any]] = []
    for alternatives in query_groups(text):
        clauses = [{"match_phrase": {ANALYZED_FIELD: phrase}} if " " in phrase else {"term": {ANALYZED_FIELD: phrase}}
                   for phrase in alternatives]
        concepts.append(clauses[0] if len(clauses) == 1 else {"dis_max": {"queries": clauses}})
    return {"bool": {"should": concepts}} if concepts else None


def bm25_body(text: str, ranking: RankingConfig, filters: Mapping[str, Any], negative_text: str | None = None,
              size: int | None = None, timeout_ms: int | None = None, *,
              client_analysis: bool = False) -> dict[str, Any]:
    """The BM25 leg. ``client_analysis`` (index ``_meta.lexical_analysis == "client"``, see
    ``lexical_analysis_of``): the index has no stemming analyzer, so the multi_match is paired
    with the pre-analysed, synonym-expanded match on ``search_text_analyzed`` (either may match)."""
    fields = [f"{name}^{boost:g}" for name, boost in ranking.field_boosts.items()]
    match: dict[str, Any] = {"multi_match": {"query": text, "fields": fields, "type": "best_fields"}}
    analyzed = analyzed_clause(text) if client_analysis else None
    if analyzed is not None:
        match["multi_match"]["boost"] = SURFACE_WEIGHT
        match = {"bool": {"should": [match, analyzed], "minimum_should_match": 1}}
    query: dict[str, Any] = {"bool": {"must": [match], "filter": filter_clauses(filters)}}
    if negative_text:
        query["bool"]["must_not"] = [{"multi_match": {"query": negative_text, "fields": fields}}]
        negative = analyzed_clause(negative_text) if client_analysis else None
        if negative is not None:
            query["bool"]["must_not"].append(negative)
    body: dict[str, Any] = {"query": query, "size": size or ranking.depth, "_source": list(SOURCE_FIELDS),
                            "track_total_hits": False}
    if timeout_ms:
        body["timeout"] = f"{timeout_ms}ms"
    return body


def knn_body(field: str, vector: Sequence[float], ranking: RankingConfig, filters: Filters,
             num_candidates: int | None = None, timeout_ms: int | None = None) -> dict[str, Any]:
    """A kNN leg as the ``knn`` *query* (not the top-level ``knn`` section).

    Why the query form: the section runs an extra DFS round inside Elasticsearch before
    the query phase; the query form runs in the query phase with the same per-shard
    ``k`` and ``num_candidates`` and the same pre-filter. With ``size = k`` the hits
    are the same (measured: same ids and scores, 0.3-0.6 ms less per request here).
    """
    knn: dict[str, Any] = {"field": field, "query_vector": float_list(vector), "k": ranking.depth,
                           "num_candidates": num_candidates or ranking.num_candidates}
    if ranking.rescore_oversample is not None:
        knn["rescore_vector"] = {"oversample": float(ranking.rescore_oversample)}
    clauses = filter_clauses(filters)
    if clauses:
        knn["filter"] = clauses
    body: dict[str, Any] = {"query": {"knn": knn}, "size": ranking.depth, "_source": list(SOURCE_FIELDS),
                            "track_total_hits": False}
    if timeout_ms:
        body["timeout"] = f"{timeout_ms}ms"
    return body


def knn_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The kNN parameters of a ``knn_body`` (for retrievers and tests)."""
    return body["query"]["knn"]


def exact_script_body(field: str, vector: Sequence[float], filters: Filters, size: int) -> dict[str, Any]:
    """Brute-force cosine with painless, for clusters that have it. Score = (1 + cos) / 2 like knn's cosine."""
    return {
        "query": {"script_score": {
            "query": {"bool": {"filter": filter_clauses(filters) + [{"exists": {"field": field}}]}},
            "script": {"source": f"(cosineSimilarity(params.q, '{field}') + 1.0) / 2.0",
                       "params": {"q": float_list(vector)}}}},
        "size": size, "_source": list(SOURCE_FIELDS), "track_total_hits": False,
    }


def exact_fetch_body(field: str, filters: Filters, size: int) -> dict[str, Any]:
    """All docs matching the filter with their vectors, for brute force in Python (no painless needed)."""
    return {"query": {"bool": {"filter": filter_clauses(filters) + [{"exists": {"field": field}}]}},
            "size": size, "track_total_hits": False,
            # ES 9 leaves vectors out of _source by default; ask for them explicitly.
            "_source": {"includes": list(SOURCE_FIELDS) + [field], "exclude_vectors": False}}


def rank_by_cosine(vector: Sequence[float], hits: Sequence[Mapping[str, Any]], field: str,
                   k: int) -> list[tuple[str, float, dict[str, Any]]]:
    """Exact top-k by cosine, scored like ES's knn cosine ((1 + cos) / 2); ties by id for determinism."""
    if not hits:
        return []
    query = np.asarray(vector, dtype=np.float32)
    query = query / max(float(np.linalg.norm(query)), 1e-12)
    matrix = np.asarray([hit["_source"][field] for hit in hits], dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    scores = (1.0 + matrix @ query) / 2.0
    order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), str(hits[i]["_id"])))[:k]
    out = []
    for i in order:
        source = {key: value for key, value in hits[i]["_source"].items() if key != field}
        out.append((str(hits[i]["_id"]), float(scores[i]), source))
    return out


def combine_query_vector(positive: np.ndarray, negative: np.ndarray | None, negative_weight: float) -> np.ndarray:
    """``normalise(q - w * neg)``: steer away from "not leather" without a second search."""
    if negative is None or negative_weight == 0:
        return positive
    vector = positive - negative_weight * negative
    norm = float(np.linalg.norm(vector))
    return positive if norm < 1e-6 else (vector / norm).astype(np.float32)


def native_rrf_body(bm25_text: str | None, knn_legs: Mapping[str, tuple[str, Sequence[float]]],
                    ranking: RankingConfig, filters: Mapping[str, Any], size: int) -> dict[str, Any]:
    """The ``rrf`` retriever, for clusters with rank-rrf and a license that allows it (unweighted)."""
    retrievers: list[dict[str, Any]] = []
    if bm25_text is not None:
        retrievers.append({"standard": {"query": bm25_body(bm25_text, ranking, filters)["query"]}})
    for field, vector in knn_legs.values():
        retrievers.append({"knn": knn_of(knn_body(field, vector, ranking, filters))})
    return {"retriever": {"rrf": {"retrievers": retrievers, "rank_constant": max(1, ranking.rrf_k),
                                  "rank_window_size": max(ranking.depth, size)}},
            "size": size, "_source": list(SOURCE_FIELDS)}


def ids_only(body: Mapping[str, Any], docvalue_fields: Sequence[str] = (), id_field: str | None = None) -> dict[str, Any]:
    """The same leg, returning ids, scores and (for facets) doc values, but no ``_source``.

    Why: a leg fetches ``depth`` (100) hits but a page shows ``size`` (10); loading and
    shipping 100 ``_source`` documents per leg was most of each leg's cost. The page's
    sources come afterwards from one ``page_sources_body`` request.

    With ``id_field`` (a doc-values field equal to ``_id``, which catalog builds declare in
    the index ``_meta.doc_id_field``) not even ``_id`` is loaded: ``stored_fields: _none_``
    skips the stored-fields read per hit, and the id comes from doc values (measured:
    3 legs x 100 hits 3.37 -> 2.63 ms, docs/benchmarks.md "Query latency: what changed").
    ``parse_id_field_leg`` reads the ids back.
    """
    lean = {**body, "_source": False}
    fields = list(docvalue_fields)
    if id_field is not None:
        lean.pop("_source")
        lean["stored_fields"] = "_none_"
        fields = [id_field, *[f for f in fields if f != id_field]]
    if fields:
        lean["docvalue_fields"] = fields
    return lean


def parse_id_field_leg(response: Mapping[str, Any], id_fields: Mapping[str, str | None], id_field: str,
                       keep_field: bool) -> tuple[list[tuple[str, float]], dict[str, dict[str, Any]]] | None:
    """``parse_leg_response`` for an ``ids_only`` leg whose ids come from the ``id_field`` doc value.

    None (nothing trusted) when a hit without ``_id`` comes from an index not known to keep
    ``_id`` in ``id_field`` (``id_fields``: concrete index -> its declared field): the caller
    re-runs the legs the ordinary way. Only hits with other doc values (facets; ``keep_field``:
    the id field was asked for as a facet too) get an entry in the sources: one pass, and no
    empty dict per hit, because a photo query parses five legs of 100 hits on every request.
    """
    ranked: list[tuple[str, float]] = []
    sources: dict[str, dict[str, Any]] = {}
    for hit in (response.get("hits") or {}).get("hits", []):
        fields = hit.get("fields") or {}
        if "_id" in hit:
            doc_id = str(hit["_id"])
        else:
            values = fields.get(id_field)
            if not values or id_fields.get(hit.get("_index", "")) != id_field:
                return None
            doc_id = str(values[0])
        ranked.append((doc_id, float(hit.get("_score") or 0.0)))
        if len(fields) > 1 or (fields and (keep_field or id_field not in fields)):
            sources[doc_id] = fields if keep_field else {k: v for k, v in fields.items() if k != id_field}
    return ranked, sources


def page_sources_body(ids: Sequence[str]) -> dict[str, Any]:
    """The displayed hits' ``_source`` by id (an ``ids`` query works through multi-index aliases, mget does not)."""
    return {"query": {"ids": {"values": list(ids)}}, "size": len(ids), "_source": list(SOURCE_FIELDS),
            "track_total_hits": False}


def msearch_payload(index: str, bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    payload: list[dict[str, Any]] = []
    for body in bodies:
        payload.append({"index": index})
        payload.append(dict(body))
    return payload


def parse_leg_response(response: Mapping[str, Any]) -> tuple[list[tuple[str, float]], dict[str, dict[str, Any]]]:
    """(ranked [(id, score)], {id: _source}) from one search response.

    For ``ids_only`` legs the "source" holds the doc values (``fields``), which is
    what facets are counted from.
    """
    ranked: list[tuple[str, float]] = []
    sources: dict[str, dict[str, Any]] = {}
    for hit in (response.get("hits") or {}).get("hits", []):
        ranked.append((str(hit["_id"]), float(hit.get("_score") or 0.0)))
        source = dict(hit.get("_source") or {})
        for name, values in (hit.get("fields") or {}).items():
            source.setdefault(name, values)
        sources[str(hit["_id"])] = source
    return ranked, sources


def leg_error_reason(response: Mapping[str, Any]) -> str | None:
    """The error of one ``_msearch`` item, shortened for ``degraded``; None when the leg succeeded."""
    if "error" not in response:
        return None
    error = response["error"]
    return str(error.get("reason", error) if isinstance(error, dict) else error)[:200]

"""Hybrid search: encode the query, run every leg in one ``_msearch``, fuse, explain.

``SearchEngine.search`` is the one code path behind ``/search``, the proxy, the
A/B variants and offline evaluation. The pure pieces (query bodies, fusion,
pagination, facets) live in ``queries`` and ``fusion``; this module holds the
I/O around them and the degradation rules:

- an encoder failure or timeout drops that modality's vector legs and says so
  in ``degraded`` (BM25 still answers a text query);
- a leg that errors in ES is dropped and named in ``degraded``;
- ES unreachable raises ``ClusterUnavailableError`` (the app answers 503).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.exceptions import (
    ClusterError,
    ClusterUnavailableError,
    EncoderUnavailableError,
    ImageDecodeError,
)
from query_service import queries
from query_service.fusion import FusedHit, facet_counts, fuse, paginate
from query_service.ranking import LEGS, MAX_NUM_CANDIDATES, RankingConfig, SearchRequest

__all__ = ["EngineOptions", "LegRun", "RankingConfig", "SearchEngine", "SearchRequest"]


@dataclass(frozen=True)
class EngineOptions:
    encoder_timeout_s: float = 2.0
    leg_timeout_ms: int = 2000
    #: Largest filtered set we brute-force in Python when kNN cannot return k (no painless).
    exact_limit: int = 10_000
    escalation_factor: int = 4
    #: With two or more legs, legs return ids + scores only and the page's _source is
    #: fetched after fusion (queries.ids_only, SearchEngine.lean_for).
    lean_legs: bool = True
    #: How long the alias's declared doc-values id field (index ``_meta.doc_id_field``) is trusted
    #: before it is looked up again; hits are checked one by one as well (queries.parse_id_field_leg).
    id_field_ttl_s: float = 30.0

    def __post_init__(self) -> None:
        if self.encoder_timeout_s <= 0 or self.leg_timeout_ms <= 0:
            raise ValueError("timeouts must be positive")
        if self.escalation_factor < 2:
            raise ValueError("escalation_factor must be >= 2")


@dataclass
class LegRun:
    """Raw leg results before fusion (also what offline tuning caches)."""

    legs: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    took_ms: dict[str, float] = field(default_factory=dict)
    leg_took_ms: dict[str, float] = field(default_factory=dict)
    guaranteed_k: list[dict[str, Any]] = field(default_factory=list)
    lean: bool = False  # sources hold facet doc values only; page sources are fetched separately


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class SearchEngine:
    def __init__(self, es: Any, encoder: Any, settings: Any, capabilities: Any = None,
                 options: EngineOptions | None = None, index: str | None = None) -> None:
        self.es = es
        self.encoder = encoder
        self.settings = settings
        self.capabilities = capabilities
        self.options = options or EngineOptions()
        self.index = index or settings.products_alias
        # es.options() copies the client (~0.3 ms per call), so the per-leg-timeout client is built once.
        self._legs_es = es.options(request_timeout=self.options.leg_timeout_ms / 1000.0 + 5)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="encode")
        self._id_fields: dict[str, str | None] = {}  # concrete index -> its _meta.doc_id_field
        self._alias_id_field: str | None = None
        self._id_field_checked_until = 0.0

    # -- encoding -----------------------------------------------------------------------

    def _encode(self, what: str, call: Any, degraded: list[str]) -> np.ndarray | None:
        if self.encoder is None:
            degraded.append(f"{what}: no model loaded")
            return None
        future = self._pool.submit(call)
        try:
            return future.result(timeout=self.options.encoder_timeout_s)
        except FutureTimeout:
            degraded.append(f"{what}: encoder timed out after {self.options.encoder_timeout_s:g}s")
        except ImageDecodeError:
            raise  # bad input, not a broken encoder: the client gets a 400
        except Exception as exc:  # any encoder fault degrades instead of failing the request
            degraded.append(f"{what}: encoder failed: {type(exc).__name__}: {str(exc)[:200]}")
        return None

    def encode(self, request: SearchRequest, ranking: RankingConfig,
               degraded: list[str]) -> dict[str, np.ndarray]:
        wanted = {LEGS[leg][0] for leg in self.active_legs(request, ranking) if LEGS[leg][1]}
        vectors: dict[str, np.ndarray] = {}
        if "text" in wanted and request.text:
            texts = [request.text] + ([request.negative_text] if request.negative_text else [])
            encoded = self._encode("text_vector", lambda: self.encoder.encode_texts(texts), degraded)
            if encoded is not None:
                negative = encoded[1] if len(encoded) > 1 else None
                vectors["text"] = queries.combine_query_vector(encoded[0], negative, ranking.negative_weight)
        if "image" in wanted and request.image is not None:
            # Decode once, here: a bad image is the client's error (400), not an encoder failure to degrade.
            image = self.encoder.load_image(request.image) if self.encoder is not None else None
            encoded = self._encode("image_vector", lambda: self.encoder.encode_images([image]), degraded)
            if encoded is not None:
                vectors["image"] = encoded[0]
        return vectors

    # -- legs -----------------------------------------------------------------------------

    @staticmethod
    def active_legs(request: SearchRequest, ranking: RankingConfig) -> dict[str, float]:
        """Leg -> effective weight (variant weight x modality weight); zero-weight legs are skipped."""
        modality_weight = {"text": request.text_weight, "image": request.image_weight}
        active = {}
        for leg, weight in ranking.legs.items():
            modality = LEGS[leg][0]
            effective = weight * modality_weight[modality]
            if effective > 0 and modality in request.modalities:
                active[leg] = effective
        return active

    def _leg_bodies(self, request: SearchRequest, ranking: RankingConfig, weights: dict[str, float],
                    vectors: dict[str, np.ndarray], id_field: str | None = None) -> dict[str, dict[str, Any]]:
        bodies = {}
        timeout = self.options.leg_timeout_ms
        for leg in weights:
            modality, field_name = LEGS[leg]
            if field_name is None:
                bodies[leg] = queries.bm25_body(request.text or "", ranking, request.filters, request.negative_text,
                                                timeout_ms=timeout)
            elif modality in vectors:
                bodies[leg] = queries.knn_body(field_name, vectors[modality], ranking, request.filters,
                                               timeout_ms=timeout)
        if self.lean_for(len(bodies)):
            bodies = {leg: queries.ids_only(body, request.facets, id_field) for leg, body in bodies.items()}
        return bodies

    def lean_for(self, legs: int) -> bool:
        """Ids-only legs + a page fetch pay off only when legs are fused: one leg *is* the
        ranking, and its own ``_source`` is cheaper than a second round trip (measured:
        docs/benchmarks.md, "Query latency: what changed")."""
        return self.options.lean_legs and legs > 1

    def doc_id_field(self) -> str | None:
        """The doc-values field that equals ``_id`` in every index behind the alias, or None.

        Catalog builds declare it (``_meta.doc_id_field``: they write ``_id`` = ``id``); an
        enriched legacy index does not, and gets the ordinary path. Looked up again after
        ``id_field_ttl_s``; a lookup failure only means the ordinary path.
        """
        now = time.monotonic()
        if now < self._id_field_checked_until:
            return self._alias_id_field
        field = None
        try:
            response = self.es.indices.get_mapping(index=self.index)
            body = response.body if hasattr(response, "body") else response
            for name, info in body.items():
                self._id_fields[name] = ((info.get("mappings") or {}).get("_meta") or {}).get("doc_id_field")
            declared = {self._id_fields[name] for name in body}
            field = declared.pop() if len(declared) == 1 else None
        except Exception:  # an optimisation only: any failure (or a fake client) means the ordinary path
            field = None
        self._alias_id_field, self._id_field_checked_until = field, now + self.options.id_field_ttl_s
        return field

    @property
    def declared_id_fields(self) -> dict[str, str | None]:
        """Concrete index -> its ``_meta.doc_id_field`` (None: not declared), as last looked up."""
        return dict(self._id_fields)

    def _msearch(self, bodies: dict[str, dict[str, Any]], index: str | None = None) -> list[dict[str, Any]]:
        from elasticsearch import ApiError, NotFoundError, TransportError

        index = index or self.index
        try:
            response = self._legs_es.msearch(
                searches=queries.msearch_payload(index, list(bodies.values())))
        except NotFoundError as exc:
            raise ClusterUnavailableError("the index or alias does not exist (yet)", index=index) from exc
        except ApiError as exc:
            raise ClusterError("Elasticsearch rejected the search", index=index, error=str(exc)[:300]) from exc
        except TransportError as exc:
            raise ClusterUnavailableError("Elasticsearch is unreachable", error=str(exc)[:300]) from exc
        return list(response.body["responses"] if hasattr(response, "body") else response["responses"])

    def run_legs(self, request: SearchRequest, ranking: RankingConfig) -> LegRun:
        run = LegRun()
        start = time.perf_counter()
        weights = self.active_legs(request, ranking)
        vectors = self.encode(request, ranking, run.degraded)
        run.took_ms["encode"] = _ms(start)
        id_field = self.doc_id_field() if self.lean_for(len(weights)) else None
        bodies = self._leg_bodies(request, ranking, weights, vectors, id_field)
        run.weights = {leg: weights[leg] for leg in bodies}
        run.lean = self.lean_for(len(bodies))
        if not bodies:
            raise EncoderUnavailableError("no leg can answer this request", degraded=run.degraded)
        es_start = time.perf_counter()
        responses = self._msearch(bodies)
        parsed = self._parse_legs(responses, id_field if run.lean else None, id_field in request.facets)
        if parsed is None:
            # A hit from an index that does not declare the field (the alias moved since the last
            # look): forget the field and run the legs the ordinary way.
            self._id_field_checked_until = 0.0
            bodies = self._leg_bodies(request, ranking, weights, vectors)
            responses = self._msearch(bodies)
            parsed = self._parse_legs(responses, None, False)
        for leg, response, leg_result in zip(bodies, responses, parsed or ()):
            reason = queries.leg_error_reason(response)
            if reason is not None:
                run.degraded.append(f"leg:{leg}: {reason}")
                run.weights.pop(leg, None)
                continue
            if response.get("timed_out"):
                run.degraded.append(f"leg:{leg}: timed out after {self.options.leg_timeout_ms}ms (partial results)")
            ranked, sources = leg_result
            run.legs[leg] = ranked
            run.sources.update(sources)
            run.leg_took_ms[leg] = float(response.get("took", 0))
        if request.filters:
            self._guarantee_k(request, ranking, vectors, run)
        run.took_ms["es"] = _ms(es_start)
        return run

    def _parse_legs(self, responses: list[dict[str, Any]], id_field: str | None,
                    keep_field: bool) -> list[tuple[list[tuple[str, float]], dict[str, Any]]] | None:
        """Each leg's (ranked, sources); a failed leg gets empty ones. None: an id can't be trusted."""
        out = []
        for response in responses:
            if queries.leg_error_reason(response) is not None:
                out.append(([], {}))
            elif id_field is None:
                out.append(queries.parse_leg_response(response))
            else:
                leg_result = queries.parse_id_field_leg(response, self._id_fields, id_field, keep_field)
                if leg_result is None:
                    return None
                out.append(leg_result)
        return out

    # -- guaranteed k under filters -------------------------------------------------------

    def _guarantee_k(self, request: SearchRequest, ranking: RankingConfig, vectors: dict[str, np.ndarray],
                     run: LegRun) -> None:
        """A filtered kNN leg must return min(depth, matching docs) hits: escalate, then go exact."""
        for leg, ranked in list(run.legs.items()):
            modality, field_name = LEGS[leg]
            if field_name is None or len(ranked) >= ranking.depth or modality not in vectors:
                continue
            filter_query = {"bool": {"filter": queries.filter_clauses(request.filters)
                                     + [{"exists": {"field": field_name}}]}}
            matching = int(self.es.count(index=self.index, query=filter_query)["count"])
            needed = min(ranking.depth, matching)
            if len(ranked) >= needed:
                continue
            record: dict[str, Any] = {"leg": leg, "returned": len(ranked), "needed": needed, "strategy": None}
            num_candidates = ranking.num_candidates
            while len(ranked) < needed and num_candidates < MAX_NUM_CANDIDATES:
                num_candidates = min(MAX_NUM_CANDIDATES, num_candidates * self.options.escalation_factor)
                body = queries.knn_body(field_name, vectors[modality], ranking, request.filters, num_candidates)
                ranked, sources = queries.parse_leg_response(self._search(body))
                run.sources.update(sources)
                record["strategy"] = f"num_candidates={num_candidates}"
            if len(ranked) < needed:
                exact = self._exact(field_name, vectors[modality], request, ranking, matching, run)
                if exact is not None:  # None: too many docs to brute-force; keep what kNN found
                    ranked = exact
                    record["strategy"] = "exact"
            record["returned_after"] = len(ranked)
            run.legs[leg] = ranked
            run.guaranteed_k.append(record)

    def _exact(self, field_name: str, vector: np.ndarray, request: SearchRequest, ranking: RankingConfig,
               matching: int, run: LegRun) -> list[tuple[str, float]] | None:
        if self.capabilities is not None and getattr(self.capabilities, "painless", False):
            body = queries.exact_script_body(field_name, vector, request.filters, ranking.depth)
            ranked, sources = queries.parse_leg_response(self._search(body))
            run.sources.update(sources)
            return ranked
        if matching > self.options.exact_limit:
            run.degraded.append(f"exact:{field_name}: {matching} filtered docs exceed the exact-search limit")
            return None
        body = queries.exact_fetch_body(field_name, request.filters, matching)
        hits = self._search(body)["hits"]["hits"]
        ranked = queries.rank_by_cosine(vector, hits, field_name, ranking.depth)
        for doc_id, _, source in ranked:
            run.sources.setdefault(doc_id, source)
        return [(doc_id, score) for doc_id, score, _ in ranked]

    def _fetch_page_sources(self, run: LegRun, ids: list[str]) -> None:
        """Replace the page hits' doc-value stubs with their ``_source`` (one request for the page)."""
        _, sources = queries.parse_leg_response(self._search(queries.page_sources_body(ids)))
        for doc_id in ids:
            run.sources[doc_id] = sources.get(doc_id, {})  # a doc deleted since the legs ran shows empty

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        from elasticsearch import ApiError, TransportError

        try:
            response = self.es.search(index=self.index, **body)
        except ApiError as exc:
            raise ClusterError("Elasticsearch rejected the search", index=self.index, error=str(exc)[:300]) from exc
        except TransportError as exc:
            raise ClusterUnavailableError("Elasticsearch is unreachable", error=str(exc)[:300]) from exc
        return dict(response.body if hasattr(response, "body") else response)

    # -- the whole search ------------------------------------------------------------------

    def fuse_run(self, run: LegRun, ranking: RankingConfig) -> list[FusedHit]:
        return fuse(run.legs, ranking.method, run.weights, ranking.rrf_k, ranking.normalization,
                    ranking.combination, ranking.bounds)

    def search(self, request: SearchRequest, ranking: RankingConfig) -> dict[str, Any]:
        total_start = time.perf_counter()
        if ranking.native_retriever:
            if getattr(self.capabilities, "native_rrf_usable", False):
                return self._native_search(request, ranking, total_start)
            # Asked for, but this cluster lacks rank-rrf or a license that allows it: fuse here instead.
            native_note = "native_retriever: unavailable on this cluster (needs rank-rrf and an enterprise/trial " \
                          "license); fused in the service"
        else:
            native_note = None
        run = self.run_legs(request, ranking)
        if native_note:
            run.degraded.append(native_note)
        fuse_start = time.perf_counter()
        fused = self.fuse_run(run, ranking)
        page = paginate(fused, request.offset, request.size)
        facets = facet_counts([run.sources.get(h.doc_id, {}) for h in fused], request.facets) if request.facets else {}
        run.took_ms["fuse"] = _ms(fuse_start)
        if run.lean and page:
            fetch_start = time.perf_counter()
            self._fetch_page_sources(run, [hit.doc_id for hit in page])
            run.took_ms["fetch"] = _ms(fetch_start)
            run.took_ms["es"] = round(run.took_ms["es"] + run.took_ms["fetch"], 3)
        run.took_ms["total"] = _ms(total_start)
        return {
            "variant": ranking.name,
            "total": len(fused),
            "offset": request.offset,
            "size": request.size,
            "hits": [self._hit(hit, run, request.explain) for hit in page],
            "facets": {name: [{"value": v, "count": c} for v, c in buckets] for name, buckets in facets.items()},
            "took_ms": run.took_ms,
            "legs": {leg: {"hits": len(ranked), "weight": run.weights.get(leg), "took_ms": run.leg_took_ms.get(leg)}
                     for leg, ranked in run.legs.items()},
            "fusion": {"method": ranking.method, "rrf_k": ranking.rrf_k, "normalization": ranking.normalization,
                       "combination": ranking.combination},
            "guaranteed_k": run.guaranteed_k,
            "degraded": run.degraded,
        }

    def _native_search(self, request: SearchRequest, ranking: RankingConfig, total_start: float) -> dict[str, Any]:
        """One ``rrf`` retriever request: Elasticsearch fuses (unweighted, no per-leg breakdown)."""
        degraded: list[str] = []
        encode_start = time.perf_counter()
        vectors = self.encode(request, ranking, degraded)
        took = {"encode": _ms(encode_start)}
        weights = self.active_legs(request, ranking)
        knn_legs = {leg: (LEGS[leg][1], vectors[LEGS[leg][0]]) for leg in weights
                    if LEGS[leg][1] and LEGS[leg][0] in vectors}
        body = queries.native_rrf_body(request.text if "bm25" in weights else None, knn_legs, ranking,
                                       request.filters, request.offset + request.size)
        es_start = time.perf_counter()
        response = self._search(body)
        took["es"] = _ms(es_start)
        took["total"] = _ms(total_start)
        hits = response["hits"]["hits"][request.offset:]
        return {"variant": ranking.name, "total": len(response["hits"]["hits"]), "offset": request.offset,
                "size": request.size, "hits": [{"_id": h["_id"], "_score": h["_score"], "_source": h["_source"]}
                                               for h in hits], "facets": {}, "took_ms": took,
                "legs": {leg: {"hits": None, "weight": 1.0, "took_ms": None} for leg in ["bm25", *knn_legs]
                         if leg != "bm25" or "bm25" in weights},
                "fusion": {"method": "native_rrf", "rrf_k": ranking.rrf_k}, "guaranteed_k": [],
                "degraded": degraded}

    @staticmethod
    def _hit(hit: FusedHit, run: LegRun, explain: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"_id": hit.doc_id, "_score": hit.score, "_source": run.sources.get(hit.doc_id, {})}
        if explain:
            out["breakdown"] = {
                "fused_score": hit.score,
                "legs": {leg: {"rank": c.rank, "raw_score": c.raw_score, "normalized": c.normalized,
                               "weight": c.weight, "contribution": c.contribution} for leg, c in hit.legs.items()},
            }
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

"""Hybrid search: parse and encode the query, run the legs, fuse, page, explain.

``SearchEngine`` is the one search path. ``search`` serves ``/search``, A/B
variants and interleaving; ``search_app`` serves the Elasticsearch-compatible
proxy (``_search`` and every hybrid item of an ``_msearch``; ``app_search``);
``run_legs`` + ``fuse_run`` serve offline evaluation and tuning. All of them build
leg bodies, send them through the gateway (``mmsearch.gateway``) as one ``_msearch``
(a text query without a photo sends its lexical leg while the text is encoded, and its
vector legs after: ``EngineOptions.lexical_ahead``), parse and degrade them with
``query_service.legs``, fuse with ``query_service.fusion`` and fetch the page. The pure
pieces live in ``queries``, ``legs``, ``attributes``, ``dsl`` and ``fusion``; this module
holds the I/O around them and applies the degradation rules (the leg ones, and the leg
re-runs, are in ``legs``):

- an encoder failure or timeout drops that modality's vector legs and says so
  in ``degraded`` (BM25 still answers a text query);
- a leg that errors in ES is dropped and named in ``degraded``; when no leg
  answers, the error is raised with the gateway's status for it;
- ES unreachable raises ``ClusterUnavailableError`` (the app answers 503).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.exceptions import EncoderUnavailableError, ImageDecodeError, RequestValidationError
from mmsearch.gateway import SearchGateway, as_gateway
from query_service import app_search, attributes, guaranteed_k, legs, queries
from query_service.adaptive import query_features
from query_service.dsl import AppQuery, AppResult
from query_service.fusion import MIN_WEIGHT, FusedHit, RrfSums, facet_counts, fuse, paginate
from query_service.legs import LegBatch, LegRun, raise_for_unanswered
from query_service.ranking import LEGS, RankingConfig, SearchRequest
from query_service.understander import Understander
from query_service.understanding import Understanding

__all__ = ["AppQuery", "AppResult", "EngineOptions", "LegRun", "RankingConfig", "SearchEngine", "SearchRequest"]


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
    #: How long the query parser's facet vocabulary (read from the index) is trusted before it is read again.
    vocabulary_ttl_s: float = 300.0
    #: A text query's lexical leg is sent while the text is encoded (``run_legs``); off, every leg waits
    #: for the encoder and goes in one ``_msearch`` (benchmarks/lexical_ahead.py compares the two).
    lexical_ahead: bool = True

    def __post_init__(self) -> None:
        if self.encoder_timeout_s <= 0 or self.leg_timeout_ms <= 0:
            raise ValueError("timeouts must be positive")
        if self.escalation_factor < 2:
            raise ValueError("escalation_factor must be >= 2")


@dataclass(frozen=True)
class EncodedQuery:
    """A request's query vectors ("text", "image") and the photo's classifier guesses per field."""

    vectors: dict[str, np.ndarray]
    photo: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class SearchEngine:
    def __init__(self, es: SearchGateway | Any, encoder: Any, settings: Any, capabilities: Any = None,
                 options: EngineOptions | None = None, index: str | None = None) -> None:
        self.gateway: SearchGateway = as_gateway(es)
        self.encoder = encoder
        self.settings = settings
        self.capabilities = capabilities
        self.options = options or EngineOptions()
        self.index = index or settings.products_alias
        self._leg_request_timeout_s = self.options.leg_timeout_ms / 1000.0 + 5
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="encode")
        self._id_fields: dict[str, str | None] = {}  # concrete index -> its _meta.doc_id_field
        self._alias_id_field: str | None = None
        self._id_field_checked_until = 0.0
        self._client_analysis = False
        self._lexical_dfs = False  # some index behind the alias has several shards (legs.needs_dfs)
        self.understander = Understander(lambda body: self._search(self.index, body), encoder,
                                         self.options.vocabulary_ttl_s)

    def warm_up(self) -> bool:
        """Load what the first query would otherwise pay for: the parser's vocabulary and type vectors."""
        return self.understander.warm()

    # -- encoding -----------------------------------------------------------------------

    def encode_guarded(self, what: str, call: Any, degraded: list[str],
                       during: Callable[[], None] | None = None) -> np.ndarray | None:
        """``call`` on the encoder's thread; ``during`` runs on this one meanwhile (a leg that needs no vector)."""
        if self.encoder is None:
            if during is not None:
                during()
            degraded.append(f"{what}: no model loaded")
            return None
        future = self._pool.submit(call)
        if during is not None:
            during()
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
        return self.encode_query(request, ranking, degraded).vectors

    def encode_query(self, request: SearchRequest, ranking: RankingConfig, degraded: list[str],
                     during_text: Callable[[], None] | None = None) -> EncodedQuery:
        """The request's vectors and, when the ranking understands queries and the package has
        classifiers, what the photo's classifiers read from it (its type and colour).
        ``during_text``: run while the text is encoded (``SearchEngine.run_legs``: the lexical leg)."""
        wanted = {LEGS[leg][0] for leg in self.active_legs(request, ranking) if LEGS[leg][1]}
        vectors: dict[str, np.ndarray] = {}
        photo: dict[str, list[tuple[str, float]]] = {}
        if "text" in wanted and request.text:
            texts = [request.text] + ([request.negative_text] if request.negative_text else [])
            encoded = self.encode_guarded("text_vector", lambda: self.encoder.encode_texts(texts), degraded, during_text)
            if encoded is not None:
                negative = encoded[1] if len(encoded) > 1 else None
                vectors["text"] = queries.combine_query_vector(encoded[0], negative, ranking.negative_weight)
        if "image" in wanted and request.image is not None:
            # Decode once, here: a bad image is the client's error (400), not an encoder failure to degrade.
            image = self.encoder.load_image(request.image) if self.encoder is not None else None
            if ranking.understanding and getattr(self.encoder, "photo_labels", None):
                guessed = self.encode_guarded("image_vector",
                                              lambda: self.encoder.encode_image_with_attributes(image), degraded)
                if guessed is not None:
                    vectors["image"], photo = guessed
            else:
                encoded = self.encode_guarded("image_vector", lambda: self.encoder.encode_images([image]), degraded)
                if encoded is not None:
                    vectors["image"] = encoded[0]
        return EncodedQuery(vectors, photo)

    # -- legs -----------------------------------------------------------------------------

    @staticmethod
    def active_legs(request: SearchRequest, ranking: RankingConfig) -> dict[str, float]:
        """Leg -> effective weight (variant weight x modality weight); legs weighing less than fusion's
        ``MIN_WEIGHT`` (0, or a product of two tiny weights) are skipped, as fusion would refuse them."""
        modality_weight = {"text": request.text_weight, "image": request.image_weight}
        active = {}
        for leg, weight in ranking.legs.items():
            modality = LEGS[leg][0]
            effective = weight * modality_weight[modality]
            if effective >= MIN_WEIGHT and modality in request.modalities:
                active[leg] = effective
        return active

    def _leg_bodies(self, request: SearchRequest, ranking: RankingConfig, weights: dict[str, float],
                    vectors: dict[str, np.ndarray], understanding: Understanding | None = None,
                    prefilter: bool = True, unfiltered: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
        """Each leg's body; vector legs get the parse's pre-filter unless ``prefilter`` is off or they
        are named in ``unfiltered`` (legs it cannot match, ``unmatchable_prefilters``)."""
        bodies = {}
        timeout = self.options.leg_timeout_ms
        knn_filters = self.knn_filters(request.filters, understanding, ranking) if prefilter else request.filters
        boosts = attributes.lexical_boosts(understanding, ranking.attribute_boost)
        for leg in weights:
            modality, field_name = LEGS[leg]
            if field_name is None:
                window = ranking.boost_window if boosts else 0
                body = queries.bm25_body(request.text or "", ranking, request.filters, request.negative_text,
                                         size=window or None, timeout_ms=timeout,
                                         client_analysis=self.client_analysis())
                bodies[leg] = body if window else attributes.with_lexical_boosts(body, boosts)
            elif modality in vectors:
                bodies[leg] = queries.knn_body(field_name, vectors[modality], ranking,
                                               request.filters if leg in unfiltered else knn_filters,
                                               timeout_ms=timeout)
        return bodies

    def unmatchable_prefilters(self, understanding: Understanding | None, ranking: RankingConfig,
                               weights: Mapping[str, float]) -> frozenset[str]:
        """The vector legs whose pre-filter no document with their vector matches
        (``attributes.FilterCombinations``): they go unfiltered at once, as they would after coming back empty."""
        clauses = attributes.prefilter_clauses(understanding) if ranking.attribute_filter else []
        table = self.understander.filter_combinations() if clauses else None
        if table is None:
            return frozenset()
        return frozenset(leg for leg in weights if (field_name := LEGS[leg][1]) is not None
                         and not table.can_match(clauses, field_name))

    @staticmethod
    def boost_in_window(run: LegRun, ranking: RankingConfig) -> None:
        """``boost_window``: the lexical leg came back that deep without the parse's boosts; add them
        here and cut it to ``depth`` (``attributes.boosted_window``)."""
        boosts = attributes.lexical_boosts(run.understanding, ranking.attribute_boost) if ranking.boost_window else []
        if not boosts:
            return
        for leg, ranked in run.legs.items():
            if LEGS[leg][1] is None:  # the lexical leg (no vector field)
                run.legs[leg] = attributes.boosted_window(ranked, run.sources, boosts, ranking.depth)

    @staticmethod
    def knn_filters(filters: queries.Filters, understanding: Understanding | None,
                    ranking: RankingConfig) -> queries.Filters:
        """The vector legs' filter: the request's own, plus the parse's confident attributes."""
        prefilter = attributes.prefilter_clauses(understanding) if ranking.attribute_filter else []
        return queries.filter_clauses(filters) + prefilter if prefilter else filters

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
        field_name, client_analysis, dfs = None, False, False
        try:
            mappings = self.gateway.mappings(self.index)
            for name, mapping in mappings.items():
                self._id_fields[name] = (mapping.get("_meta") or {}).get("doc_id_field")
            declared = {self._id_fields[name] for name in mappings}
            field_name = declared.pop() if len(declared) == 1 else None
            # The analysed lexical field is queried only when every index behind the alias has it filled.
            client_analysis = bool(mappings) and all(
                queries.lexical_analysis_of(mapping.get("_meta")) == "client" for mapping in mappings.values())
            dfs = any(legs.needs_dfs(mapping.get("_meta")) for mapping in mappings.values())
        except Exception:  # an optimisation only: any failure (or a fake gateway) means the ordinary path
            field_name, dfs = None, self._lexical_dfs  # the shard layout last seen stays
        self._alias_id_field, self._id_field_checked_until = field_name, now + self.options.id_field_ttl_s
        self._client_analysis, self._lexical_dfs = client_analysis, dfs
        return field_name

    def client_analysis(self) -> bool:
        """Whether the BM25 leg also queries ``search_text_analyzed`` (indices built without analysis-common,
        ``_meta.lexical_analysis: client``; mmsearch.text_analysis). Looked up with the id field."""
        self.doc_id_field()
        return self._client_analysis

    @property
    def declared_id_fields(self) -> dict[str, str | None]:
        """Concrete index -> its ``_meta.doc_id_field`` (None: not declared), as last looked up."""
        return dict(self._id_fields)

    # -- query understanding --------------------------------------------------------------

    def understand(self, text: str | None, vector: np.ndarray | None, ranking: RankingConfig,
                   image_vector: np.ndarray | None = None,
                   photo: Mapping[str, Sequence[tuple[str, float]]] | None = None) -> Understanding | None:
        """The parsed query, or None when the ranking turns understanding off or there is neither text
        nor a photo read by classifiers. With a photo, the words' attributes override the photo's;
        the photo supplies the rest (its type and colour)."""
        if not ranking.understanding or not (text or photo):
            return None
        return self.understander.parse(text or "", vector, image_vector, photo)

    def msearch(self, searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.gateway.msearch(searches, timeout_s=self._leg_request_timeout_s)

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.gateway.search(index, body, timeout_s=self._leg_request_timeout_s)

    def _send_legs(self, batches: Sequence[LegBatch], lean: bool, id_field: str | None
                   ) -> tuple[list[list[dict[str, Any]]], list[list[legs.ParsedLeg]] | None]:
        self.doc_id_field()  # refreshes the shard layout (DFS for BM25) with the id field, same TTL
        searches = legs.msearch_searches(batches, lean, id_field, self._lexical_dfs, self._alias_id_field)
        responses = legs.split_responses(batches, self.msearch(searches))
        return responses, legs.parse_batches(batches, responses, self._id_fields, id_field)

    def run_batches(self, batches: Sequence[LegBatch], lean: bool) -> list[LegRun]:
        """The legs of one or more searches -> one ``_msearch`` -> parse -> degrade, one ``LegRun`` each."""
        id_field = self.doc_id_field() if lean else None
        responses, parsed = self._send_legs(batches, lean, id_field)
        if parsed is None:
            # A hit from an index that does not declare the field (the alias moved since the last
            # look): forget the field and run the legs the ordinary way.
            self._id_field_checked_until = 0.0
            responses, parsed = self._send_legs(batches, lean, None)
        runs = []
        for batch, batch_responses, batch_parsed in zip(batches, responses, parsed or ()):
            run = LegRun(lean=lean)
            legs.collect(batch, batch_responses, batch_parsed, run, self.options.leg_timeout_ms)
            runs.append(run)
        # Legs answered from two indices (an alias swap mid-request) run again, pinned (legs.rerun_mixed).
        return legs.rerun_mixed(batches, runs, lambda alias: self.gateway.alias_targets(alias),
                                lambda pinned: self.run_batches(pinned, lean))

    def run_legs(self, request: SearchRequest, ranking: RankingConfig) -> LegRun:
        start = time.perf_counter()
        weights = self.active_legs(request, ranking)
        if not weights:
            raise RequestValidationError("every leg has weight 0 for this request: raise text_weight, image_weight "
                                         "or a leg weight above 0")
        degraded: list[str] = []
        shopper_text = request.text
        # The words' parse comes first (pure, ~0.05 ms): the legs search its corrected words, and the
        # lexical leg its boosts, while the text is encoded.
        words = self.understand(request.text, None, ranking) if request.text else None
        corrected = words.corrected_text() if words is not None else None
        searched = dataclasses.replace(request, text=corrected) if corrected else request
        ahead = self._lexical_ahead(searched, ranking, weights, words)
        encoded = self.encode_query(searched, ranking, degraded, ahead.send if ahead is not None else None)
        vectors = encoded.vectors
        encode_ms = _ms(start)
        understanding = self.full_parse(shopper_text, words, vectors, ranking, encoded.photo)
        request = searched  # the parse read the shopper's words; the legs search the corrected ones
        vector_weights = weights if ahead is None else {leg: w for leg, w in weights.items() if leg not in ahead.legs}
        hopeless = self.unmatchable_prefilters(understanding, ranking, vector_weights)
        bodies = self._leg_bodies(request, ranking, vector_weights, vectors, understanding, unfiltered=hopeless)
        if not bodies and ahead is None:
            raise EncoderUnavailableError("no leg can answer this request", degraded=degraded)
        es_start = time.perf_counter()
        facets = tuple(dict.fromkeys(request.facets + attributes.docvalue_fields(understanding)))
        batch = LegBatch(self.index, bodies, vector_weights, facets)
        lean = ahead.lean if ahead is not None else self.lean_for(len(bodies))
        run = self._run_with_ahead(batch, ahead, lean)
        run.understanding, run.text = understanding, shopper_text
        run.prefiltered = attributes.prefiltered_fields(understanding, ranking.attribute_filter)
        run.filter_dropped = sorted(hopeless & set(run.legs))
        if run.prefiltered:
            unfiltered = self._leg_bodies(request, ranking, vector_weights, vectors, understanding, prefilter=False)
            legs.recover_empty_legs([batch], [run], [unfiltered], lambda retry: self.run_batches(retry, lean))
        self.boost_in_window(run, ranking)
        run.degraded[:0] = degraded
        run.took_ms["encode"] = encode_ms
        raise_for_unanswered(run, self.index)
        if request.filters:
            clauses = self.knn_filters(request.filters, understanding, ranking)
            self.guarantee_k(self.index, queries.filter_clauses(clauses), ranking, vectors, run)
        run.took_ms["es"] = _ms(es_start)
        return run

    def full_parse(self, text: str | None, words: Understanding | None, vectors: Mapping[str, np.ndarray],
                   ranking: RankingConfig, photo: Mapping[str, Sequence[tuple[str, float]]] | None = None
                   ) -> Understanding | None:
        """The parse the legs and fusion use: the words' own (``words``), plus what the query vector
        (a type when the words name none) and a photo's classifiers add."""
        if words is None or photo or "image" in vectors:
            return self.understand(text, vectors.get("text"), ranking, vectors.get("image"), photo)
        if "article_type" in words.attributes or "text" not in vectors:
            return words
        return self.understand(text, vectors["text"], ranking)

    def _lexical_ahead(self, request: SearchRequest, ranking: RankingConfig, weights: dict[str, float],
                       parse: Understanding | None) -> legs.LexicalAhead | None:
        """A text query's lexical leg, sent while the text is encoded (it needs no vector: its boosts
        come from the words' parse, without the type the query vector might add). Only when there are
        vector legs to wait for and no photo (a photo's classifiers add attributes to the boosts)."""
        lexical = {leg: weight for leg, weight in weights.items() if legs.is_lexical(leg)}
        if not (self.options.lexical_ahead and lexical and request.text and request.image is None
                and self.encoder is not None and len(lexical) < len(weights)):
            return None
        bodies = self._leg_bodies(request, ranking, lexical, {}, parse)
        # The attribute leg reads the candidates' type, which the vector may add to the parse.
        fields = attributes.docvalue_fields(parse) + (("article_type",) if parse is not None else ())
        batch = LegBatch(self.index, bodies, lexical, tuple(dict.fromkeys(request.facets + fields)))
        lean = self.lean_for(len(weights))
        return legs.LexicalAhead(batch, lean, lambda: self.run_batches([batch], lean)[0])

    def _run_with_ahead(self, batch: LegBatch, ahead: legs.LexicalAhead | None, lean: bool) -> LegRun:
        """The vector legs' batch, merged with the lexical leg sent ahead (if any). Legs the two requests
        answered from two indices (an alias swap between them) run again together, pinned."""
        if ahead is None:
            return self.run_batches([batch], lean)[0]
        lexical_run = ahead.result()
        if not batch.bodies:  # the encoder failed: the lexical leg answers alone
            return lexical_run
        run = legs.merged(lexical_run, self.run_batches([batch], lean)[0])
        return legs.rerun_mixed([legs.joined(ahead.batch, batch)], [run],
                                lambda alias: self.gateway.alias_targets(alias),
                                lambda pinned: self.run_batches(pinned, lean))[0]

    # -- guaranteed k under filters (query_service.guaranteed_k) ----------------------------

    def guarantee_k(self, index: str, clauses: list[dict[str, Any]], ranking: RankingConfig,
                    vectors: dict[str, np.ndarray], run: LegRun) -> None:
        exact = guaranteed_k.ExactSearch(bool(getattr(self.capabilities, "painless", False)),
                                         self.options.exact_limit, self.options.escalation_factor)
        guaranteed_k.guarantee_k(self._search, lambda name, query: self.gateway.count(name, query), index, clauses,
                                 ranking, vectors, run, exact)

    def _fetch_page_sources(self, run: LegRun, ids: list[str]) -> None:
        """Replace the page hits' doc-value stubs with their ``_source`` (one request for the page)."""
        index = run.answered_from() or self.index
        _, sources = queries.parse_leg_response(self._search(index, queries.page_sources_body(ids)))
        for doc_id in ids:
            run.sources[doc_id] = sources.get(doc_id, {})  # a doc deleted since the legs ran shows empty

    # -- the whole search ------------------------------------------------------------------

    def fuse_run(self, run: LegRun, ranking: RankingConfig) -> list[FusedHit]:
        """Fuse the legs; with a parse, once more with the attribute leg over the fused candidates."""
        legs_in, weights, attribute_weight = run.legs, run.weights, ranking.attribute_weight
        if ranking.adaptive is not None:  # the policy's preset for this query's features; unnamed legs keep theirs
            preset = ranking.adaptive.weights_for(query_features(run.legs, run.text, run.understanding))
            weights = {leg: preset.get(leg, weight) for leg, weight in run.weights.items() if preset.get(leg, weight) > 0}
            legs_in = {leg: ranked for leg, ranked in run.legs.items() if leg in weights}
            attribute_weight = preset.get(attributes.ATTRIBUTE_LEG, attribute_weight)
        understanding = run.understanding
        with_attributes = understanding is not None and bool(understanding.attributes) and attribute_weight > 0
        if ranking.method == "rrf" and all(leg < attributes.ATTRIBUTE_LEG for leg in legs_in):
            # RRF adds up: the attribute leg joins the sums instead of a second fusion (fusion.RrfSums).
            sums = RrfSums(legs_in, weights, ranking.rrf_k)
            if with_attributes:
                leg = attributes.attribute_leg(understanding, sums.order(), run.sources)
                if leg:
                    sums.add_leg(attributes.ATTRIBUTE_LEG, leg, attribute_weight)
            return sums.hits()
        fused = fuse(legs_in, ranking.method, weights, ranking.rrf_k, ranking.normalization,
                     ranking.combination, ranking.bounds)
        if not with_attributes:
            return fused
        leg = attributes.attribute_leg(understanding, [hit.doc_id for hit in fused], run.sources)
        if not leg:
            return fused
        return fuse({**legs_in, attributes.ATTRIBUTE_LEG: leg}, ranking.method,
                    {**weights, attributes.ATTRIBUTE_LEG: attribute_weight}, ranking.rrf_k,
                    ranking.normalization, ranking.combination, ranking.bounds)

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
            "understood": attributes.summary(run.understanding, run.prefiltered,
                                             bool(run.understanding and ranking.attribute_boost > 0),
                                             run.filter_dropped),
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
        response = self._search(self.index, body)
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

    # -- searches an Elasticsearch application wrote (the proxy: query_service.app_search) ---

    def search_app(self, app_queries: Sequence[AppQuery], ranking: RankingConfig) -> list[AppResult]:
        """Hybrid results for app DSL searches (``app_search.search_app``)."""
        return app_search.search_app(self, app_queries, ranking)

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

"""The query parser of a running engine: the alias's facet vocabulary and type vectors, kept fresh.

``understanding.QueryParser`` is pure; this class does the I/O it needs: one terms
aggregation over the index for the vocabulary (read again after ``ttl_s``: a new index
version may bring new values) and the encoder's vectors of the article types (computed
once per type). A failed read keeps the parser it had; no parser means no parse, never a
failed search.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mmsearch.exceptions import ClusterError
from query_service.attributes import FilterCombinations
from query_service.ranking import LEGS
from query_service.understanding import FIELDS, QueryParser, Understanding

COMBINATIONS = "filter_combinations"

#: Largest number of values read per field (brands are the long tail).
VOCABULARY_SIZE = 2000
#: Largest number of (type, gender, colour) combinations read for ``attributes.FilterCombinations``
#: (the 42,946-product catalog has 2,678); a catalog with more keeps no table, and its emptied legs run again.
COMBINATIONS_SIZE = 10_000
#: The vector fields the kNN legs search (``ranking.LEGS``).
VECTOR_FIELDS = tuple(sorted({name for _, name in LEGS.values() if name is not None}))


class Understander:
    def __init__(self, search: Callable[[dict[str, Any]], dict[str, Any]], encoder: Any, ttl_s: float) -> None:
        self.search = search
        self.encoder = encoder
        self.ttl_s = ttl_s
        self._parser: QueryParser | None = None
        self._parser_until = 0.0
        self._type_vectors: dict[str, np.ndarray] = {}
        self._combinations: FilterCombinations | None = None

    def warm(self) -> bool:
        """Read the vocabulary and encode the type names now (a worker's start, not a shopper's first
        query). True when a parser is ready; on failure the first query tries again."""
        if self.parser() is None:
            self._parser_until = 0.0
            return False
        return True

    def parser(self) -> QueryParser | None:
        now = time.monotonic()
        if now < self._parser_until:
            return self._parser
        self._parser_until = now + self.ttl_s
        aggs: dict[str, Any] = {name: {"terms": {"field": name, "size": VOCABULARY_SIZE}} for name in FIELDS}
        aggs[COMBINATIONS] = FilterCombinations.aggregation(VECTOR_FIELDS, COMBINATIONS_SIZE)
        try:
            aggregations = self.search({"size": 0, "track_total_hits": False, "aggs": aggs}).get("aggregations") or {}
        except ClusterError:
            return self._parser
        vocabulary = {name: [str(b["key"]) for b in (aggregations.get(name) or {}).get("buckets", [])]
                      for name in FIELDS}
        self._parser = QueryParser(vocabulary, self._vectors_of_types(vocabulary["article_type"]))
        combinations = (aggregations.get(COMBINATIONS) or {}).get("buckets")
        # A full page may not be all of them: no table then (never a wrong "nothing matches").
        self._combinations = FilterCombinations(combinations, VECTOR_FIELDS) \
            if combinations is not None and len(combinations) < COMBINATIONS_SIZE else None
        return self._parser

    def filter_combinations(self) -> FilterCombinations | None:
        """The pre-filter combinations that exist, read with the vocabulary (None: unknown)."""
        self.parser()
        return self._combinations

    def _vectors_of_types(self, types: Sequence[str]) -> dict[str, np.ndarray]:
        missing = [name for name in types if name not in self._type_vectors]
        if missing and self.encoder is not None:
            try:
                for name, vector in zip(missing, self.encoder.encode_texts(missing)):
                    self._type_vectors[name] = np.asarray(vector, dtype=np.float32)
            except Exception:  # no embedding fallback is a weaker parse, not a failed search
                return {}
        return {name: self._type_vectors[name] for name in types if name in self._type_vectors}

    def parse(self, text: str, vector: np.ndarray | None, image_vector: np.ndarray | None = None,
              photo: Mapping[str, Sequence[tuple[str, float]]] | None = None) -> Understanding | None:
        parser = self.parser()
        return parser.parse(text, vector, image_vector, photo) if parser is not None else None

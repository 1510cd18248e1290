"""The legs of one or more searches, sent as one ``_msearch``: pure planning and parsing, no I/O.

``SearchEngine`` (the only caller) does the one request; everything it does
before and after lives here so it can be tested without a cluster:

- ``LegBatch``: one search's leg bodies, the index they run on, their weights;
- ``lean_bodies`` / ``msearch_searches``: ids-only legs for every batch, one payload;
- ``split_responses`` / ``parse_batches``: the items back to their batch and leg;
- ``collect``: the degradation rules, leg by leg, into a ``LegRun``; ``raise_for_unanswered``: when none answered;
- ``rerun_mixed`` / ``recover_empty_legs``: which legs run a second time, and how the answers are
  merged. They take the engine's sender as a function (``RunBatches``), so they do no I/O either;
- ``LexicalAhead``: a lexical leg sent while the text is encoded (through a function it is given),
  and ``joined`` / ``merged``: its batch and run with the vector legs'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmsearch.exceptions import ClusterError, ClusterUnavailableError, IndexNotFoundError
from query_service import queries
from query_service.ranking import LEGS

Ranked = list[tuple[str, float]]
ParsedLeg = tuple[Ranked, dict[str, dict[str, Any]]]


@dataclass
class LegRun:
    """Raw leg results before fusion (also what offline tuning caches)."""

    legs: dict[str, Ranked] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    took_ms: dict[str, float] = field(default_factory=dict)
    leg_took_ms: dict[str, float] = field(default_factory=dict)
    guaranteed_k: list[dict[str, Any]] = field(default_factory=list)
    lean: bool = False  # sources hold facet doc values only; page sources are fetched separately
    #: Each leg's response without its hits (total, _shards, aggregations): the proxy answers with the lexical one's.
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Legs Elasticsearch refused: leg -> (HTTP status of the item, its error object).
    errors: dict[str, tuple[int, Any]] = field(default_factory=dict)
    #: The parsed query (understanding.Understanding) the legs were shaped with, if any, and its text.
    understanding: Any = None
    text: str | None = None
    #: Attribute pre-filters applied to the vector legs, and those dropped because a leg came back empty.
    prefiltered: list[str] = field(default_factory=list)
    filter_dropped: list[str] = field(default_factory=list)
    #: The concrete indices the legs' hits came from (``_index``): one, unless the alias moved
    #: between the ``_msearch``'s items (a swap racing the request; see ``answered_from``).
    indices: set[str] = field(default_factory=set)

    def answered_from(self) -> str | None:
        """The one concrete index every hit came from, or None (no hits, or the alias moved mid-request).

        The follow-up requests of a search (page sources, the app's page) go there rather than to the
        alias, so a swap between the legs and the page cannot mix two versions in one answer.
        """
        return next(iter(self.indices)) if len(self.indices) == 1 else None


@dataclass(frozen=True)
class LegBatch:
    """One search's legs: full bodies (lean copies are made at send time), weights, facet doc values."""

    index: str
    bodies: Mapping[str, Mapping[str, Any]]
    weights: Mapping[str, float]
    docvalue_fields: tuple[str, ...] = ()


class LexicalAhead:
    """A lexical leg sent while the query is encoded (``SearchEngine.run_legs``): ``send`` runs it
    (on the request's thread, while the encoder's thread works), ``result`` is its run."""

    def __init__(self, batch: LegBatch, lean: bool, run: Callable[[], LegRun]) -> None:
        self.batch, self.lean = batch, lean
        self._run = run
        self._result: LegRun | None = None

    @property
    def legs(self) -> Mapping[str, Any]:
        return self.batch.bodies

    def send(self) -> None:
        self._result = self._run()

    def result(self) -> LegRun:
        """The lexical leg's run; sent now if encoding never started (no text to encode)."""
        if self._result is None:
            self.send()
        assert self._result is not None
        return self._result


def lean_bodies(batch: LegBatch, lean: bool, id_field: str | None) -> list[dict[str, Any]]:
    if not lean:
        return [dict(body) for body in batch.bodies.values()]
    return [queries.ids_only(body, batch.docvalue_fields, id_field) for body in batch.bodies.values()]


#: The lexical legs' search type on multi-shard indices. BM25's term statistics (document
#: frequencies, average field length) are per shard, so without a DFS round a multi-shard index
#: scores, and orders, the same documents differently from a one-shard index (tests/live/test_shards.py,
#: docs/operations.md "Shards and replicas"). kNN legs never send it: they use no term statistics,
#: and their ``k`` / ``num_candidates`` are per shard already.
LEXICAL_SEARCH_TYPE = "dfs_query_then_fetch"


def needs_dfs(meta: Mapping[str, Any] | None) -> bool:
    """Whether an index's BM25 leg needs DFS: more than one primary shard, or a shard count not declared.

    Catalog builds declare it (``_meta.index_settings.shards``); an enriched legacy index does not
    and may have several shards, so it gets DFS (Elasticsearch skips the DFS round by itself when
    a search hits a single shard, so a wrong guess costs nothing there).
    """
    shards = ((meta or {}).get("index_settings") or {}).get("shards")
    return not (isinstance(shards, int) and shards == 1)


def msearch_header(index: str, leg: str, dfs: bool) -> dict[str, Any]:
    """The ``_msearch`` header of one leg: its index, and DFS for the lexical (BM25) leg when ``dfs``."""
    if dfs and is_lexical(leg):
        return {"index": index, "search_type": LEXICAL_SEARCH_TYPE}
    return {"index": index}


def is_lexical(leg: str) -> bool:
    return leg in LEGS and LEGS[leg][1] is None


def with_tie_break(body: dict[str, Any], id_field: str) -> dict[str, Any]:
    """A lexical leg ranked by score, then by the id's doc values.

    Why: BM25 gives many products the very same score (same words, same field lengths), and
    Elasticsearch breaks those ties by shard and Lucene doc order, which differ between shard
    layouts, between a primary and its replica, and after merges. Where such a tie group is cut
    by the leg's depth, each copy kept other members, so fused candidates and the facets counted
    over them changed with the copy that answered (measured: a 3-shard copy's proxy facets differed
    by one product in a tail bucket; tests/live/test_shards.py). A body with its own sort is kept.
    """
    if "sort" in body:
        return body
    return {**body, "sort": [{"_score": "desc"}, {id_field: "asc"}]}


def msearch_searches(batches: Sequence[LegBatch], lean: bool, id_field: str | None,
                     dfs: bool = False, tie_break_field: str | None = None) -> list[dict[str, Any]]:
    """Header/body pairs of every leg of every batch, in batch then leg order.

    ``dfs``: the index has several shards (``needs_dfs``); ``tie_break_field``: the doc-values field
    equal to ``_id`` (``_meta.doc_id_field``), which orders the lexical leg's equal scores.
    """
    searches: list[dict[str, Any]] = []
    for batch in batches:
        for leg, body in zip(batch.bodies, lean_bodies(batch, lean, id_field)):
            searches.append(msearch_header(batch.index, leg, dfs))
            searches.append(with_tie_break(body, tie_break_field) if tie_break_field and is_lexical(leg) else body)
    return searches


def split_responses(batches: Sequence[LegBatch], responses: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    position = 0
    for batch in batches:
        out.append(list(responses[position:position + len(batch.bodies)]))
        position += len(batch.bodies)
    return out


def parse_batches(batches: Sequence[LegBatch], responses: Sequence[Sequence[dict[str, Any]]],
                  id_fields: Mapping[str, str | None], id_field: str | None) -> list[list[ParsedLeg]] | None:
    """Each leg's (ranked, sources); a failed leg gets empty ones. None: an id can't be trusted
    (a hit from an index that does not declare ``id_field``): send again without it."""
    out: list[list[ParsedLeg]] = []
    for batch, batch_responses in zip(batches, responses):
        keep_field = id_field in batch.docvalue_fields
        parsed: list[ParsedLeg] = []
        for response in batch_responses:
            if queries.leg_error_reason(response) is not None:
                parsed.append(([], {}))
            elif id_field is None:
                parsed.append(queries.parse_leg_response(response))
            else:
                leg_result = queries.parse_id_field_leg(response, id_fields, id_field, keep_field)
                if leg_result is None:
                    return None
                parsed.append(leg_result)
        out.append(parsed)
    return out


def ties_in_id_order(ranked: Ranked) -> Ranked:
    """A score-ordered leg with equal scores put in id order; any other order is returned as it is.

    Elasticsearch breaks score ties by shard and Lucene doc order, which differ between shard
    layouts, replicas and merges: the same index content would rank tied products differently
    (measured on a 3-shard copy of a 1-shard index, with DFS: identical BM25 scores, and every
    remaining reordering was inside a group of equal scores; tests/live/test_shards.py).
    """
    if not score_ordered(ranked):
        return ranked  # not ranked by score (e.g. an app's own sort): not ours to reorder
    return sorted(ranked, key=lambda hit: (-hit[1], hit[0]))


def score_ordered(ranked: Sequence[tuple[str, float]]) -> bool:
    """No hit scores above the one before it: the leg is ranked by score, not by an app's own sort."""
    scores = [score for _, score in ranked]
    return not any(later > earlier for earlier, later in zip(scores, scores[1:]))


def collect(batch: LegBatch, responses: Sequence[dict[str, Any]], parsed: Sequence[ParsedLeg], run: LegRun,
            leg_timeout_ms: int) -> None:
    """The degradation rules: a failed leg is dropped and named; a timed-out one is kept and named."""
    run.weights = {leg: batch.weights[leg] for leg in batch.bodies}
    for leg, response, (ranked, sources) in zip(batch.bodies, responses, parsed):
        reason = queries.leg_error_reason(response)
        if reason is not None:
            run.degraded.append(f"leg:{leg}: {reason}")
            run.weights.pop(leg, None)
            run.errors[leg] = (int(response.get("status") or 500), response.get("error"))
            continue
        if response.get("timed_out"):
            run.degraded.append(f"leg:{leg}: timed out after {leg_timeout_ms}ms (partial results)")
        run.indices.update(hit["_index"] for hit in (response.get("hits") or {}).get("hits", ()) if "_index" in hit)
        run.legs[leg] = ties_in_id_order(ranked)
        run.sources.update(sources)
        run.leg_took_ms[leg] = float(response.get("took", 0))
        run.envelopes[leg] = {key: value for key, value in response.items() if key != "hits"} | {
            "total": (response.get("hits") or {}).get("total")}


def raise_for_unanswered(run: LegRun, index: str) -> None:
    """No leg answered: the same failure gets the gateway's status for it (missing index 503, refused 502)."""
    if run.legs or not run.errors:
        return
    statuses = {status for status, _ in run.errors.values()}
    reasons = "; ".join(run.degraded)[:300]
    if statuses == {404}:
        raise IndexNotFoundError("the index or alias does not exist (yet)", index=index)
    if statuses & {429, 502, 503, 504}:
        raise ClusterUnavailableError("Elasticsearch is busy or restarting", index=index, error=reasons)
    raise ClusterError("Elasticsearch rejected every leg of the search", index=index, error=reasons)


#: Sends batches as one ``_msearch`` and collects them, one ``LegRun`` each (``SearchEngine.run_batches``
#: with its ``lean`` bound). Passed in rather than called on the engine so the re-run rules stay testable.
RunBatches = Callable[[Sequence[LegBatch]], list[LegRun]]


def rerun_mixed(batches: Sequence[LegBatch], runs: list[LegRun], alias_targets: Callable[[str], list[str]],
                run_batches: RunBatches) -> list[LegRun]:
    """Legs answered from two indices (a swap landed between the ``_msearch``'s items) run again,
    pinned to the alias's one current index: an answer never mixes two versions of the catalog.

    ``alias_targets`` (the concrete indices behind an alias) is asked only for a mixed run; when the
    alias has no single target the run is kept as it is. ``runs`` is updated in place and returned.
    """
    for i, (batch, run) in enumerate(zip(batches, runs)):
        if len(run.indices) > 1 and len(targets := alias_targets(batch.index)) == 1:
            pinned = LegBatch(targets[0], batch.bodies, batch.weights, batch.docvalue_fields)
            runs[i] = run_batches([pinned])[0]
    return runs


def joined(first: LegBatch, second: LegBatch) -> LegBatch:
    """Two batches of one search (the lexical leg sent ahead, the vector legs) as one batch."""
    return LegBatch(first.index, {**first.bodies, **second.bodies}, {**first.weights, **second.weights},
                    tuple(dict.fromkeys(first.docvalue_fields + second.docvalue_fields)))


def merged(first: LegRun, second: LegRun) -> LegRun:
    """The runs of two batches of one search as one run: their legs, sources, notes and indices.

    Degradation notes keep the order the legs were sent in (``first``'s, then ``second``'s); a source
    both runs fetched is the same document, so either copy will do.
    """
    return LegRun(legs={**first.legs, **second.legs}, sources={**first.sources, **second.sources},
                  weights={**first.weights, **second.weights}, degraded=first.degraded + second.degraded,
                  took_ms={**first.took_ms, **second.took_ms}, leg_took_ms={**first.leg_took_ms, **second.leg_took_ms},
                  guaranteed_k=first.guaranteed_k + second.guaranteed_k, lean=first.lean and second.lean,
                  envelopes={**first.envelopes, **second.envelopes}, errors={**first.errors, **second.errors},
                  indices=first.indices | second.indices)


def recover_empty_legs(batches: Sequence[LegBatch], runs: Sequence[LegRun],
                       unfiltered: Sequence[Mapping[str, Mapping[str, Any]]], run_batches: RunBatches) -> None:
    """A vector leg the parse's pre-filter left empty runs again without it (one ``_msearch``).

    ``unfiltered``: each batch's leg bodies built without the pre-filter (empty where the run was not
    pre-filtered). The answers replace the empty legs in place and the legs are named in ``filter_dropped``.
    A leg already named there was sent without the pre-filter (``attributes.FilterCombinations``): an
    empty answer is its real answer, and it is not sent again.
    """
    retry: list[tuple[LegBatch, LegRun]] = []
    for batch, run, bodies in zip(batches, runs, unfiltered):
        if not run.prefiltered:
            continue
        empty = {leg: bodies[leg] for leg in batch.bodies if LEGS[leg][1] and leg in bodies
                 and leg in run.legs and not run.legs[leg] and leg not in run.filter_dropped}
        if empty:
            retry.append((LegBatch(batch.index, empty, batch.weights, batch.docvalue_fields), run))
    if not retry:
        return
    for (batch, run), again in zip(retry, run_batches([b for b, _ in retry])):
        run.legs.update(again.legs)
        run.sources.update(again.sources)
        run.degraded += again.degraded
        run.filter_dropped = sorted(set(run.filter_dropped) | set(batch.bodies))

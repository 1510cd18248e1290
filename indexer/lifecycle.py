"""Index lifecycle against a real cluster: create, build, validate, swap, rollback, status, prune.

Indices are versioned (``<alias>-v<UTC timestamp>``) behind one alias; the
alias only ever moves in a single ``_aliases`` call. Decisions live in
``indexer.naming`` and ``mappings``; this module only performs the calls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from indexer.catalog import CatalogConfig, CatalogItem, CatalogPart, count_records, read_catalog
from indexer.documents import BuildSummary, normalise_record, source_builder_for
from indexer.images import ImageSource
from indexer.naming import check_model, new_version_name, pick_rollback, plan_prune, plan_swap, versions_newest_first
from indexer.pipeline import DeadLetterWriter, PipelineConfig, prepare_catalog, run_pipeline
from mappings import AnalysisConfig, IndexSettings, IndexSpec, ModelFacts, VectorConfig, build_index_body, \
    check_mapping_against_model
from mmsearch import retries
from mmsearch.exceptions import BadRecordError, BuildInterruptedError, ClusterError, ClusterUnavailableError, \
    ConfigError, IndexingError, ModelMismatchError
from mmsearch.gateway import ElasticsearchGateway, body_of, guarded, is_outage

T = TypeVar("T")
log = logging.getLogger(__name__)

PIT_KEEP_ALIVE = "2m"
SCAN_PAGE = 2000


def model_identity_of(model_dir: str | Path) -> str:
    """sha256 of the package's manifest.json bytes (the contract's model identity), without loading ONNX."""
    from onnx_models.manifest import MANIFEST, identity_of

    if not (Path(model_dir) / MANIFEST).is_file():
        raise ConfigError("not a model package (manifest.json missing)", model_dir=str(model_dir))
    return identity_of(Path(model_dir))


# Every client call below runs in ``mmsearch.gateway.guarded``: ES failures leave as the project's
# exceptions with the gateway's statuses (unreachable -> ClusterUnavailableError), which the CLI
# prints as one message plus context, without a traceback.


# --- reading -----------------------------------------------------------------------


def index_exists(es: Any, name: str) -> bool:
    return bool(guarded("check index", lambda: es.indices.exists(index=name), index=name))


def alias_targets(es: Any, alias: str) -> list[str]:
    """Concrete indices the alias points to ([] when the alias does not exist).

    The gateway's rule, so the indexer and the query service agree on what "no alias" is.
    """
    return ElasticsearchGateway(es).alias_targets(alias)


def index_meta(es: Any, index: str) -> dict[str, Any]:
    body = body_of(guarded("get mapping", lambda: es.indices.get_mapping(index=index), index=index))
    return dict((next(iter(body.values()))["mappings"].get("_meta") or {}))


def iter_hits(es: Any, index: str, *, source: Any = True, query: dict[str, Any] | None = None,
              docvalue_fields: list[str] | None = None, page: int = SCAN_PAGE) -> Iterator[dict[str, Any]]:
    """Every document via point-in-time + search_after (works without the reindex/scroll-heavy paths)."""
    pit = body_of(guarded("open PIT", lambda: es.open_point_in_time(index=index, keep_alive=PIT_KEEP_ALIVE),
                          index=index))["id"]
    after: list[Any] | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"pit": {"id": pit, "keep_alive": PIT_KEEP_ALIVE}, "size": page,
                                      "sort": ["_shard_doc"], "query": query or {"match_all": {}},
                                      "_source": source, "track_total_hits": False}
            if docvalue_fields:
                kwargs["docvalue_fields"] = docvalue_fields
            if after is not None:
                kwargs["search_after"] = after
            response = body_of(guarded("PIT search", lambda: es.search(**kwargs), index=index))
            pit = response.get("pit_id", pit)
            hits = response["hits"]["hits"]
            if not hits:
                return
            yield from hits
            after = hits[-1]["sort"]
    finally:
        try:
            es.close_point_in_time(id=pit)
        except Exception:  # the PIT expires on its own; closing is only courtesy
            pass


def existing_hashes(es: Any, index: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for hit in iter_hits(es, index, source=False, docvalue_fields=["content_hash"]):
        values = (hit.get("fields") or {}).get("content_hash")
        if values:
            out[hit["_id"]] = values[0]
    return out


def count(es: Any, index: str, query: dict[str, Any] | None = None) -> int:
    return int(body_of(guarded("count", lambda: es.count(index=index, query=query or {"match_all": {}}),
                               index=index))["count"])


# --- create / build ---------------------------------------------------------------


def create_index(es: Any, alias: str, spec: IndexSpec, name: str | None = None) -> str:
    if index_exists(es, alias) and not alias_targets(es, alias):
        raise IndexingError(f"a concrete index is named {alias!r}; versioned indices need that name as an alias. "
                            "Use `index enrich --from <it> --replace-legacy` to migrate it", alias=alias)
    if name is None:
        taken = set(body_of(guarded("list indices", lambda: es.indices.get(index=f"{alias}-v*",
                                                                           expand_wildcards="all"), alias=alias)))
        name = new_version_name(alias, dt.datetime.now(dt.timezone.utc), taken)
    body = build_index_body(spec)
    guarded("create index", lambda: es.indices.create(index=name, settings=body["settings"],
                                                      mappings=body["mappings"]), index=name)
    return name


def spec_for(es: Any, model: Any, vectors: VectorConfig, synonyms: tuple[str, ...] | None,
             source: str, capabilities: Any = None, settings: IndexSettings = IndexSettings()) -> IndexSpec:
    if capabilities is None:
        from mmsearch.capabilities import detect_capabilities

        capabilities = detect_capabilities(es)
    analysis = AnalysisConfig.for_cluster(capabilities, synonyms)
    facts = model if isinstance(model, ModelFacts) else ModelFacts.from_encoder(model)
    return IndexSpec(model=facts, analysis=analysis, vectors=vectors, settings=settings, source=source)


def image_source(catalog: CatalogConfig) -> ImageSource:
    return ImageSource(root=catalog.image_root or catalog.path.parent, kind=catalog.image_kind,
                       allow_url_fetch=catalog.allow_url_fetch, max_bytes=catalog.max_image_bytes)


def build(es: Any, encoder: Any, catalog: CatalogConfig, *, alias: str, state_dir: Path,
          vectors: VectorConfig = VectorConfig(), synonyms: tuple[str, ...] | None = None,
          pipeline: PipelineConfig = PipelineConfig(), resume: str | None = None,
          dead_letter_path: Path | None = None, capabilities: Any = None,
          force_merge: bool = True, settings: IndexSettings = IndexSettings(),
          part: CatalogPart = CatalogPart()) -> dict[str, Any]:
    """Build (or resume) a versioned index from a catalog. Returns the summary dict.

    ``settings``: shards and replicas of a new index (ignored with ``resume``: the index exists).
    ``part``: index only this part of the catalog (``--shard i/n``), so n processes can load one
    catalog into one index at once; ``resume`` names that index (made by ``index create`` or an
    earlier part). Parts record their build under ``_meta.build_parts`` and dead-letter into their
    own file (``<index>.part<i>of<n>.jsonl``).

    ``force_merge``: merge the finished index to one segment before it is served. Why:
    approximate kNN searches every segment's HNSW graph with the full ``num_candidates``,
    so a freshly bulk-loaded index with many segments answers kNN several times slower
    (Elastic's kNN tuning guide says the same); a catalog index is read-mostly between builds.
    """
    hashes: dict[str, str] = {}
    if resume:
        if not index_exists(es, resume):
            raise IndexingError("index to resume does not exist", index=resume)
        meta = index_meta(es, resume)
        if meta.get("model_identity") != encoder.identity:
            raise ModelMismatchError("cannot resume with a different model; start a new build", index=resume,
                                     index_model=str(meta.get("model_identity"))[:16],
                                     loaded_model=str(encoder.identity)[:16])
        index = resume
        hashes = existing_hashes(es, index)
    else:
        index = create_index(es, alias, spec_for(es, encoder, vectors, synonyms, str(catalog.path), capabilities,
                                                 settings))
    dead_letter_name = f"{index}.jsonl" if part.whole else f"{index}.{part.label}.jsonl"
    try:
        summary = _load(es, encoder, catalog, index, pipeline, hashes,
                        DeadLetterWriter(dead_letter_path or Path(state_dir) / "deadletter" / dead_letter_name), part)
        if force_merge:
            started = time.monotonic()
            _riding_out(pipeline, "force merge to one segment", index,
                        lambda: es.options(request_timeout=3600).indices.forcemerge(
                            index=index, max_num_segments=1, wait_for_completion=True))
            summary.force_merge_s = round(time.monotonic() - started, 1)
        meta = _riding_out(pipeline, "get mapping", index, lambda: index_meta(es, index))
        if meta.get("model_identity") != encoder.identity:
            # Bulk writes re-create a deleted index with dynamic mappings and no _meta: never serve that.
            raise IndexingError(f"index {index} lost its mapping during the build (deleted and re-created by "
                                "Elasticsearch's auto-create?); delete it and build again", index=index)
        record = {**{k: v for k, v in summary.to_dict().items() if k != "failure_reasons"},
                  "completed_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                  "resumed": bool(resume)}
        if part.whole:
            meta["build"] = record
        else:
            # Each part adds its own entry; _meta is replaced whole, so two parts finishing in the
            # same instant may drop one entry (the documents are unaffected: this is only a record).
            meta["build_parts"] = {**(meta.get("build_parts") or {}), f"{part.number}/{part.count}": record}
        _riding_out(pipeline, "record build in _meta", index, lambda: es.indices.put_mapping(index=index, meta=meta))
    except ClusterUnavailableError as exc:
        if not is_outage(exc):
            raise
        raise BuildInterruptedError(
            f"Elasticsearch was unreachable for more than {pipeline.outage.window_s:g} s while building index "
            f"{index}; what it acknowledged is kept. Resume with the same command plus `--resume {index}`") from exc
    return summary.to_dict()


def _riding_out(pipeline: PipelineConfig, what: str, index: str, call: Callable[[], T],
                policy: retries.OutagePolicy | None = None) -> T:
    """One client call of a build, retried through an outage shorter than ``policy`` (``pipeline.outage``)."""
    def note(error: BaseException, delay: float) -> None:
        log.warning("%s on %s: Elasticsearch is unreachable; retrying in %.1f s", what, index, delay)

    return retries.ride_out(lambda: guarded(what, call, index=index), policy or pipeline.outage, is_outage,
                            on_retry=note)


def _part_items(catalog: CatalogConfig, part: CatalogPart) -> Iterator[CatalogItem]:
    """The catalog's items of ``part``, keyed by the very id the documents get (``normalise_record``)."""
    def id_of(record: dict[str, Any]) -> str | None:
        try:
            return str(normalise_record(record, catalog)["id"])
        except BadRecordError:
            return None

    return read_catalog(catalog) if part.whole else part.select(read_catalog(catalog), id_of)


def _load(es: Any, encoder: Any, catalog: CatalogConfig, index: str, pipeline: PipelineConfig,
          hashes: dict[str, str], dead: DeadLetterWriter, part: CatalogPart = CatalogPart()) -> BuildSummary:
    """Bulk-load the catalog with refreshes off, then restore them (also after a failed load)."""
    # An interrupted build may have left "-1" behind; restoring that would leave the index unrefreshed.
    previous = _riding_out(pipeline, "read refresh interval", index, lambda: _refresh_interval(es, index))
    previous = None if previous == "-1" else previous
    # No refreshes during the load: each one writes a tiny segment that merges must
    # then rewrite; one refresh at the end is far cheaper.
    _riding_out(pipeline, "disable refresh", index, lambda: es.indices.put_settings(
        index=index, settings={"index": {"refresh_interval": "-1"}}))
    loaded = False
    try:
        summary = BuildSummary()
        docs = prepare_catalog(_part_items(catalog, part), catalog, summary, dead)
        # The index's _meta says whether the lexical field is analysed here (no analysis-common) or by ES.
        run_pipeline(es, encoder, docs, index, image_source(catalog), dead, pipeline, summary=summary,
                     existing_hashes=hashes, total=count_records(catalog) if pipeline.progress else None,
                     source_of=source_builder_for(index_meta(es, index)))
        loaded = True
    finally:
        dead.close()
        # After a failed load one attempt each: the load's own failure is the one to report (it says
        # how to resume), and a resumed build restores both anyway.
        policy = pipeline.outage if loaded else dataclasses.replace(pipeline.outage, window_s=0)
        try:
            _riding_out(pipeline, "restore refresh interval", index, lambda: es.indices.put_settings(
                index=index, settings={"index": {"refresh_interval": previous}}), policy)
            _riding_out(pipeline, "refresh", index, lambda: es.indices.refresh(index=index), policy)
        except ClusterError:
            if loaded:
                raise
            log.warning("could not restore the refresh interval of %s after the failed load", index)
    return summary


def _refresh_interval(es: Any, index: str) -> str | None:
    body = body_of(guarded("read refresh interval",
                           lambda: es.indices.get_settings(index=index, name="index.refresh_interval"), index=index))
    # A setting left at its default is filtered out entirely: the answer is {} (no index key), e.g.
    # after a build restored the default, or while another part of a split build loads.
    settings = next(iter(body.values()), {}).get("settings") or {}
    return (settings.get("index") or {}).get("refresh_interval")


# --- validate ---------------------------------------------------------------------


def catalog_expectations(catalog: CatalogConfig) -> dict[str, int]:
    """Distinct valid ids and how many of them reference an image (what a complete index must hold)."""
    ids: set[str] = set()
    with_image = 0
    for item in read_catalog(catalog):
        if not item.ok:
            continue
        try:
            doc = normalise_record(item.record or {}, catalog)
        except BadRecordError:
            continue
        if doc["id"] in ids:
            continue
        ids.add(doc["id"])
        with_image += int(bool(doc.get("image")))
    return {"records": len(ids), "with_image": with_image}


def validate(es: Any, index: str, *, catalog: CatalogConfig | None = None, expected_docs: int | None = None,
             model: ModelFacts | None = None, min_image_coverage: float = 0.9) -> dict[str, Any]:
    """Checks an index before it may serve: doc count, vector coverage, mapping vs model."""
    if not index_exists(es, index):
        raise IndexingError("index does not exist", index=index)
    guarded("refresh", lambda: es.indices.refresh(index=index), index=index)
    total = count(es, index)
    text_vectors = count(es, index, {"exists": {"field": "text_vector"}})
    image_vectors = count(es, index, {"exists": {"field": "image_vector"}})
    checks: list[dict[str, Any]] = []
    expect = catalog_expectations(catalog) if catalog is not None else None
    wanted = expect["records"] if expect else expected_docs
    if wanted is not None:
        checks.append({"check": "doc_count", "ok": total == wanted, "index": total, "expected": wanted})
    checks.append({"check": "text_vector_coverage", "ok": total > 0 and text_vectors == total,
                   "with_vector": text_vectors, "docs": total})
    if expect and expect["with_image"]:
        ratio = image_vectors / expect["with_image"]
        checks.append({"check": "image_vector_coverage", "ok": ratio >= min_image_coverage,
                       "with_vector": image_vectors, "catalog_with_image": expect["with_image"],
                       "ratio": round(ratio, 4), "min": min_image_coverage})
    if model is not None:
        mappings = body_of(guarded("get mapping", lambda: es.indices.get_mapping(index=index), index=index))
        mapping = next(iter(mappings.values()))["mappings"]
        problems = check_mapping_against_model(mapping, model)
        checks.append({"check": "mapping_vs_model", "ok": not problems, "problems": problems})
    return {"index": index, "ok": all(c["ok"] for c in checks), "checks": checks, "image_vectors": image_vectors}


# --- aliases ----------------------------------------------------------------------


def swap(es: Any, alias: str, target: str, *, loaded_identity: str | None, force: bool = False) -> dict[str, Any]:
    """Point ``alias`` at ``target`` in one atomic ``_aliases`` call (model identity checked first)."""
    if not index_exists(es, target) or alias_targets(es, target):
        raise IndexingError("swap target must be an existing concrete index", target=target)
    current = alias_targets(es, alias)
    if not current and index_exists(es, alias):
        raise IndexingError(f"{alias!r} is a concrete index, not an alias; migrate it with "
                            "`index enrich --from {alias} --replace-legacy`", alias=alias)
    meta = index_meta(es, target)
    check_model(target, meta.get("model_identity"), loaded_identity, force)
    if not force and count(es, target) == 0:
        # A build whose every bulk item was refused (e.g. credentials without the index privilege)
        # still leaves an index: swapping it in would answer every shopper with nothing.
        raise IndexingError("refusing to swap to an empty index: shoppers would get no results "
                            "(pass --force to swap anyway)", target=target)
    if current == [target]:
        return {"alias": alias, "index": target, "previous": target, "changed": False}
    if current:
        # Remember where the alias came from, so rollback returns exactly there.
        meta["swapped_from"] = current[0]
        guarded("record swap origin", lambda: es.indices.put_mapping(index=target, meta=meta), index=target)
    actions = plan_swap(alias, target, current)
    guarded("alias swap", lambda: es.indices.update_aliases(actions=actions), alias=alias, target=target)
    return {"alias": alias, "index": target, "previous": current[0] if current else None, "changed": True}


def rollback(es: Any, alias: str, *, loaded_identity: str | None, to: str | None = None,
             force: bool = False) -> dict[str, Any]:
    current = alias_targets(es, alias)
    if len(current) != 1:
        raise IndexingError("rollback needs the alias to point at exactly one index", alias=alias, current=current)
    if to is None:
        names = list(body_of(guarded("list indices", lambda: es.indices.get(index=f"{alias}-v*",
                                                                            expand_wildcards="open"), alias=alias)))
        to = pick_rollback(alias, current[0], names, index_meta(es, current[0]).get("swapped_from"))
    target_meta = index_meta(es, to)
    check_model(to, target_meta.get("model_identity"), loaded_identity, force)
    actions = plan_swap(alias, to, current)
    guarded("alias rollback", lambda: es.indices.update_aliases(actions=actions), alias=alias, target=to)
    return {"alias": alias, "index": to, "previous": current[0], "changed": True}


def status(es: Any, alias: str) -> dict[str, Any]:
    """Every version of ``alias`` (and whatever it points at): docs, vector coverage, model, size, aliases."""
    pointed = alias_targets(es, alias)
    pattern = ",".join([f"{alias}-v*", *pointed])
    indices = body_of(guarded("list indices", lambda: es.indices.get(index=pattern, expand_wildcards="open"),
                              alias=alias))
    if not indices:
        return {"alias": alias, "points_to": pointed, "indices": []}
    stats = body_of(guarded("index stats", lambda: es.indices.stats(index=",".join(indices), metric="docs,store"),
                            alias=alias))["indices"]
    rows = []
    order = versions_newest_first(alias, indices) + sorted(set(indices) - set(versions_newest_first(alias, indices)))
    for name in order:
        info = indices[name]
        meta = (info.get("mappings") or {}).get("_meta") or {}
        docs = count(es, name)
        size = stats.get(name, {}).get("primaries", {}).get("store", {}).get("size_in_bytes")
        rows.append({
            "index": name, "aliases": sorted(info.get("aliases") or {}), "docs": docs,
            "text_vectors": count(es, name, {"exists": {"field": "text_vector"}}),
            "image_vectors": count(es, name, {"exists": {"field": "image_vector"}}),
            "size_bytes": size, "model_name": meta.get("model_name"),
            "model_identity": meta.get("model_identity"), "schema_version": meta.get("schema_version"),
            "created_at": meta.get("created_at"), "source": meta.get("source"),
            "build": meta.get("build"),
        })
    return {"alias": alias, "points_to": pointed, "indices": rows}


def prune(es: Any, alias: str, keep: int, dry_run: bool = False) -> dict[str, Any]:
    indices = body_of(guarded("list indices", lambda: es.indices.get_alias(index=f"{alias}-v*",
                                                                           expand_wildcards="open"), alias=alias))
    aliased = {name: list((info.get("aliases") or {})) for name, info in indices.items()}
    doomed = plan_prune(alias, list(indices), aliased, keep)
    if doomed and not dry_run:
        guarded("delete old versions", lambda: es.indices.delete(index=",".join(doomed)), indices=doomed)
    return {"alias": alias, "deleted" if not dry_run else "would_delete": doomed,
            "kept": [n for n in versions_newest_first(alias, indices) if n not in doomed]}

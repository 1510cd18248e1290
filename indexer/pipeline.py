"""The indexing pipeline: read -> decode images (thread pool) -> encode (batches) -> bulk (own thread).

Three stages overlap so the encoder, the expensive one, never waits:

* image loading + ``safe_decode`` run ``prefetch_batches`` batches ahead in a
  thread pool (PIL releases the GIL while decoding);
* the calling thread normalises records and runs the encoder;
* ``bulk_threads`` sender threads drain a bounded queue with
  ``elasticsearch.helpers.streaming_bulk`` (retrying 429/5xx per
  ``mmsearch.retries.BULK_BACKOFF``). The queue is deep enough to absorb ES
  hiccups; the time the encoder spent blocked on it is reported as
  ``encoder_wait_seconds`` so "never waits" is measured, not assumed.

Every record ends up either indexed, skipped (resume: same content hash) or in
the dead-letter file with a reason; a bad image dead-letters a line *and* the
product is indexed without ``image_vector``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.catalog import CatalogConfig, CatalogItem
from indexer.documents import BuildSummary, build_source, content_hash, index_action, normalise_record, \
    parse_bulk_item
from indexer.images import ImageSource, LoadedImage, load_and_decode
from mmsearch import retries
from mmsearch.exceptions import BadRecordError, ClusterError, ImageDecodeError, IndexingError, MMSearchError
from mmsearch.gateway import guarded, is_outage

log = logging.getLogger(__name__)

#: Per-item statuses worth retrying: queue full (429) and transient node trouble (5xx).
BULK_RETRY_STATUSES = (429, 500, 502, 503, 504)
_STOP = object()
SourceBuilder = Callable[[Mapping[str, Any], Any, Any, str], dict[str, Any]]


@dataclass(frozen=True)
class PipelineConfig:
    batch_size: int = 64
    decode_workers: int = 2
    prefetch_batches: int = 3
    queue_batches: int = 64
    bulk_chunk_docs: int = 256
    bulk_max_bytes: int = 20 * 1024 * 1024
    bulk_threads: int = 1
    progress: bool = True
    #: Re-sending of the items ES pushes back (429/5xx); see ``mmsearch.retries.BULK_BACKOFF``.
    bulk_backoff: retries.BackoffPolicy = field(default=retries.BULK_BACKOFF)
    #: How long a build rides out an unreachable cluster; see ``mmsearch.retries.BUILD_OUTAGE``.
    outage: retries.OutagePolicy = field(default=retries.BUILD_OUTAGE)

    def __post_init__(self) -> None:
        from mmsearch.exceptions import ConfigError

        checks = {"batch_size": (1, 4096), "decode_workers": (1, 64), "prefetch_batches": (1, 64),
                  "queue_batches": (1, 10_000), "bulk_chunk_docs": (1, 10_000), "bulk_threads": (1, 16),
                  "bulk_max_bytes": (64 * 1024, 100 * 1024 * 1024)}
        for name, (low, high) in checks.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}]", setting=name, value=value)
        if not isinstance(self.bulk_backoff, retries.BackoffPolicy):
            raise ConfigError("bulk_backoff must be a mmsearch.retries.BackoffPolicy", setting="bulk_backoff")
        if not isinstance(self.outage, retries.OutagePolicy):
            raise ConfigError("outage must be a mmsearch.retries.OutagePolicy", setting="outage")


class DeadLetterWriter:
    """Append-only JSONL of records that were not (fully) indexed, one reason each. Thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.count = 0
        self._lock = threading.Lock()
        self._handle: Any = None

    def write(self, *, position: str, stage: str, reason: str, doc_id: str | None = None,
              raw: str | None = None) -> None:
        entry = {"position": position, "id": doc_id, "stage": stage, "reason": reason}
        if raw is not None:
            entry["raw"] = raw
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self.count += 1
            if self.path is None:
                return
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8")
            self._handle.write(line)
            self._handle.flush()  # a crash must not lose the record of what failed

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


@dataclass
class Prepared:
    """One document ready for image loading and encoding."""

    position: str
    doc_id: str
    doc: dict[str, Any]
    image_ref: str | None = None
    image_bytes: bytes | None = None


def prepare_catalog(items: Iterable[CatalogItem], catalog: CatalogConfig, summary: BuildSummary,
                    dead: DeadLetterWriter) -> Iterator[Prepared]:
    """Parse/normalise; bad records and later duplicates go to the dead-letter file."""
    seen: set[str] = set()
    for item in items:
        summary.read += 1
        if not item.ok:
            summary.note_failure(item.error or "unreadable record")
            dead.write(position=item.position, stage="read", reason=item.error or "unreadable record", raw=item.raw)
            continue
        assert item.record is not None
        try:
            doc = normalise_record(item.record, catalog)
        except BadRecordError as exc:
            summary.note_failure(exc.message)
            dead.write(position=item.position, stage="validate", reason=str(exc),
                       raw=json.dumps(item.record, default=str)[:2000])
            continue
        if doc["id"] in seen:
            summary.duplicates += 1
            dead.write(position=item.position, stage="validate", doc_id=doc["id"],
                       reason="duplicate id; the first occurrence was kept")
            continue
        seen.add(doc["id"])
        inline = doc.pop("_image_bytes", None)
        yield Prepared(item.position, doc["id"], doc, image_ref=None if inline else doc.get("image"),
                       image_bytes=inline)


def _batched(iterable: Iterable[Prepared], size: int) -> Iterator[list[Prepared]]:
    batch: list[Prepared] = []
    for element in iterable:
        batch.append(element)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_isolating(encode: Callable[[list[Any]], Any], inputs: list[Any],
                     isolate_on: tuple[type[BaseException], ...]) -> tuple[list[Any], list[str | None]]:
    """Encode a batch; if it fails with ``isolate_on``, encode one by one so one bad input costs one record."""
    if not inputs:
        return [], []
    try:
        vectors = encode(inputs)
        return [vectors[i] for i in range(len(inputs))], [None] * len(inputs)
    except isolate_on:
        pass
    out: list[Any] = []
    errors: list[str | None] = []
    for value in inputs:
        try:
            out.append(encode([value])[0])
            errors.append(None)
        except isolate_on as exc:
            out.append(None)
            errors.append(str(exc))
    if all(e is not None for e in errors) and len(inputs) > 1:
        raise IndexingError("the encoder fails on every input of a batch; stopping", example=errors[0])
    return out, errors


class _Sender(threading.Thread):
    """Drains the action queue in chunks through streaming_bulk; records outcomes.

    Two retry layers, both from ``mmsearch.retries``: ``streaming_bulk`` re-sends the
    items ES pushed back (429/5xx, ``PipelineConfig.bulk_backoff``), and a chunk whose
    request could not reach ES at all is re-sent, minus the items already acknowledged,
    until ``PipelineConfig.outage`` runs out. Re-sending is safe: every action is an
    ``index`` with the product's own ``_id``, so a chunk ES applied but could not answer
    is overwritten, never duplicated.
    """

    def __init__(self, es: Any, work: queue.Queue, config: PipelineConfig, summary: BuildSummary,
                 dead: DeadLetterWriter, lock: threading.Lock, progress: Any, index: str) -> None:
        super().__init__(name="bulk-sender", daemon=True)
        self.es, self.work, self.config, self.summary = es, work, config, summary
        self.dead, self.lock, self.progress, self.index = dead, lock, progress, index
        self.error: BaseException | None = None
        self.stopped = False  # this sender's stop marker was taken from the queue

    def _next_chunk(self) -> list[tuple[str, dict[str, Any]]]:
        """Queued batches merged up to ``bulk_chunk_docs`` actions ([] once the stop marker is taken)."""
        chunk: list[tuple[str, dict[str, Any]]] = []
        batch = self.work.get()
        while True:
            if batch is _STOP:
                self.stopped = True
                return chunk
            chunk.extend(batch)
            if len(chunk) >= self.config.bulk_chunk_docs:
                return chunk
            try:
                batch = self.work.get_nowait()
            except queue.Empty:
                return chunk  # send what there is: waiting for a full chunk would idle ES

    def _record(self, ok: bool, info: Any, pending: dict[str, tuple[str, dict[str, Any]]]) -> None:
        outcome = parse_bulk_item(ok, info)
        position, action = pending.pop(outcome.doc_id or "", ("?", {"_source": {}}))
        with self.lock:
            if outcome.ok:
                self.summary.indexed += 1
                self.summary.with_image_vector += int("image_vector" in action["_source"])
            else:
                self.summary.note_failure(outcome.reason or "bulk")
                self.dead.write(position=position, stage="bulk", doc_id=outcome.doc_id,
                                reason=f"status {outcome.status}: {outcome.reason}")
        if self.progress is not None:
            self.progress.update(1)

    def _note_outage(self, error: BaseException, delay: float) -> None:
        with self.lock:
            self.summary.outage_retries += 1
        log.warning("Elasticsearch is unreachable during the build of %s; retrying the chunk in %.1f s "
                    "(window %.0f s): %s", self.index, delay, self.config.outage.window_s, error)

    def _send(self, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        from elasticsearch.helpers import streaming_bulk

        policy = self.config.bulk_backoff
        pending = {action["_id"]: (position, action) for position, action in chunk}

        def attempt() -> None:
            for ok, info in streaming_bulk(
                self.es, [action for _, action in pending.values()], chunk_size=self.config.bulk_chunk_docs,
                max_chunk_bytes=self.config.bulk_max_bytes, raise_on_error=False, raise_on_exception=False,
                max_retries=policy.max_attempts - 1, initial_backoff=policy.initial_delay_s,
                max_backoff=policy.max_delay_s, retry_on_status=BULK_RETRY_STATUSES, yield_ok=True,
            ):
                self._record(ok, info, pending)

        # Per-item and per-request ES answers are outcomes (recorded above); what escapes
        # is the transport, which the gateway's rule turns into ClusterUnavailableError.
        retries.ride_out(lambda: guarded("bulk indexing", attempt, index=self.index), self.config.outage,
                         is_outage, on_retry=self._note_outage)

    def run(self) -> None:
        try:
            while not self.stopped:
                chunk = self._next_chunk()
                if chunk:
                    self._send(chunk)
        except BaseException as exc:  # surfaced by the main thread; the run must not hang
            self.error = exc
            # Unblock the producer: drain until the stop marker, unless it was already taken
            # (waiting for another would hang the run, or take another sender's marker).
            while not self.stopped:
                if self.work.get() is _STOP:
                    break


def _bulk_failure(error: BaseException, message: str, index: str) -> MMSearchError:
    """A sender's failure as the run's. ES trouble keeps the gateway's class (an unreachable node is
    ``ClusterUnavailableError``, 503, as everywhere else); anything else is an indexing failure."""
    if isinstance(error, ClusterError):
        error.context.setdefault("index", index)
        return error
    failure = IndexingError(message, index=index, detail=str(error))
    failure.__cause__ = error
    return failure


def run_pipeline(es: Any, encoder: Any, docs: Iterable[Prepared], index: str, images: ImageSource,
                 dead: DeadLetterWriter, config: PipelineConfig = PipelineConfig(), *,
                 summary: BuildSummary | None = None, existing_hashes: Mapping[str, str] | None = None,
                 total: int | None = None, decode: Callable[[bytes], Any] | None = None,
                 text_of: Callable[[Mapping[str, Any]], str] | None = None,
                 source_of: SourceBuilder = build_source) -> BuildSummary:
    """Index ``docs`` into ``index`` (which must exist). The one function of the pipeline doing I/O.

    ``text_of`` builds the text to embed (default ``encoder.product_text``) and
    ``source_of`` the stored ``_source``: the catalog build and the enrichment
    of a legacy index differ only there.
    """
    summary = summary or BuildSummary()
    summary.index = index
    summary.dead_letter_path = str(dead.path) if dead.path else None
    identity = str(encoder.identity)
    existing = existing_hashes or {}
    text_of = text_of or encoder.product_text
    lock = threading.Lock()
    progress = _progress_bar(total, config.progress)
    work: queue.Queue = queue.Queue(maxsize=config.queue_batches)
    senders = [_Sender(es, work, config, summary, dead, lock, progress, index) for _ in range(config.bulk_threads)]
    started = time.perf_counter()
    for sender in senders:
        sender.start()

    def put(batch: list[tuple[str, dict[str, Any]]]) -> None:
        waited = time.perf_counter()
        while True:
            failed = next((s.error for s in senders if s.error is not None), None)
            if failed is not None:
                raise _bulk_failure(failed, "bulk sender failed", index)
            try:
                work.put(batch, timeout=0.5)
                break
            except queue.Full:
                continue
        summary.encoder_wait_seconds += time.perf_counter() - waited

    def process(batch: list[Prepared], futures: list[Future[LoadedImage]]) -> None:
        loaded = [f.result() for f in futures]
        keep: list[int] = []
        hashes: list[str] = []
        for i, (item, image) in enumerate(zip(batch, loaded)):
            digest = content_hash(item.doc, image.digest, identity)
            hashes.append(digest)
            if existing.get(item.doc_id) == digest:
                summary.skipped += 1
                if progress is not None:
                    progress.update(1)
            else:
                keep.append(i)
        if not keep:
            return
        tick = time.perf_counter()
        texts = [text_of(batch[i].doc) for i in keep]
        text_vectors, text_errors = encode_isolating(encoder.encode_texts, texts, (Exception,))
        with_image = [i for i in keep if loaded[i].image is not None]
        image_vectors, image_errors = encode_isolating(encoder.encode_images, [loaded[i].image for i in with_image],
                                                       (ImageDecodeError,))
        summary.encode_seconds += time.perf_counter() - tick
        image_by_index = dict(zip(with_image, zip(image_vectors, image_errors)))
        actions: list[tuple[str, dict[str, Any]]] = []
        for j, i in enumerate(keep):
            item = batch[i]
            if text_errors[j] is not None:
                summary.note_failure("text encoding failed")
                dead.write(position=item.position, stage="encode", doc_id=item.doc_id,
                           reason=f"text encoding failed: {text_errors[j]}")
                continue
            vector, image_error = image_by_index.get(i, (None, loaded[i].error))
            if image_error is not None:
                summary.image_failed += 1
                dead.write(position=item.position, stage="image", doc_id=item.doc_id,
                           reason=f"indexed without image_vector: {image_error}")
            source_doc = source_of(item.doc, text_vectors[j], vector, hashes[i])
            actions.append((item.position, index_action(index, item.doc_id, source_doc)))
        if actions:
            put(actions)

    try:
        with ThreadPoolExecutor(max_workers=config.decode_workers, thread_name_prefix="image-decode") as pool:
            pending: deque[tuple[list[Prepared], list[Future[LoadedImage]]]] = deque()
            for batch in _batched(docs, config.batch_size):
                futures = [pool.submit(load_and_decode, item.image_ref, item.image_bytes, images, decode,
                                       _skipper(item, existing, identity)) for item in batch]
                pending.append((batch, futures))
                if len(pending) > config.prefetch_batches:
                    process(*pending.popleft())
            while pending:
                process(*pending.popleft())
    finally:
        for _ in senders:
            work.put(_STOP)
        for sender in senders:
            sender.join()
        if progress is not None:
            progress.close()
    errors = [s.error for s in senders if s.error is not None]
    if errors:
        raise _bulk_failure(errors[0], "bulk indexing failed", index)
    summary.seconds = time.perf_counter() - started
    summary.dead_letters = dead.count
    return summary


def _skipper(item: Prepared, existing: Mapping[str, str], identity: str) -> Callable[[str], bool] | None:
    if item.doc_id not in existing:
        return None
    expected = existing[item.doc_id]
    return lambda digest: content_hash(item.doc, digest, identity) == expected


def _progress_bar(total: int | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="doc", desc="indexing", smoothing=0.05, mininterval=1.0)

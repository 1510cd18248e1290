"""Exposure and click events, buffered in memory and bulk-written to an ES index.

The buffer is bounded: when it is full (ES down for a long time) ``log_*``
raises ``ClusterUnavailableError`` and the client gets a 503 it can retry,
instead of events silently disappearing. A failed flush puts the batch back.
``close()`` (also run at interpreter exit, and so when gunicorn stops a worker
with SIGTERM) flushes what is left. Delivery is at-least-once in the sense that
an accepted event is kept until ES took it, and the ids make the writes
idempotent, so none is doubled either (``flush``).
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from mmsearch import retries
from mmsearch.exceptions import ClusterError, ClusterUnavailableError
from mmsearch.gateway import guarded

log = logging.getLogger("mmsearch.events")

EVENTS_MAPPING = {
    "dynamic": True,
    "properties": {
        "type": {"type": "keyword"}, "ts": {"type": "date"}, "query_id": {"type": "keyword"},
        "unit_id": {"type": "keyword"}, "experiment_id": {"type": "keyword"}, "variant": {"type": "keyword"},
        "doc_id": {"type": "keyword"}, "position": {"type": "integer"}, "query": {"type": "keyword"},
        "ids": {"type": "keyword"}, "teams": {"type": "keyword"}, "total": {"type": "integer"},
        "took_ms": {"type": "float"}, "has_image": {"type": "boolean"},
    },
}


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class EventLogger:
    def __init__(self, es: Any, index: str, max_buffer: int = 10_000, flush_every: int = 500,
                 flush_interval_s: float = 1.0, background: bool = True) -> None:
        if not 1 <= flush_every <= max_buffer:
            raise ValueError("need 1 <= flush_every <= max_buffer")
        self.es, self.index = es, index
        self.max_buffer, self.flush_every = max_buffer, flush_every
        self._buffer: deque[dict[str, Any]] = deque()
        self._in_flight = 0  # events taken out by the running flush
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self.written = 0
        self.failed_flushes = 0
        self.rejected = 0  # events ES refused for good (mapping conflicts): logged, not retried
        self._ensure_index()
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._loop, args=(flush_interval_s,), daemon=True,
                                            name="event-flusher")
            self._thread.start()
        atexit.register(self.close)

    def _ensure_index(self) -> None:
        try:
            if not guarded("check events index", lambda: self.es.indices.exists(index=self.index), index=self.index):
                guarded("create events index",
                        lambda: self.es.indices.create(index=self.index, mappings=EVENTS_MAPPING), index=self.index)
        except ClusterError as exc:
            if "resource_already_exists" not in str(exc):  # another worker created it between the two calls
                raise

    def _add(self, doc: dict[str, Any]) -> None:
        doc["_id"] = uuid.uuid4().hex  # fixed at acceptance: a re-sent event is recognised, not doubled
        with self._lock:
            # The batch being flushed still counts: it comes back if the flush fails.
            if len(self._buffer) + self._in_flight >= self.max_buffer:
                raise ClusterUnavailableError("event buffer is full; retry later", buffered=len(self._buffer))
            self._buffer.append(doc)
            due = len(self._buffer) >= self.flush_every
        if due and self._thread is None:
            self.flush()

    def log_exposure(self, exposure: Mapping[str, Any]) -> None:
        self._add({"type": "exposure", "ts": now_iso(), **dict(exposure)})

    def log_event(self, event: Mapping[str, Any]) -> None:
        self._add({"ts": now_iso(), **dict(event)})

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered; what ES did not take goes back to the front. Returns docs written.

        Each event carries the ``_id`` it was given when accepted and is written with ``create``:
        re-sending a batch whose answer was lost (or that half succeeded) cannot double an
        event, since ES answers 409 for one it already holds, which counts as written. That is
        also why the service's credentials need only ``create_doc`` on the events index.
        """
        with self._flush_lock:
            with self._lock:
                batch = list(self._buffer)
                self._buffer.clear()
                self._in_flight = len(batch)
            if not batch:
                return 0
            try:
                return self._write(batch)
            finally:
                with self._lock:
                    self._in_flight = 0

    def _write(self, batch: list[dict[str, Any]]) -> int:
        from elasticsearch import helpers

        by_id = {doc["_id"]: doc for doc in batch}
        actions = [{"_op_type": "create", "_index": self.index, "_id": event_id,
                    "_source": {k: v for k, v in doc.items() if k != "_id"}} for event_id, doc in by_id.items()]

        def write() -> list[dict[str, Any]]:
            _, errors = guarded("write events", lambda: helpers.bulk(
                self.es, actions, refresh=False, raise_on_error=False, raise_on_exception=True), index=self.index)
            return list(errors)  # type: ignore[arg-type]

        try:
            # Retried: the whole request failing (the gateway's ClusterError family).
            errors = retries.retry_call(write, retries.EVENTS_FLUSH_BACKOFF, (ClusterError,))
        except ClusterError:
            self.failed_flushes += 1
            self._put_back(batch)
            return 0
        retry, rejected = self._sort_item_errors(errors, by_id)
        self._put_back(retry)
        self.rejected += rejected
        written = len(batch) - len(retry) - rejected
        self.written += written
        return written

    @staticmethod
    def _sort_item_errors(errors: list[dict[str, Any]],
                          by_id: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """Events to try again (ES busy: 429/5xx). A 409 is an event already written; anything else
        ES refuses would be refused again, so it is counted in ``rejected`` and logged, not retried."""
        retry: list[dict[str, Any]] = []
        rejected = 0
        for error in errors:
            item = next(iter(error.values()))
            status = int(item.get("status", 0))
            if status == 409:
                continue
            if status == 429 or status >= 500:
                retry.append(by_id[item["_id"]])
            else:
                rejected += 1
                log.warning("Elasticsearch refused an event; it is dropped",
                            extra={"fields": {"status": status, "error": str(item.get("error"))[:300]}})
        return retry, rejected

    def _put_back(self, events: list[dict[str, Any]]) -> None:
        if events:
            with self._lock:
                self._buffer.extendleft(reversed(events))

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()
        try:
            self.es.indices.refresh(index=self.index)
        except Exception:  # closing during interpreter exit: the data is flushed, refresh is optional
            pass

"""Exposure and click events, buffered in memory and bulk-written to an ES index.

The buffer is bounded: when it is full (ES down for a long time) ``log_*``
raises ``ClusterUnavailableError`` and the client gets a 503 it can retry,
instead of events silently disappearing. A failed flush puts the batch back.
``close()`` (also run at interpreter exit) flushes what is left.
"""

from __future__ import annotations

import atexit
import datetime as dt
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from mmsearch import retries
from mmsearch.exceptions import ClusterError, ClusterUnavailableError
from mmsearch.gateway import guarded, is_bulk_rejection

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
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self.written = 0
        self.failed_flushes = 0
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
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
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
        """Write everything buffered; on failure the batch goes back to the front. Returns docs written."""
        from elasticsearch import helpers

        with self._flush_lock:
            with self._lock:
                batch = list(self._buffer)
                self._buffer.clear()
            if not batch:
                return 0
            actions = [{"_index": self.index, "_source": doc} for doc in batch]

            def write() -> Any:
                return guarded("write events", lambda: helpers.bulk(self.es, actions, refresh=False),
                               index=self.index)

            try:
                # Retried: any ES error (the gateway's ClusterError family). Not retried: documents
                # ES refused (BulkIndexError), which would be refused again; the batch waits in memory.
                retries.retry_call(write, retries.EVENTS_FLUSH_BACKOFF, (ClusterError,))
            except Exception as exc:
                if not (isinstance(exc, ClusterError) or is_bulk_rejection(exc)):
                    raise
                self.failed_flushes += 1
                with self._lock:
                    self._buffer.extendleft(reversed(batch))
                return 0
            self.written += len(batch)
            return len(batch)

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

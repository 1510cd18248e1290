"""Prometheus metrics, one registry per app so tests can build many apps in one process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: The variant label of a ranking the client defined itself (``ranking`` overrides in the body,
#: or an ``X-Hybrid-Options`` header on the proxy). Its name is the client's to choose, and a
#: label value per name would let any client grow the registry without bound.
CLIENT_DEFINED_VARIANT = "custom"


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mmsearch_requests_total", "HTTP requests", ["endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("mmsearch_request_seconds", "request latency", ["endpoint", "variant"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.leg_latency = Histogram("mmsearch_leg_seconds", "Elasticsearch time per leg", ["leg"],
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.stage_latency = Histogram("mmsearch_stage_seconds", "time per stage (encode, es, fuse)", ["stage"],
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter("mmsearch_errors_total", "errors by type", ["endpoint", "error"],
                              registry=self.registry)
        self.degraded = Counter("mmsearch_degraded_total", "responses served degraded", ["component"],
                                registry=self.registry)
        self.variants = Counter("mmsearch_variant_requests_total", "searches per variant", ["variant"],
                                registry=self.registry)
        # labels() takes a lock and builds a key on every call (eight calls per search); every
        # label value here comes from a bounded set, so the children are kept.
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def observe_search(self, response: dict, variant: str | None = None) -> None:
        """One search's stage and leg times, degradations and variant (``variant``: its label,
        ``CLIENT_DEFINED_VARIANT`` for a ranking the client named itself)."""
        took = response.get("took_ms", {})
        for stage in ("encode", "es", "fuse"):
            if stage in took:
                self.child(self.stage_latency, stage).observe(took[stage] / 1000.0)
        for leg, info in response.get("legs", {}).items():
            if info.get("took_ms") is not None:
                self.child(self.leg_latency, leg).observe(info["took_ms"] / 1000.0)
        for reason in response.get("degraded", []):
            self.child(self.degraded, reason.split(":", 1)[0]).inc()
        self.child(self.variants, variant or response.get("variant", "unknown")).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

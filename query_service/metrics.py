"""Prometheus metrics, one registry per app so tests can build many apps in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


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

    def observe_search(self, response: dict) -> None:
        for stage in ("encode", "es", "fuse"):
            if stage in response.get("took_ms", {}):
                self.stage_latency.labels(stage).observe(response["took_ms"][stage] / 1000.0)
        for leg, info in response.get("legs", {}).items():
            if info.get("took_ms") is not None:
                self.leg_latency.labels(leg).observe(info["took_ms"] / 1000.0)
        for reason in response.get("degraded", []):
            self.degraded.labels(reason.split(":", 1)[0]).inc()
        self.variants.labels(response.get("variant", "unknown")).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

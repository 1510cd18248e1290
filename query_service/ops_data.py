"""What the /ops page shows, read-only: index versions, readiness, running experiments' reports.

Every figure comes from the code that already owns it: ``indexer.lifecycle.status``
(the data of ``mmsearch index status``), ``SearchService.readiness`` (``/readyz``), and
the experiment report of ``mmsearch eval ab-report`` (``relevance.store`` +
``relevance.report``). A part that cannot be read (Elasticsearch down, no events yet)
becomes an ``error`` string in its own section, so the rest of the page still shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from mmsearch.exceptions import MMSearchError


def _attempt(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return read()
    except MMSearchError as exc:
        return {"error": f"{type(exc).__name__}: {exc.message[:300]}"}


def annotate_indices(status: Mapping[str, Any], loaded_identity: str | None) -> dict[str, Any]:
    """``lifecycle.status`` plus, per index, whether it was built with the loaded model and its vector coverage."""
    rows = []
    for row in status.get("indices") or []:
        docs = row.get("docs") or 0
        rows.append({**row, "model_matches": bool(loaded_identity) and row.get("model_identity") == loaded_identity,
                     "text_vector_coverage": (row.get("text_vectors") or 0) / docs if docs else None,
                     "image_vector_coverage": (row.get("image_vectors") or 0) / docs if docs else None})
    return {**status, "indices": rows}


def index_status(client: Any, alias: str, loaded_identity: str | None) -> dict[str, Any]:
    from indexer.lifecycle import status

    if client is None:
        return {"alias": alias, "error": "no Elasticsearch client behind this service's gateway"}
    return _attempt(lambda: annotate_indices(status(client, alias), loaded_identity))


def experiment_section(experiments: Any, client: Any, events_index: str,
                       now: dt.datetime | None = None) -> dict[str, Any]:
    """The configured experiment, whether it is running, and its report (SRM first) from the events index."""
    config = getattr(experiments, "config", None)
    if config is None:
        return {"configured": False}
    running = config.active(now or dt.datetime.now(dt.timezone.utc))
    section: dict[str, Any] = {"configured": True, "id": config.id, "mode": config.mode, "running": running,
                               "shares": config.shares, "last_error": getattr(experiments, "last_error", None)}
    if client is None:
        section["error"] = "no Elasticsearch client behind this service's gateway"
        return section

    def read() -> dict[str, Any]:
        from query_service.relevance.report import ab_report, interleaving_report
        from query_service.relevance.store import fetch_experiment_events

        exposures, events = fetch_experiment_events(client, events_index, config.id)
        report = interleaving_report(exposures, events) if config.mode == "interleave" else \
            ab_report(exposures, events, config.shares)
        return {"report": report}

    return {**section, **_attempt(read)}


def snapshot(ctx: Any) -> dict[str, Any]:
    """Everything the /ops page shows, for the service in ``ctx`` (a ``ServiceContext``)."""
    client = getattr(ctx.gateway, "client", None)
    identity = getattr(ctx.encoder, "identity", None)
    ready, checks = ctx.service.readiness()
    return {
        "alias": ctx.settings.products_alias,
        "model": {"loaded": ctx.encoder is not None, "identity": identity,
                  "name": getattr(ctx.encoder, "name", None)},
        "readiness": {"ready": ready, "checks": checks},
        "index_status": index_status(client, ctx.settings.products_alias, identity),
        "experiment": experiment_section(ctx.service.experiments, client, ctx.settings.events_index),
        "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
    }

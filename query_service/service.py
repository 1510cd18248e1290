"""The query service's domain layer, between the HTTP blueprints and the engine.

``ServiceContext`` holds what every blueprint needs (built once by ``create_app``);
``SearchService`` is what the blueprints call: a shopper search with experiment
assignment and exposure logging, the proxy's hybrid searches, and readiness.
None of it knows about HTTP; the blueprints only parse requests and shape answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app

from mmsearch.exceptions import MMSearchError
from mmsearch.gateway import SearchGateway
from query_service.dsl import AppQuery, AppResult
from query_service.engine import SearchEngine
from query_service.metrics import ServiceMetrics
from query_service.proxy_access import ProxyAccess
from query_service.ranking import RankingConfig, SearchRequest
from query_service.relevance.interleaving import interleave_search
from query_service.validation import ServiceLimits


@dataclass
class ServiceContext:
    settings: Any
    gateway: SearchGateway
    engine: SearchEngine
    metrics: ServiceMetrics
    limits: ServiceLimits
    service: SearchService
    access: ProxyAccess
    encoder: Any = None
    proxy_options: dict[str, Any] | None = None


def context() -> ServiceContext:
    """The running app's context (``create_app`` registers it as ``app.extensions["mmsearch"]``)."""
    return current_app.extensions["mmsearch"]


class SearchService:
    """Searches with experiments and exposure logging on top of the engine; the blueprints' one entry."""

    def __init__(self, engine: SearchEngine, default_ranking: RankingConfig, experiments: Any = None,
                 event_logger: Any = None) -> None:
        self.engine = engine
        self.default_ranking = default_ranking
        self.experiments = experiments
        self.event_logger = event_logger

    def ranking_for(self, overrides: dict[str, Any]) -> RankingConfig:
        return self.default_ranking.with_overrides(overrides) if overrides else self.default_ranking

    def search(self, search_request: SearchRequest, overrides: dict[str, Any], unit_id: str | None) -> dict[str, Any]:
        """A shopper's ``/search``: the unit's experiment variant (or the default), logged as an exposure."""
        assignment = self.experiments.assign(unit_id) if self.experiments is not None and unit_id and not overrides \
            else None
        if assignment is not None and assignment.mode == "interleave":
            result = interleave_search(self.engine, search_request, assignment, unit_id or "")
        else:
            if assignment is not None:
                ranking = RankingConfig.from_dict({"name": assignment.variant,
                                                   **assignment.rankings[assignment.variant]})
            else:
                ranking = self.ranking_for(overrides)
            result = self.engine.search(search_request, ranking)
        result["query_id"] = uuid.uuid4().hex
        if assignment is not None:
            result["experiment"] = {"id": assignment.experiment_id, "variant": assignment.variant,
                                    "mode": assignment.mode}
        if self.event_logger is not None:
            self.event_logger.log_exposure(exposure_event(result, search_request, unit_id, assignment))
        return result

    def search_app(self, app_queries: Sequence[AppQuery], ranking: RankingConfig) -> list[AppResult]:
        """The proxy's hybrid searches (``_search``, and each hybrid item of an ``_msearch``)."""
        return self.engine.search_app(app_queries, ranking)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready = a model is loaded, the alias exists, and its index was built with that model."""
        encoder, gateway, alias = self.engine.encoder, self.engine.gateway, self.engine.index
        checks: dict[str, Any] = {"model_loaded": encoder is not None}
        try:
            gateway.cluster_health("2s")
            checks["es_reachable"] = True
            index, meta = served_index_meta(gateway, alias)
            checks["alias"] = index
            checks["index_model_identity"] = meta.get("model_identity")
        except MMSearchError as exc:  # every failure mode here just means "not ready"
            checks.setdefault("es_reachable", False)
            checks["error"] = f"{type(exc).__name__}: {exc.message[:200]}"
        checks["model_identity"] = getattr(encoder, "identity", None)
        ready = bool(checks["model_loaded"] and checks.get("alias")
                     and checks.get("index_model_identity") == checks["model_identity"])
        if checks.get("alias") and not ready and checks["model_loaded"]:
            checks["error"] = "the index was built with a different model than the one loaded"
        return ready, checks


def served_index_meta(gateway: SearchGateway, alias: str) -> tuple[str | None, dict[str, Any]]:
    """(the newest concrete index behind ``alias``, its ``_meta``): the index contract's one lookup."""
    from mmsearch.exceptions import IndexNotFoundError

    targets = gateway.alias_targets(alias)
    if not targets:
        raise IndexNotFoundError("the alias does not exist (yet): build an index and swap it in", alias=alias)
    index = targets[-1]
    return index, dict((gateway.mappings(index).get(index) or {}).get("_meta") or {})


def exposure_event(result: dict[str, Any], search_request: SearchRequest, unit_id: str | None,
                   assignment: Any) -> dict[str, Any]:
    return {
        "query_id": result["query_id"], "unit_id": unit_id, "query": search_request.text,
        "has_image": search_request.image is not None, "variant": result["variant"],
        "experiment_id": assignment.experiment_id if assignment else None,
        "ids": [h["_id"] for h in result["hits"]],
        "positions": list(range(1, len(result["hits"]) + 1)),
        "teams": result.get("teams"), "total": result["total"], "took_ms": result["took_ms"].get("total"),
    }

from __future__ import annotations

from typing import Any

import elasticsearch
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

from mmsearch.capabilities import capabilities_from_responses, detect_capabilities
from mmsearch.exceptions import ClusterAuthError, ClusterError


def _node(version: str, modules: list[str], plugins: list[str] = ()) -> dict:
    return {"version": version, "modules": [{"name": m} for m in modules], "plugins": [{"name": p} for p in plugins]}


INTEG_TEST = {"nodes": {"a": _node("9.2.0", ["apm", "transport-netty4", "x-pack-core", "x-pack-security"])}}
FULL_IMAGE_MODULES = ["analysis-common", "lang-painless", "rank-rrf", "reindex", "x-pack-core", "transport-netty4"]


def test_integ_test_distribution_has_none_of_the_optional_features() -> None:
    caps = capabilities_from_responses(INTEG_TEST, {"license": {"type": "basic"}}, security_enabled=False)
    assert (caps.analysis_common, caps.painless, caps.rank_rrf, caps.reindex) == (False, False, False, False)
    assert caps.version_tuple == (9, 2, 0)
    assert caps.native_rrf_usable is False


def test_full_image_on_basic_license_has_modules_but_no_native_rrf() -> None:
    caps = capabilities_from_responses({"nodes": {"a": _node("9.1.3", FULL_IMAGE_MODULES)}},
                                       {"license": {"type": "basic"}})
    assert caps.analysis_common and caps.painless and caps.rank_rrf and caps.reindex
    assert caps.native_rrf_usable is False  # rrf retriever needs enterprise/trial
    trial = capabilities_from_responses({"nodes": {"a": _node("9.1.3", FULL_IMAGE_MODULES)}},
                                        {"license": {"type": "trial"}})
    assert trial.native_rrf_usable is True


def test_a_feature_counts_only_when_every_node_has_it_and_oldest_version_wins() -> None:
    mixed = {"nodes": {"a": _node("9.2.0", FULL_IMAGE_MODULES), "b": _node("9.1.0", ["x-pack-core"], ["analysis-common"])}}
    caps = capabilities_from_responses(mixed, None)
    assert caps.analysis_common is True  # module on a, plugin on b
    assert caps.painless is False
    assert caps.version == "9.1.0"
    assert caps.license_type == "unknown"


def test_empty_nodes_response_is_an_error() -> None:
    with pytest.raises(ClusterError):
        capabilities_from_responses({"nodes": {}}, None)


# --- detect_capabilities: which refusals degrade detection and which fail it ---------------------------


def _refusal(status: int, reason: str = "no") -> elasticsearch.ApiError:
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "127.0.0.1", 9200))
    return elasticsearch.ApiError(message=reason, meta=meta, body={"error": {"type": "x", "reason": reason}})


class _Cluster:
    """A client whose calls answer from ``answers`` (a body, or an exception to raise)."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.license = self._ns("license_get")
        self.security = self._ns("authenticate")
        self.nodes = self._ns("nodes_info")
        self.indices = self._ns("analyze")

    def _ns(self, key: str) -> Any:
        cluster = self

        class _Namespace:
            def __getattr__(self, _name: str) -> Any:
                return lambda **kwargs: cluster.answer(key, kwargs)
        return _Namespace()

    def answer(self, key: str, kwargs: dict[str, Any]) -> Any:
        if key == "nodes_info" and kwargs.get("metric") == "_none":
            key = "node_version"
        value = self.answers.get(key, {})
        if isinstance(value, Exception):
            raise value
        return value

    def scripts_painless_execute(self, **kwargs: Any) -> Any:
        return self.answer("painless", kwargs)


def test_forbidden_nodes_api_falls_back_to_probing() -> None:
    es = _Cluster(license_get=_refusal(403), authenticate={"username": "u"},
                  nodes_info=_refusal(403), node_version={"nodes": {"n": {"version": "9.1.0"}}},
                  analyze={"tokens": []}, painless=_refusal(400))
    caps = detect_capabilities(es)
    assert caps.detected_by == "probe" and caps.version == "9.1.0"
    assert caps.license_type == "unknown" and caps.security_enabled is True  # a refused license is unknown
    assert caps.analysis_common is True and caps.painless is False  # a refused probe means "missing"


def test_security_off_and_wrong_credentials() -> None:
    nodes = {"nodes": {"a": _node("9.2.0", ["x-pack-core"])}}
    off = detect_capabilities(_Cluster(license_get={"license": {"type": "basic"}},
                                       authenticate=_refusal(500, "security is not enabled"), nodes_info=nodes))
    assert off.security_enabled is False and off.detected_by == "nodes_api" and off.license_type == "basic"
    with pytest.raises(ClusterAuthError):  # 401 is not a restricted user: probing would fail the same way
        detect_capabilities(_Cluster(authenticate=_refusal(401), nodes_info=_refusal(401)))

from __future__ import annotations

import pytest

from mmsearch.capabilities import capabilities_from_responses
from mmsearch.exceptions import ClusterError


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

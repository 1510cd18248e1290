"""Shared fixtures.

Live tests talk to a real Elasticsearch node: ``ES_URL`` reuses a running one,
otherwise the session starts the project's local node (``mmsearch node start``
under the hood) on a free port and stops it at the end. Each test gets a client
whose teardown deletes every index the test created, so tests cannot leak
state into each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmsearch.config import PROJECT_ROOT, Settings, default_catalog_dir

CATALOG_DIR = default_catalog_dir()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)


@pytest.fixture(scope="session")
def catalog_dir() -> Path:
    """The shared real catalog. Missing data is an error, not a skip: CI must have it."""
    if CATALOG_DIR is None:
        pytest.fail("shared catalog not found beside the checkout or its origin; set MMSEARCH_CATALOG_DIR")
    return CATALOG_DIR


@pytest.fixture(scope="session")
def es_node() -> Iterator[dict[str, Any]]:
    """URL (and credentials) of a real node: a local cluster of N nodes when MMSEARCH_TEST_CLUSTER_NODES=N > 1
    (ES_URL is then ignored; "urls" lists every node), else ES_URL if set, else our own local node."""
    cluster_nodes = int(os.environ.get("MMSEARCH_TEST_CLUSTER_NODES") or 1)
    if cluster_nodes > 1:
        from mmsearch.escluster import ClusterConfig, LocalCluster

        cluster = LocalCluster(ClusterConfig(name="pytest-suite", nodes=cluster_nodes, heap="512m"))
        cluster_info = cluster.start()
        try:
            yield {"url": cluster_info.urls[0], "urls": cluster_info.urls, "started_here": not cluster_info.reused,
                   "cluster": cluster}
        finally:
            if not cluster_info.reused and not os.environ.get("MMSEARCH_KEEP_NODE"):
                cluster.stop()
        return
    if os.environ.get("ES_URL"):
        yield {"url": os.environ["ES_URL"], "started_here": False}
        return
    from mmsearch.esnode import LocalNode, NodeConfig

    node = LocalNode(NodeConfig(name="pytest", port=0))
    info = node.start()
    try:
        yield {"url": info.url, "started_here": not info.reused, "node": node}
    finally:
        if not info.reused and not os.environ.get("MMSEARCH_KEEP_NODE"):
            node.stop()


@pytest.fixture(scope="session")
def fault_node() -> Iterator[Any]:
    """A node of the fault-injection tests' own, which they stop, freeze and start (never the shared one).

    Started only when a test asks for it; stopped at the end of the session.
    """
    from mmsearch.esnode import LocalNode, NodeConfig

    node = LocalNode(NodeConfig(name="pytest-faults", port=0))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def es_settings(es_node: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(es_hosts=tuple(es_node.get("urls") or (es_node["url"],)), request_timeout_s=60,
                    state_dir=tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def es_session_client(es_settings: Settings) -> Any:
    return es_settings.es_client()


@pytest.fixture(scope="session")
def session_indices() -> set[str]:
    """Names of indices that session-scoped fixtures build once and share; the per-test wipe spares them.

    A session fixture that creates an index adds its name here (``session_indices.add(name)``).
    """
    return set()


@pytest.fixture()
def es(es_session_client: Any, session_indices: set[str]) -> Iterator[Any]:
    """A client; every index created during the test (and its aliases) is deleted afterwards."""
    before = set(es_session_client.indices.get(index="*", expand_wildcards="all").body)
    yield es_session_client
    after = set(es_session_client.indices.get(index="*", expand_wildcards="all").body)
    created = sorted(name for name in after - before if not name.startswith(".") and name not in session_indices)
    if created:
        es_session_client.indices.delete(index=",".join(created), ignore_unavailable=True)


@pytest.fixture()
def index_name() -> str:
    """A unique index/alias name for one test."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def model_dir(catalog_dir: Path) -> Path:
    """A small but real model package (real backbones, heads trained on a catalog subset), built once and cached.

    ``MMSEARCH_TEST_MODEL_DIR`` points at a ready package instead.
    """
    if os.environ.get("MMSEARCH_TEST_MODEL_DIR"):
        return Path(os.environ["MMSEARCH_TEST_MODEL_DIR"])
    from onnx_models.testing import build_test_model

    return build_test_model(catalog_dir, cache_root=PROJECT_ROOT / ".state" / "models")


@pytest.fixture(scope="session")
def encoder(model_dir: Path) -> Any:
    from onnx_models.runtime import Encoder

    return Encoder.load(model_dir)


# --- a small real product index shared by the query-service and relevance live tests ---------

PRODUCT_ALIAS = "qs-live"


@pytest.fixture(scope="session")
def search_settings(es_settings: Settings) -> Settings:
    return Settings(es_hosts=es_settings.es_hosts, products_alias=PRODUCT_ALIAS, state_dir=es_settings.state_dir)


@pytest.fixture(scope="session")
def search_index(es_session_client: Any, encoder: Any, catalog_dir: Path, search_settings: Settings,
                 session_indices: set[str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """~600 real products around the first photos in the catalog: a mix with and without images."""
    import itertools

    from indexer.catalog import CatalogConfig
    from indexer.lifecycle import build, swap
    from indexer.pipeline import PipelineConfig

    subset = tmp_path_factory.mktemp("qs") / "products.jsonl"
    with (catalog_dir / "products.jsonl").open() as lines:
        subset.write_text("".join(itertools.islice(lines, 6900, 7500)))
    summary = build(es_session_client, encoder, CatalogConfig(path=subset, image_root=catalog_dir), alias=PRODUCT_ALIAS,
                    state_dir=search_settings.state_dir, pipeline=PipelineConfig(progress=False))
    session_indices.add(summary["index"])
    swap(es_session_client, PRODUCT_ALIAS, summary["index"], loaded_identity=encoder.identity)
    assert summary["with_image_vector"] > 100 and summary["indexed"] == 600
    yield summary["index"]
    es_session_client.indices.delete(index=summary["index"], ignore_unavailable=True)



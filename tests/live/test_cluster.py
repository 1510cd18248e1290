"""Faults on a real 3-node cluster of the module's own ("pytest-cluster"): a node SIGKILLed mid-build and
mid-traffic, on indices of 3 primary shards with one replica each.

- During a build: the elected master is killed just before a chosen bulk call (``BulkFaults.before_call``).
  The client lists every node, so it sends on to the others; the build completes, and the index holds
  exactly the catalog's ids (``_id`` is the product id, so a re-sent chunk cannot double anything).
- During query traffic: a non-master node is killed while a thread sends /search requests. The ES
  client retries a refused or reset connection on another node (``retries.ES_CLIENT_MAX_RETRIES``), so
  no request may fail; once the cluster is yellow again (the replicas promoted), every answer must have
  the totals and facet counts measured before the kill.

The shared node and the "pytest-faults" node are never touched. The cluster is stopped at the end.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from indexer.catalog import CatalogConfig
from indexer.lifecycle import build, count, existing_hashes, swap
from indexer.pipeline import PipelineConfig
from mappings import IndexSettings
from mmsearch import retries
from mmsearch.config import Settings
from mmsearch.escluster import ClusterConfig, LocalCluster
from query_service.app import create_app
from tests.live.faults import BulkFaults, faulty_client
from tests.live.serving import served

pytestmark = pytest.mark.slow
SHARDS_AND_REPLICAS = IndexSettings(shards=3, replicas=1)
QUERIES = ("shirt", "red dress", "running shoes", "black watch", "handbag", "blue jeans")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster(ClusterConfig(name="pytest-cluster", nodes=3, heap="512m"))
    info = cluster.start()
    print(f"\n[cluster] started in {info.start_s} s, health {info.health}, nodes {info.number_of_nodes}, "
          f"bootstrapped now: {info.extra.get('bootstrapped')}")
    try:
        es = _client(cluster)
        left_over = [name for name in es.indices.get(index="*").body if not name.startswith(".")]
        if left_over:  # an interrupted earlier run: its indices would skew shard counts and health
            es.indices.delete(index=",".join(left_over))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def three_nodes(cluster: LocalCluster) -> LocalCluster:
    """The cluster with all three nodes in (a test before may have killed one)."""
    started = time.monotonic()
    for index, node in enumerate(cluster.status().nodes):
        if not node.running:
            cluster.start_node(index)
    info = cluster.wait_for_health(3, retries.CLUSTER_STARTUP_TIMEOUT_S)
    assert info.number_of_nodes == 3 and info.health == "green", info.public()
    print(f"\n[cluster] three nodes green after {time.monotonic() - started:.1f} s")
    return cluster


def _all_node_urls(cluster: LocalCluster) -> tuple[str, ...]:
    """Every node's URL, running or not: the client must know all of them to fail over."""
    ports = cluster.saved_ports()
    assert ports is not None
    return tuple(f"http://127.0.0.1:{p.http}" for p in ports)


def _client(cluster: LocalCluster) -> Any:
    return Settings(es_hosts=_all_node_urls(cluster), request_timeout_s=60).es_client()


def _text_only_products(catalog_dir: Path, out: Path, n: int, skip: int = 0) -> list[str]:
    """``n`` products without a photo (fast to encode), after skipping ``skip`` of them; returns their ids."""
    lines, ids = [], []
    with open(catalog_dir / "products.jsonl", encoding="utf-8") as handle:
        photo_less = (line for line in handle if not json.loads(line).get("image"))
        for line in itertools.islice(photo_less, skip, skip + n):
            lines.append(line)
            ids.append(str(json.loads(line)["id"]))
    out.write_text("".join(lines), encoding="utf-8")
    return ids


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _client_retries() -> Iterator[list[str]]:
    """The ES client's own retries in the block (it logs each at WARNING): a request that failed on one
    node and was sent again, to another, by the client (``retries.ES_CLIENT_MAX_RETRIES``)."""
    handler = _Records()
    logger = logging.getLogger("elastic_transport.transport")
    logger.addHandler(handler)
    retried: list[str] = []
    try:
        yield retried
    finally:
        logger.removeHandler(handler)
        retried.extend(m for m in handler.messages if m.startswith("Retrying request"))


def _wait_for_promoted_replicas(cluster: LocalCluster, nodes: int) -> dict[str, Any]:
    """Health once ``nodes`` nodes are in and no primary is missing (yellow: replicas promoted). Asked of a
    running node only, so that this client's own retries never count as the service's."""
    es = Settings(es_hosts=(cluster.status().urls[0],), request_timeout_s=90).es_client()
    health = es.cluster.health(wait_for_nodes=str(nodes), wait_for_status="yellow",
                               wait_for_no_initializing_shards=True, timeout="60s")
    assert not health["timed_out"] and health["number_of_nodes"] == nodes, dict(health)
    return dict(health)


def test_a_node_killed_during_a_build_loses_and_doubles_nothing(three_nodes, encoder, catalog_dir, tmp_path):
    cluster = three_nodes
    path = tmp_path / "products.jsonl"
    ids = _text_only_products(catalog_dir, path, 600)
    es = _client(cluster)
    master = cluster.elected_master()
    assert master is not None
    killed: list[Any] = []
    # 12 chunks of 50; the master dies before chunk 4 reaches ES (chunks 1-3 acknowledged, 4-12 not yet sent).
    plan = BulkFaults(before_call={4: lambda: killed.append(cluster.kill(master))})
    started = time.monotonic()
    with _client_retries() as retried:
        summary = build(faulty_client(es, plan), encoder, CatalogConfig(path=path, image_root=catalog_dir),
                        alias="cluster-build", state_dir=tmp_path, force_merge=False, settings=SHARDS_AND_REPLICAS,
                        pipeline=PipelineConfig(progress=False, batch_size=50, bulk_chunk_docs=50))
    elapsed = time.monotonic() - started
    assert killed and not killed[0].running, "the node was not killed: the test injected nothing"
    assert len(plan.calls) >= 12
    health = _wait_for_promoted_replicas(cluster, nodes=2)
    print(f"\n[build] killed master {killed[0].name} before bulk call 4; build {elapsed:.1f} s, "
          f"{len(plan.calls)} bulk calls, outage_retries {summary['outage_retries']}, client retries {len(retried)}, "
          f"health after {health['status']} ({health['unassigned_shards']} unassigned)")
    assert retried, "no request ever reached the dead node: the failover was not exercised"
    assert summary["indexed"] == 600 and summary["failed"] == 0 and summary["dead_letters"] == 0
    settings = es.indices.get_settings(index=summary["index"])[summary["index"]]["settings"]["index"]
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("3", "1")
    es.indices.refresh(index=summary["index"])
    assert count(es, summary["index"]) == len(ids) == 600
    assert sorted(existing_hashes(es, summary["index"])) == sorted(ids)  # every id once, no stranger
    es.indices.delete(index=summary["index"])


def _search(session: requests.Session, url: str, text: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        response = session.post(f"{url}/search", json={"text": text, "size": 10}, timeout=30)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        status = response.status_code
    except requests.RequestException as exc:
        body, status = {"error": repr(exc)}, 0
    return {"text": text, "status": status, "s": time.monotonic() - started, "started": started, "at": time.monotonic(),
            "total": body.get("total"), "facets": body.get("facets"), "degraded": body.get("degraded"),
            "error": body.get("error")}


def _traffic(url: str, stop: threading.Event, answers: list[dict[str, Any]]) -> None:
    with requests.Session() as session:
        for text in itertools.cycle(QUERIES):
            if stop.is_set():
                return
            answers.append(_search(session, url, text))


def _query_index(es: Any, encoder: Any, catalog_dir: Path, tmp_path: Path) -> str:
    path = tmp_path / "products.jsonl"
    _text_only_products(catalog_dir, path, 400, skip=600)
    summary = build(es, encoder, CatalogConfig(path=path, image_root=catalog_dir), alias="cluster-qs",
                    state_dir=tmp_path, settings=SHARDS_AND_REPLICAS, pipeline=PipelineConfig(progress=False))
    swap(es, "cluster-qs", summary["index"], loaded_identity=encoder.identity)
    es.cluster.health(index=summary["index"], wait_for_status="green", timeout="60s")
    return str(summary["index"])


def test_a_node_killed_during_query_traffic_fails_no_request_and_answers_stay_complete(
        three_nodes, encoder, catalog_dir, tmp_path):
    cluster = three_nodes
    es = _client(cluster)
    index = _query_index(es, encoder, catalog_dir, tmp_path)
    try:
        _answers_survive_a_kill(cluster, es, index, encoder)
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def _answers_survive_a_kill(cluster: LocalCluster, es: Any, index: str, encoder: Any) -> None:
    app = create_app(Settings(es_hosts=_all_node_urls(cluster), products_alias="cluster-qs", rate_limit="off"),
                     encoder=encoder)
    master = cluster.elected_master()
    victim = next(i for i in range(3) if i != master)
    with served(app) as url:
        with requests.Session() as session:
            expected = {text: _search(session, url, text) for text in QUERIES}
        assert all(a["status"] == 200 and a["total"] and not a["degraded"] for a in expected.values()), expected
        answers: list[dict[str, Any]] = []
        stop = threading.Event()
        thread = threading.Thread(target=_traffic, args=(url, stop, answers), daemon=True)
        thread.start()
        time.sleep(3)
        with _client_retries() as retried:
            killed_at = time.monotonic()
            cluster.kill(victim)
            health = _wait_for_promoted_replicas(cluster, nodes=2)
            promoted_at = time.monotonic()
            time.sleep(5)  # traffic on the promoted replicas
            stop.set()
            thread.join(timeout=60)
    before = [a for a in answers if a["at"] < killed_at]
    during = [a for a in answers if killed_at <= a["at"] < promoted_at]
    after = [a for a in answers if a["at"] >= promoted_at]
    incomplete = [a for a in answers if (a["total"], a["facets"]) != (expected[a["text"]]["total"],
                                                                       expected[a["text"]]["facets"])]
    in_flight = [a for a in answers if a["started"] < killed_at <= a["at"]]
    print(f"\n[queries] killed {cluster.config.node_names[victim]} (not the master); {len(answers)} requests "
          f"({len(before)} before, {len(in_flight)} in flight at the kill, {len(during)} ended before yellow after "
          f"{promoted_at - killed_at:.1f} s, {len(after)} after); client retries {len(retried)}; "
          f"health {health['status']}; non-200: {sum(a['status'] != 200 for a in answers)}; incomplete: "
          f"{len(incomplete)} ({sum(a['at'] >= killed_at for a in incomplete)} after the kill); degraded: "
          f"{sum(bool(a['degraded']) for a in answers)}; slowest {max(a['s'] for a in answers):.2f} s")
    assert before and len(after) >= 5, "too little traffic around the kill to say anything"
    assert retried, "no request ever reached the dead node: the failover was not exercised"
    failed = [a for a in answers if a["status"] != 200]
    assert not failed, failed[:5]
    assert not [a for a in before if a in incomplete], "answers differed before any fault"
    assert not [a for a in after if a in incomplete or a["degraded"]], "answers stayed incomplete after promotion"
    assert count(es, index) == 400

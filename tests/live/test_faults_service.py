"""Faults under the running query service, on a real node of the tests' own ("pytest-faults").

- Elasticsearch stopped: /readyz fails, /search and the proxy answer 503 with Retry-After
  at once, and the same app serves again once the node is back (no restart).
- Elasticsearch frozen (SIGSTOP: the port accepts, nothing answers): the 503 comes within
  the engine's deadline, /readyz within ``retries.READINESS_TIMEOUT_S``.
- Events during an outage: accepted ones are kept until ES takes them, a full buffer
  answers 503, and every accepted event is in the index exactly once afterwards.
- Events on SIGTERM: gunicorn stopping its workers flushes what they buffered.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from indexer.catalog import CatalogConfig
from indexer.lifecycle import build, swap
from indexer.pipeline import PipelineConfig
from mmsearch import retries
from mmsearch.config import PROJECT_ROOT, Settings
from query_service.app import create_app
from query_service.engine import EngineOptions
from query_service.relevance.events import EventLogger
from tests.live.serving import served

pytestmark = pytest.mark.slow
ALIAS = "faults-qs"
EVENTS_TOKEN = "events-token-for-the-fault-tests"
LEG_TIMEOUT_MS = 500
#: The engine's deadline for one ES round trip: the leg timeout plus its slack (SearchEngine).
SEARCH_DEADLINE_S = LEG_TIMEOUT_MS / 1000 + 5


@pytest.fixture(scope="module")
def fault_index(fault_node: Any, encoder: Any, catalog_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    es = _client(fault_node)
    path = tmp_path_factory.mktemp("faults") / "products.jsonl"
    with open(catalog_dir / "products.jsonl", encoding="utf-8") as lines:
        path.write_text("".join(next(lines) for _ in range(80)), encoding="utf-8")
    summary = build(es, encoder, CatalogConfig(path=path, image_root=catalog_dir), alias=ALIAS,
                    state_dir=tmp_path_factory.mktemp("state"), pipeline=PipelineConfig(progress=False))
    swap(es, ALIAS, summary["index"], loaded_identity=encoder.identity)
    return str(summary["index"])


def _client(node: Any) -> Any:
    return Settings(es_hosts=(node.status().url,), request_timeout_s=30).es_client()


def _settings(node: Any, **extra: Any) -> Settings:
    return Settings(es_hosts=(node.status().url,), products_alias=ALIAS, rate_limit="off", **extra)


@pytest.fixture()
def service(fault_node: Any, fault_index: str, encoder: Any) -> Iterator[str]:
    app = create_app(_settings(fault_node), encoder=encoder, engine_options=EngineOptions(leg_timeout_ms=LEG_TIMEOUT_MS))
    with served(app) as url:
        yield url


def _timed(method: str, url: str, **kwargs: Any) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=60, **kwargs)
    return response, time.monotonic() - started


def _wait_for(predicate: Any, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"not recovered within {timeout_s} s")


def _searches_ok(url: str) -> bool:
    try:
        return requests.post(f"{url}/search", json={"text": "shirt"}, timeout=10).status_code == 200
    except requests.RequestException:
        return False


def _assert_unavailable(response: requests.Response, *, proxy: bool = False) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(retries.SERVICE_RETRY_AFTER_S)
    body = response.json()
    if proxy:
        assert body["status"] == 503 and body["error"]["type"]
    else:
        assert body["error"] == "ClusterUnavailableError" and "Traceback" not in response.text


def test_es_stopped_is_503_at_once_and_the_service_recovers_by_itself(service: str, fault_node: Any) -> None:
    assert _searches_ok(service) and requests.get(f"{service}/readyz", timeout=10).status_code == 200
    fault_node.stop()
    try:
        search, search_s = _timed("POST", f"{service}/search", json={"text": "red shirt"})
        proxy, proxy_s = _timed("POST", f"{service}/{ALIAS}/_search", json={"query": {"match": {"title": "shirt"}}})
        ready, ready_s = _timed("GET", f"{service}/readyz")
        _assert_unavailable(search)
        _assert_unavailable(proxy, proxy=True)
        assert ready.status_code == 503 and ready.json()["checks"]["es_reachable"] is False
        # Refused connections fail fast: nothing waits for a timeout.
        assert max(search_s, proxy_s, ready_s) < 2.0, (search_s, proxy_s, ready_s)
        assert requests.get(f"{service}/healthz", timeout=10).status_code == 200
    finally:
        fault_node.start()
    _wait_for(lambda: _searches_ok(service), timeout_s=60)
    assert requests.get(f"{service}/readyz", timeout=10).status_code == 200


def test_es_frozen_is_503_within_the_deadline(service: str, fault_node: Any) -> None:
    assert _searches_ok(service)
    pid = fault_node.status().pid
    os.kill(pid, signal.SIGSTOP)
    try:
        search, search_s = _timed("POST", f"{service}/search", json={"text": "blue jeans"})
        ready, ready_s = _timed("GET", f"{service}/readyz")
    finally:
        os.kill(pid, signal.SIGCONT)
    _assert_unavailable(search)
    assert ready.status_code == 503
    assert search_s < SEARCH_DEADLINE_S + 2.0, f"/search took {search_s:.1f} s against a frozen node"
    assert ready_s < retries.READINESS_TIMEOUT_S + 1.5, f"/readyz took {ready_s:.1f} s against a frozen node"
    _wait_for(lambda: _searches_ok(service), timeout_s=60)


def _count_events(es: Any, index: str) -> tuple[int, int]:
    """(documents, distinct event keys) in the events index."""
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=10_000, query={"match_all": {}})["hits"]["hits"]
    keys = {(hit["_source"].get("type"), hit["_source"].get("query_id"), hit["_source"].get("doc_id")) for hit in hits}
    return len(hits), len(keys)


def test_events_survive_an_outage_and_a_full_buffer_answers_503(fault_node: Any, fault_index: str,
                                                               encoder: Any) -> None:
    es = _client(fault_node)
    index = f"t-events-faults-{int(time.time())}"
    logger = EventLogger(es, index, max_buffer=40, flush_every=10, flush_interval_s=0.2)
    app = create_app(_settings(fault_node, events_index=index, events_token=EVENTS_TOKEN), encoder=encoder,
                     event_logger=logger)
    token = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
    statuses: list[int] = []
    with served(app) as url:
        def click(n: int) -> int:
            event = {"type": "click", "query_id": f"q{n}", "doc_id": f"d{n}", "position": 1}
            return requests.post(f"{url}/events", json=event, headers=token, timeout=30).status_code

        statuses += [click(n) for n in range(10)]
        _wait_for(lambda: logger.buffered == 0, timeout_s=30)
        fault_node.stop()
        try:
            statuses += [click(n) for n in range(10, 60)]  # 50 during the outage, the buffer holds 40
        finally:
            fault_node.start()
        _wait_for(lambda: logger.buffered == 0, timeout_s=90)
        logger.close()
    accepted = statuses.count(202)
    assert statuses[:10] == [202] * 10
    assert statuses.count(503) == 10 and accepted == 50, statuses
    assert statuses[10:50] == [202] * 40 and statuses[50:] == [503] * 10  # full buffer: refused, not dropped
    documents, distinct = _count_events(_client(fault_node), index)
    assert documents == distinct == accepted == logger.written
    _client(fault_node).indices.delete(index=index)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_flushes_every_buffered_event(fault_node: Any, fault_index: str, model_dir: Path,
                                              tmp_path: Path) -> None:
    index = f"t-events-sigterm-{int(time.time())}"
    experiments = tmp_path / "experiments.json"
    experiments.write_text(json.dumps({"id": "sigterm", "salt": "s", "variants": [
        {"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "ranking": {"method": "linear"}}]}), encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "ES_URL": fault_node.status().url, "MMSEARCH_ALIAS": ALIAS,
           "MMSEARCH_MODEL_DIR": str(model_dir), "MMSEARCH_EVENTS_INDEX": index, "MMSEARCH_EVENTS_TOKEN": EVENTS_TOKEN,
           "MMSEARCH_RATE_LIMIT": "off", "MMSEARCH_EVENTS_FLUSH_INTERVAL_S": "3600"}
    server = subprocess.Popen([sys.executable, "-m", "mmsearch.cli", "serve", "--port", str(port), "--workers", "2",
                               "--experiments", str(experiments)], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _ready(url), timeout_s=180)
        token = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
        searches = [requests.post(f"{url}/search", json={"text": f"shirt {n}"}, timeout=30) for n in range(20)]
        clicks = [requests.post(f"{url}/events", headers=token, timeout=30,
                                json={"type": "click", "query_id": f"q{n}", "doc_id": f"d{n}", "position": 1})
                  for n in range(30)]
        assert [r.status_code for r in searches] == [200] * 20 and [r.status_code for r in clicks] == [202] * 30
        assert _count_events(_client(fault_node), index)[0] == 0, "the flush interval is an hour: all still buffered"
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output[-3000:]
    documents, distinct = _count_events(_client(fault_node), index)
    assert documents == distinct == 20 + 30, output[-3000:]  # 20 exposures, 30 clicks
    _client(fault_node).indices.delete(index=index)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False

"""Per-client rate limits (Flask-Limiter, set up by create_app): 429 with Retry-After in each route's
error shape, per client address, never on the operations probes, off when configured so."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mmsearch.config import Settings
from query_service.app import create_app
from tests.unit.fakes import FakeGateway

NO_PLUGINS = SimpleNamespace(painless=False, native_rrf_usable=False)
LIMIT = 3
DSL = {"query": {"match": {"title": "shirt"}}}


def _client(**settings: Any) -> Any:
    settings.setdefault("rate_limit", f"{LIMIT}/minute")
    return create_app(Settings(**settings), es=FakeGateway(), capabilities=NO_PLUGINS).test_client()


def _from(address: str) -> dict[str, Any]:
    return {"environ_overrides": {"REMOTE_ADDR": address}}


def test_the_request_past_the_limit_is_429_json_with_retry_after() -> None:
    client = _client()
    assert [client.get("/search?q=shirt").status_code for _ in range(LIMIT)] == [200] * LIMIT
    response = client.get("/search?q=shirt")
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == "TooManyRequests" and "3 per 1 minute" in body["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 61


def test_the_proxy_answers_429_in_elasticsearchs_error_shape() -> None:
    client = _client()
    for _ in range(LIMIT):
        assert client.post("/products/_search", json=DSL).status_code == 200
    response = client.post("/products/_search", json=DSL)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-Elastic-Product"] == "Elasticsearch"
    body = response.get_json()
    assert body["status"] == 429 and body["error"]["type"] == "es_rejected_execution_exception"
    assert body["error"]["root_cause"][0]["type"] == "es_rejected_execution_exception"


def test_another_client_address_has_its_own_budget() -> None:
    client = _client()
    for _ in range(LIMIT + 1):
        client.get("/search?q=shirt", **_from("10.0.0.1"))
    assert client.get("/search?q=shirt", **_from("10.0.0.1")).status_code == 429
    assert client.get("/search?q=shirt", **_from("10.0.0.2")).status_code == 200


def test_the_probes_and_metrics_are_never_limited() -> None:
    client = _client()
    for path in ("/healthz", "/readyz", "/metrics"):
        statuses = {client.get(path).status_code for _ in range(LIMIT * 4)}
        assert 429 not in statuses, (path, statuses)


def test_429s_are_counted_in_the_metrics() -> None:
    client = _client()
    for _ in range(LIMIT + 2):
        client.get("/search?q=shirt")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mmsearch_requests_total{endpoint="search",status="200"} 3.0' in text
    assert 'mmsearch_requests_total{endpoint="search",status="429"} 2.0' in text


def test_off_disables_it() -> None:
    client = _client(rate_limit="off")
    assert {client.get("/search?q=shirt").status_code for _ in range(LIMIT * 4)} == {200}


def test_each_app_counts_for_itself() -> None:
    # memory:// is per limiter: two apps in one process (tests, or a worker's reload) do not share counts.
    first, second = _client(), _client()
    for _ in range(LIMIT + 1):
        first.get("/search?q=shirt")
    assert second.get("/search?q=shirt").status_code == 200


def test_the_pages_are_limited_too() -> None:
    client = _client()
    html = {"headers": {"Accept": "text/html"}}
    assert [client.get("/", **html).status_code for _ in range(LIMIT)] == [200] * LIMIT
    assert client.get("/", **html).status_code == 429


@pytest.mark.parametrize("trusted,expected", [(0, 429), (1, 200)])
def test_x_forwarded_for_is_believed_only_behind_configured_proxies(trusted: int, expected: int) -> None:
    client = _client(trusted_proxies=trusted)
    for _ in range(LIMIT + 1):
        client.get("/search?q=shirt", headers={"X-Forwarded-For": "203.0.113.1"})
    # A new forwarded address: a new client only when our proxy wrote the header.
    response = client.get("/search?q=shirt", headers={"X-Forwarded-For": "203.0.113.2"})
    assert response.status_code == expected


def test_the_default_limit_is_on() -> None:
    settings = Settings()
    assert settings.rate_limit_enabled and settings.rate_limit == "50/second;1000/minute"
    client = create_app(settings, es=FakeGateway(), capabilities=NO_PLUGINS).test_client()
    statuses = [client.get("/healthz").status_code for _ in range(60)]  # exempt: no 429 even past 50/s
    assert set(statuses) == {200}
    # 110 in well under two seconds: whichever one-second windows they fall in, one holds more than 50.
    assert 429 in {client.get("/ui/style.css").status_code for _ in range(110)}

"""No secret ever reaches a log line, an error, a response body or header, or a Settings repr.

The service is built with distinctive random secrets (the ES password or API key, the admin and
events tokens, the event ticket secret), driven through good searches, bad requests, missing and
wrong credentials, an Elasticsearch outage and every operations endpoint, while every log record
(any logger, any level, formatted by the service's JSON formatter) is captured. Then every captured
line, body and header is searched for each secret and the encodings a client would send it in.

The shared node runs without security, so it ignores the credentials: what is checked here is our
own logging and answers, which is what a credential-checking cluster would not change.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import secrets
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mmsearch.config import Settings
from mmsearch.exceptions import ConfigError, MMSearchError
from query_service.app import create_app
from query_service.jsonlog import JsonLogFormatter
from query_service.relevance.events import EventLogger


def _secret(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(18)}"


PASSWORD = _secret("pw")
API_KEY = _secret("apikey")
ADMIN_TOKEN = _secret("admin")
EVENTS_TOKEN = _secret("events")
EVENT_SECRET = _secret("ticketkey")
#: Wrong credentials a client sent: as unwelcome in a log as the right ones (a near-miss, a typo'd real one).
WRONG_TOKEN = _secret("wrong")
QUERY_TOKEN = _secret("inquery")
USERNAME = "secrets-test-user"


def _forms(secret: str) -> list[str]:
    """The secret and the encodings it travels in: base64 (API key header), basic auth's user:password."""
    forms = [secret, base64.b64encode(secret.encode()).decode(), base64.urlsafe_b64encode(secret.encode()).decode()]
    basic = base64.b64encode(f"{USERNAME}:{secret}".encode()).decode()
    return [*forms, basic]


ALL_SECRETS = [PASSWORD, API_KEY, ADMIN_TOKEN, EVENTS_TOKEN, EVENT_SECRET, WRONG_TOKEN, QUERY_TOKEN]


@pytest.fixture()
def captured() -> Iterator[io.StringIO]:
    """Every record of every logger, at DEBUG, as the service's JSON lines (its own loggers may not propagate)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.setLevel(logging.DEBUG)
    watched = [logging.getLogger(), logging.getLogger("mmsearch")]
    saved = [(logger, logger.level) for logger in watched]
    for logger in watched:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _texts(response: Any) -> list[str]:
    return [response.get_data(as_text=True), *(f"{name}: {value}" for name, value in response.headers.items())]


def _drive(client: Any, seen: list[str], events: bool = True) -> dict[str, int]:
    """Every kind of request; returns path -> status for the checks that the paths were really taken."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    wrong = {"Authorization": f"Bearer {WRONG_TOKEN}"}
    statuses: dict[str, int] = {}

    def call(label: str, method: str, path: str, **kwargs: Any) -> Any:
        response = client.open(path, method=method, **kwargs)
        seen.extend(_texts(response))
        statuses[label] = response.status_code
        return response

    found = call("search", "GET", "/search?q=red+shirt").get_json()
    call("search_json", "POST", "/search", json={"text": "blue jeans", "size": 3})
    call("search_bad", "POST", "/search", json={"text": "x", "size": -4})
    call("search_not_json", "POST", "/search", data="{", content_type="application/json")
    call("search_token_in_query", "GET", f"/search?q=bag&token={QUERY_TOKEN}", headers=wrong)
    call("proxy_search", "POST", "/qs-secrets-alias-missing/_search", json={"query": {"match_all": {}}})
    call("proxy_forbidden", "GET", "/_cluster/settings")
    call("ops_data_missing", "GET", "/ops/data")
    call("ops_data_wrong", "GET", "/ops/data", headers=wrong)
    call("ops_data", "GET", "/ops/data", headers=admin)
    call("metrics_missing", "GET", "/metrics")
    call("metrics", "GET", "/metrics", headers=admin)
    for path in ("/healthz", "/readyz", "/openapi.json"):
        call(path, "GET", path)
    if events:
        click = {"type": "click", "query_id": (found or {}).get("query_id", "q"), "doc_id": "d1", "position": 1}
        call("events_missing", "POST", "/events", json=click)
        call("events_wrong", "POST", "/events", json=click, headers=wrong)
        call("events_bad_ticket", "POST", "/events", json={**click, "ticket": "1.x"})
        call("events_token", "POST", "/events", json=click, headers={"Authorization": f"Bearer {EVENTS_TOKEN}"})
        if found and found.get("event_ticket"):
            call("events_ticket", "POST", "/events", json={**click, "ticket": found["event_ticket"]})
    return statuses


def _assert_no_secret(texts: list[str]) -> None:
    for secret in ALL_SECRETS:
        for form in _forms(secret):
            leaks = [text for text in texts if form in text]
            assert not leaks, f"a secret ({secret[:6]}...) leaked: {leaks[0][:300]}"


def _secured_settings(search_settings: Settings, **credentials: Any) -> Settings:
    return dataclasses.replace(search_settings, admin_token=ADMIN_TOKEN, events_token=EVENTS_TOKEN,
                               event_ticket_secret=EVENT_SECRET, metrics_public=False, **credentials)


def test_no_secret_in_logs_errors_or_answers(es: Any, search_index: str, search_settings: Settings, encoder: Any,
                                             captured: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # what propagates to the root (pytest's own capture) is checked too
    seen: list[str] = []
    basic = _secured_settings(search_settings, username=USERNAME, password=PASSWORD)
    keyed = _secured_settings(search_settings, api_key=API_KEY)
    events_index = f"t-secrets-events-{uuid.uuid4().hex[:8]}"
    logger = EventLogger(es, events_index, flush_every=1, background=False)
    statuses = _drive(create_app(basic, encoder=encoder, event_logger=logger).test_client(), seen)
    assert statuses["search"] == statuses["search_json"] == 200 and statuses["search_bad"] == 400
    assert statuses["ops_data_missing"] == statuses["ops_data_wrong"] == 401 and statuses["ops_data"] == 200
    assert statuses["metrics_missing"] == 401 and statuses["metrics"] == 200
    assert statuses["events_missing"] == statuses["events_wrong"] == statuses["events_bad_ticket"] == 401
    assert statuses["events_token"] == statuses["events_ticket"] == 202
    keyed_statuses = _drive(create_app(keyed, encoder=encoder).test_client(), seen, events=False)
    assert keyed_statuses["search"] == 200

    # Elasticsearch goes away: 503s, readiness says why, the client's retries log their failures.
    port = _closed_port()
    for credentials in ({"username": USERNAME, "password": PASSWORD}, {"api_key": API_KEY}):
        down = dataclasses.replace(_secured_settings(search_settings, **credentials),
                                   es_hosts=(f"http://127.0.0.1:{port}",), request_timeout_s=2)
        outage = _drive(create_app(down, encoder=encoder, capabilities=None).test_client(), seen, events=False)
        assert outage["search"] == 503 and outage["/readyz"] == 503, outage
        try:
            create_app(down, encoder=encoder).extensions["mmsearch"].gateway.cluster_health("1s")
        except MMSearchError as exc:  # what a caller (a CLI, a log line) would show of it
            seen.extend([str(exc), repr(exc), json.dumps(exc.to_dict(), default=str)])
        else:
            pytest.fail("a closed port answered a health check")

    # Settings, and the errors a bad configuration raises, never show a secret either.
    for settings in (basic, keyed):
        seen.extend([repr(settings), str(settings), json.dumps(settings.redacted(), default=str)])
    for bad in ({"api_key": API_KEY, "username": USERNAME, "password": PASSWORD}, {"password": PASSWORD},
                {"event_ticket_secret": EVENT_SECRET[:10]}, {"rate_limit_storage": f"postgres://u:{PASSWORD}@db"},
                {"admin_token": f" {ADMIN_TOKEN}"}):
        with pytest.raises(ConfigError) as info:
            Settings(**bad)
        seen.extend([str(info.value), repr(info.value), json.dumps(info.value.to_dict(), default=str)])

    logger.close()
    lines = captured.getvalue().splitlines()
    assert len(lines) > 20 and any('"msg": "request"' in line for line in lines)  # the capture worked
    request_lines = [json.loads(line) for line in lines if '"msg": "request"' in line]
    assert request_lines and all("?" not in entry["path"] for entry in request_lines)  # no query strings
    assert all("authorization" not in line.lower() or "bearer" not in line.lower() for line in lines)
    formatter = JsonLogFormatter()
    propagated = [formatter.format(record) for record in caplog.records]
    assert propagated
    _assert_no_secret(lines + propagated + seen)


def test_the_check_would_see_a_leak(captured: io.StringIO) -> None:
    # The capture and the search above are what the test rests on: a secret logged is a secret found.
    logging.getLogger("mmsearch.query").info("oops", extra={"fields": {"auth": f"Bearer {ADMIN_TOKEN}"}})
    logging.getLogger("elastic_transport.transport").debug("basic %s", _forms(PASSWORD)[-1])
    lines = captured.getvalue().splitlines()
    with pytest.raises(AssertionError, match="leaked"):
        _assert_no_secret(lines[:1])
    with pytest.raises(AssertionError, match="leaked"):
        _assert_no_secret(lines[1:])

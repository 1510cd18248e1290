"""Contract fuzzing: schemathesis generates requests from ``/openapi.json`` against the real service in-process.

The app is ``create_app`` over the live test index with the real encoders and an events logger,
so ``/search`` (GET, JSON, multipart), ``/events`` and the proxy's endpoints answer as deployed.
Every generated case must get a non-5xx answer; every 4xx must be JSON with an error message; and
schemathesis' conformance checks (status documented, content type, response schema, headers) hold.
The proxy's ``{index}`` operations run twice: with generated names (refused: 403) and on the
product alias (hybrid or relayed to Elasticsearch). Issue 15 asked for at least 2,000 cases.

Reproduce: ``ES_URL=http://127.0.0.1:9250 .venv/bin/python -m pytest tests/live/test_fuzz_openapi.py -q -s``
(``-s`` prints the cases per operation and the statuses seen).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mmsearch.config import Settings
from query_service.app import create_app
from query_service.openapi import openapi_document
from query_service.relevance.events import EventLogger
from query_service.relevance.http import EVENT_TYPES

pytestmark = pytest.mark.slow

MIN_CASES = 2000
#: Hypothesis examples per operation (the fuzzing phase; the explicit-example and coverage phases add
#: their own cases). /search runs the encoders and five legs per accepted case, the rest are cheap:
#: chosen so the module makes > 2,000 requests in under ~4 minutes on a 2-core machine.
SEARCH_EXAMPLES = 40
OTHER_EXAMPLES = 120
ALIAS_EXAMPLES = 100
EVENTS_TOKEN = "fuzz-events-token-0123456789"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

#: (operation label, status) -> answers seen over the module; asserted and printed by the last test.
SEEN: Counter[tuple[str, int]] = Counter()
#: Events that POST /events answered 202 for (its "accepted" counts).
ACCEPTED_EVENTS: Counter[str] = Counter()


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """The document describes an _msearch body as its decoded lines; on the wire they are one JSON a line."""
    if isinstance(value, list):
        return b"".join(json.dumps(line).encode() + b"\n" for line in value)
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _settings_for_fuzzing(search_settings: Settings, events_index: str) -> Settings:
    """The live settings, with the rate limiter off and an events token, when this Settings has them."""
    names = {f.name for f in dataclasses.fields(Settings)}
    extra: dict[str, Any] = {"events_index": events_index}
    if "rate_limit" in names:
        extra["rate_limit"] = "off"  # thousands of requests from one client in seconds: not what is tested
    if "events_token" in names:
        extra["events_token"] = EVENTS_TOKEN
    return dataclasses.replace(search_settings, **extra)


@pytest.fixture(scope="module")
def event_logger(search_index: str, es_session_client: Any) -> Iterator[EventLogger]:
    events_index = f"t-fuzz-events-{uuid.uuid4().hex[:8]}"
    # Synchronous flushes every 50 events: a document Elasticsearch refuses surfaces during the run.
    logger = EventLogger(es_session_client, events_index, flush_every=50, background=False)
    try:
        yield logger
    finally:
        # Not at interpreter exit: a flush then would recreate the deleted index (automatic creation).
        atexit.unregister(logger.close)
        try:
            logger.close()
        finally:
            es_session_client.indices.delete(index=events_index, ignore_unavailable=True)


@pytest.fixture(scope="module")
def fuzzed_app(search_index: str, search_settings: Settings, encoder: Any, es_session_client: Any,
               event_logger: EventLogger) -> Iterator[Any]:
    # A private alias on the shared test index: other sessions on the same node move (and delete) the
    # shared alias meanwhile, which readiness and every search would answer as a 503.
    alias = f"t-fuzz-{uuid.uuid4().hex[:8]}"
    es_session_client.indices.put_alias(index=search_index, name=alias)
    settings = _settings_for_fuzzing(dataclasses.replace(search_settings, products_alias=alias), event_logger.index)
    yield create_app(settings, encoder=encoder, event_logger=event_logger)
    es_session_client.options(ignore_status=404).indices.delete_alias(index=search_index, name=alias)


@pytest.fixture(scope="module")
def auth_headers(fuzzed_app: Any) -> dict[str, str]:
    has_token = getattr(fuzzed_app.extensions["mmsearch"].settings, "events_token", None)
    return {"Authorization": f"Bearer {EVENTS_TOKEN}"} if has_token else {}


# Loaded from the document itself, not through a fixture: schemathesis' lazy fixture loader fails
# under pytest 9 (it sets ``request.node._nodeid``). test_the_fuzzed_document_is_the_served_one pins
# that this is what ``GET /openapi.json`` serves; every case is sent to the app in-process (app=).
schema = schemathesis.openapi.from_dict(openapi_document())


def _fuzz_settings(max_examples: int) -> Any:
    return settings(max_examples=max_examples, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])


def test_the_fuzzed_document_is_the_served_one(fuzzed_app: Any) -> None:
    served = fuzzed_app.test_client().get("/openapi.json")
    assert served.status_code == 200 and served.get_json() == schema.raw_schema


def _call_and_check(case: Any, app: Any, headers: dict[str, str]) -> None:
    response = case.call_and_validate(headers=headers, checks=CHECKS, app=app)
    on_alias = (case.path_parameters or {}).get("index") == app.extensions["mmsearch"].settings.products_alias
    media = f" ({case.media_type})" if case.path == "/search" and case.method == "POST" else ""
    SEEN[(f"{case.method} {case.path}{media}" + (" [alias]" if on_alias else ""), response.status_code)] += 1
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if case.path == "/events" and response.status_code == 202:
        ACCEPTED_EVENTS["accepted"] += response.json()["accepted"]
    if 400 <= response.status_code < 500:
        body = response.json()  # every error is JSON
        error = body.get("error")
        message = error.get("reason") if isinstance(error, dict) else body.get("message")
        assert isinstance(message, str) and message, (case.as_curl_command(), body)


@schema.include(path="/search").parametrize()
@_fuzz_settings(SEARCH_EXAMPLES)
def test_search_answers_its_contract(case: Any, fuzzed_app: Any) -> None:
    _call_and_check(case, fuzzed_app, {})


@schema.exclude(path="/search").parametrize()
@_fuzz_settings(OTHER_EXAMPLES)
def test_every_other_operation_answers_its_contract(case: Any, fuzzed_app: Any, auth_headers: dict[str, str]) -> None:
    _call_and_check(case, fuzzed_app, auth_headers if case.path == "/events" else {})


@schema.include(path_regex=r"\{index\}").parametrize()
@_fuzz_settings(ALIAS_EXAMPLES)
def test_proxy_operations_on_the_product_alias(case: Any, fuzzed_app: Any) -> None:
    case.path_parameters = {**(case.path_parameters or {}),
                            "index": fuzzed_app.extensions["mmsearch"].settings.products_alias}
    _call_and_check(case, fuzzed_app, {})


def test_every_accepted_event_reached_the_events_index(event_logger: EventLogger, es_session_client: Any) -> None:
    """After the fuzzing above: every event /events accepted (202) is in the events index."""
    event_logger.flush()
    es_session_client.indices.refresh(index=event_logger.index)
    stored = es_session_client.count(index=event_logger.index,
                                     query={"terms": {"type": list(EVENT_TYPES)}})["count"]
    print(f"\nevents: accepted {ACCEPTED_EVENTS['accepted']}, in the index {stored}, "
          f"still buffered {event_logger.buffered}")
    assert ACCEPTED_EVENTS["accepted"] > 0
    assert stored == ACCEPTED_EVENTS["accepted"]


def test_zz_enough_cases_were_generated() -> None:
    """Runs last (file order): the fuzz tests above generated at least MIN_CASES requests, none a 5xx."""
    per_operation: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for (operation, status), count in sorted(SEEN.items()):
        per_operation[operation] += count
        statuses[status] += count
    print(f"\n{sum(per_operation.values())} cases; statuses: {dict(sorted(statuses.items()))}")
    for operation, count in sorted(per_operation.items()):
        seen = {status: n for (name, status), n in sorted(SEEN.items()) if name == operation}
        print(f"  {operation}: {count} {seen}")
    assert sum(per_operation.values()) >= MIN_CASES, per_operation
    assert not [status for status in statuses if status >= 500]

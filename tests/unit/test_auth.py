"""The admin bearer token and the events credentials (query_service.auth), their settings, and the
surfaces they guard (/ops/data, /metrics when not public, POST /events)."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest

from mmsearch.config import Settings
from query_service.app import create_app
from query_service.auth import (EVENT_TICKET_TTL_S, EVENTS_BAD_TICKET, EVENTS_MISSING, EVENTS_NOT_CONFIGURED,
                                EVENTS_WRONG_TOKEN, MISSING, NOT_CONFIGURED, WRONG, bearer_token, check_admin,
                                check_events, event_ticket_key, make_event_ticket, verify_event_ticket)
from tests.unit.fakes import FakeGateway



@pytest.mark.parametrize("header,token", [
    ("Bearer s3cret", "s3cret"), ("bearer s3cret", "s3cret"), ("  Bearer   s3cret  ", "s3cret"),
    ("Basic czNjcmV0", None), ("Bearer", None), ("Bearer ", None), ("", None), (None, None), ("s3cret", None),
])
def test_bearer_token_reads_only_the_bearer_scheme(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_without_a_configured_token_the_surface_is_closed_not_open() -> None:
    assert check_admin("Bearer anything", None) == (403, NOT_CONFIGURED)
    assert check_admin("Bearer ", "") == (403, NOT_CONFIGURED)
    assert check_admin(None, None) == (403, NOT_CONFIGURED)


def test_missing_or_wrong_tokens_are_401_and_the_right_one_passes() -> None:
    assert check_admin(None, "s3cret") == (401, MISSING)
    assert check_admin("Basic czNjcmV0", "s3cret") == (401, MISSING)
    assert check_admin("Bearer s3cre", "s3cret") == (401, WRONG)
    assert check_admin("Bearer s3cret2", "s3cret") == (401, WRONG)
    assert check_admin("Bearer s3cret", "s3cret") is None
    assert check_admin("Bearer ünï", "ünï") is None  # non-ASCII tokens compare too (as bytes)


def test_the_token_setting_comes_from_the_environment_and_is_never_shown() -> None:
    settings = Settings.load(environ={"MMSEARCH_ADMIN_TOKEN": "tok-123"})
    assert settings.admin_token == "tok-123"
    assert "tok-123" not in repr(settings)
    assert settings.redacted()["admin_token"] == "***"
    assert Settings.load(environ={}).admin_token is None


# --- event tickets (the search page's credential for POST /events) ---------------------------------

KEY = b"k" * 32
NOW = 1_800_000_000.0
NO_PLUGINS = SimpleNamespace(painless=False, native_rrf_usable=False)


def test_a_ticket_is_valid_for_its_query_id_until_it_expires() -> None:
    ticket = make_event_ticket(KEY, "q1", NOW)
    assert verify_event_ticket(KEY, "q1", ticket, NOW)
    assert verify_event_ticket(KEY, "q1", ticket, NOW + EVENT_TICKET_TTL_S)
    assert not verify_event_ticket(KEY, "q1", ticket, NOW + EVENT_TICKET_TTL_S + 1)  # expired


def test_a_ticket_is_refused_with_another_key_or_query_id() -> None:
    ticket = make_event_ticket(KEY, "q1", NOW)
    assert not verify_event_ticket(b"K" * 32, "q1", ticket, NOW)
    assert not verify_event_ticket(KEY, "q2", ticket, NOW)
    assert not verify_event_ticket(KEY, "q1x", ticket, NOW)
    assert not verify_event_ticket(KEY, "", ticket, NOW)


def test_tampered_tickets_are_refused() -> None:
    ticket = make_event_ticket(KEY, "q1", NOW)
    expiry, _, mac = ticket.partition(".")
    later = f"{int(expiry) + 10_000}.{mac}"  # a longer life with the old MAC
    flipped = f"{expiry}.{('A' if mac[0] != 'A' else 'B') + mac[1:]}"
    for bad in (later, flipped, mac, expiry, "", ".", f"{expiry}.", f"-1.{mac}", f"{expiry}.{mac}=", ticket + "x",
                f"{expiry}.{base64.urlsafe_b64encode(b'x' * 32).decode()}", None, 12, ["a"]):
        assert not verify_event_ticket(KEY, "q1", bad, NOW), bad


def test_non_ascii_tickets_and_query_ids_are_handled_not_crashed_on() -> None:
    ticket = make_event_ticket(KEY, "requête-ü", NOW)
    assert verify_event_ticket(KEY, "requête-ü", ticket, NOW)
    assert not verify_event_ticket(KEY, "requete-u", ticket, NOW)
    assert not verify_event_ticket(KEY, "q1", "١٢٣.abc", NOW)  # Arabic-Indic digits are isdigit() but not ours
    assert not verify_event_ticket(KEY, "q1", ticket.replace(".", ".é", 1), NOW)


def test_the_ticket_key_is_the_secret_or_derived_from_the_events_token_never_the_token_itself() -> None:
    assert event_ticket_key("s" * 16, "tok") == b"s" * 16
    derived = event_ticket_key(None, "tok")
    assert derived is not None and derived != b"tok" and len(derived) == 32
    assert event_ticket_key(None, "tok") == derived and event_ticket_key(None, "tok2") != derived
    assert event_ticket_key(None, None) is None


def test_check_events_rules() -> None:
    good = [{"query_id": "q1", "ticket": make_event_ticket(KEY, "q1", NOW)}]
    assert check_events(None, good, None, None, NOW) == (403, EVENTS_NOT_CONFIGURED)
    assert check_events("Bearer tok", [], "tok", None, NOW) is None
    assert check_events("Bearer tok", [], "tok", KEY, NOW) is None
    assert check_events("Bearer nope", good, "tok", KEY, NOW) == (401, EVENTS_WRONG_TOKEN)  # no fall-back
    assert check_events("Bearer tok", [], None, KEY, NOW) == (401, EVENTS_WRONG_TOKEN)
    assert check_events(None, [{"query_id": "q1"}], "tok", None, NOW) == (401, EVENTS_MISSING)
    assert check_events(None, good, None, KEY, NOW) is None
    assert check_events(None, good + [{"query_id": "q2"}], None, KEY, NOW) == (401, EVENTS_MISSING)
    assert check_events(None, good + [{"query_id": "q2", "ticket": good[0]["ticket"]}], None, KEY, NOW) \
        == (401, EVENTS_BAD_TICKET)
    assert check_events(None, good, None, KEY, NOW + EVENT_TICKET_TTL_S + 5) == (401, EVENTS_BAD_TICKET)


# --- the surfaces, through the app -------------------------------------------------------------------


class RecordingEventLogger:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.exposures: list[dict[str, Any]] = []

    def log_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def log_exposure(self, event: dict[str, Any]) -> None:
        self.exposures.append(event)


def _events_app(**settings: Any) -> tuple[Any, RecordingEventLogger]:
    logger = RecordingEventLogger()
    app = create_app(Settings(rate_limit="off", **settings), es=FakeGateway(), capabilities=NO_PLUGINS,
                     event_logger=logger)
    return app.test_client(), logger


CLICK = {"type": "click", "query_id": "q1", "doc_id": "a", "position": 1}


def test_events_are_closed_when_no_credential_is_configured() -> None:
    client, logger = _events_app()
    response = client.post("/events", json=CLICK)
    assert response.status_code == 403 and "MMSEARCH_EVENTS_TOKEN" in response.get_json()["message"]
    assert "MMSEARCH_EVENT_SECRET" in response.get_json()["message"]
    assert client.post("/events", json=CLICK, headers={"Authorization": "Bearer x"}).status_code == 403
    search = client.get("/search?q=shirt").get_json()
    assert search["query_id"] and "event_ticket" not in search  # no key: no ticket handed out
    assert logger.events == []


def test_events_take_the_bearer_token_and_refuse_others_with_401() -> None:
    client, logger = _events_app(events_token="ev-token-1")
    assert client.post("/events", json=CLICK, headers={"Authorization": "Bearer ev-token-1"}).status_code == 202
    for headers in ({}, {"Authorization": "Bearer ev-token-2"}, {"Authorization": "Basic ZXY="}):
        response = client.post("/events", json=CLICK, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="mmsearch-events"'
        assert "ev-token-1" not in response.get_data(as_text=True)
    # A wrong token is judged before the body: 401, not the body's 400.
    assert client.post("/events", data="{", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert len(logger.events) == 1


def test_the_search_page_flow_search_then_click_with_the_ticket() -> None:
    client, logger = _events_app(event_ticket_secret="a-secret-of-32-characters-......")
    search = client.get("/search?q=shirt").get_json()
    ticket = search["event_ticket"]
    click = {**CLICK, "query_id": search["query_id"], "ticket": ticket}
    assert client.post("/events", json=click).status_code == 202
    assert logger.events == [{k: v for k, v in click.items() if k != "ticket"}]  # the ticket is not stored
    other = client.get("/search?q=dress").get_json()
    batch = [click, {**CLICK, "query_id": other["query_id"], "ticket": other["event_ticket"]}]
    assert client.post("/events", json=batch).status_code == 202
    # A ticket names one query: reused for another query_id, or absent, the whole batch is refused.
    for bad in ([{**click, "query_id": other["query_id"]}], [click, {**CLICK, "query_id": "q9"}],
                [{**click, "ticket": ticket[:-2]}]):
        response = client.post("/events", json=bad)
        assert response.status_code == 401, bad
    assert len(logger.events) == 3
    # Bad bodies stay 400 for ticket holders; an unknown field is still refused.
    assert client.post("/events", json={**click, "extra": 1}).status_code == 400


def test_metrics_are_public_by_default_and_need_the_admin_token_when_not() -> None:
    def app(**kwargs: Any) -> Any:
        return create_app(Settings(rate_limit="off", **kwargs), es=FakeGateway(), capabilities=NO_PLUGINS).test_client()

    assert app().get("/metrics").status_code == 200
    closed = app(metrics_public=False)
    assert closed.get("/metrics").status_code == 403  # no admin token configured: closed, not open
    guarded = app(metrics_public=False, admin_token="adm-1")
    missing = guarded.get("/metrics")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="mmsearch-admin"'
    assert guarded.get("/metrics", headers={"Authorization": "Bearer adm-2"}).status_code == 401
    ok = guarded.get("/metrics", headers={"Authorization": "Bearer adm-1"})
    assert ok.status_code == 200 and b"mmsearch_requests_total" in ok.data
    for path in ("/healthz", "/readyz"):  # the probes stay open
        assert guarded.get(path).status_code in (200, 503)


@pytest.mark.parametrize("ts,expected", [
    ("2026-12-02T13:00:00Z", "2026-12-02T13:00:00+00:00"),
    ("2026-12-02T14:00:00+01:00", "2026-12-02T13:00:00+00:00"),
    ("2026-12-02 13:00", "2026-12-02T13:00:00+00:00"),
    (0, "1970-01-01T00:00:00+00:00"),
])
def test_event_timestamps_are_normalised_to_utc_iso(ts: object, expected: str) -> None:
    from query_service.relevance.http import normalise_ts

    assert normalise_ts(ts) == expected


@pytest.mark.parametrize("ts", ["abc", "2000-02-30T00:00:00Z", "", True, -1, float("nan"), 10**20, "9" * 100,
                                "0001-01-01T00:00:00+01:00", ["2026-01-01"]])
def test_bad_event_timestamps_are_a_400_not_a_lost_event(ts: object) -> None:
    from mmsearch.exceptions import RequestValidationError
    from query_service.relevance.http import validate_event

    with pytest.raises(RequestValidationError):
        validate_event({"type": "click", "query_id": "q", "doc_id": "d", "ts": ts})

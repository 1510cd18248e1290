from __future__ import annotations

import pytest

from mmsearch.exceptions import ClusterAuthError, ClusterError, ClusterUnavailableError, ImageDecodeError, \
    IndexNotFoundError, MMSearchError, PayloadTooLargeError, RequestValidationError
from mmsearch.retries import BULK_BACKOFF, BackoffPolicy, retry_call


def test_backoff_delays_are_bounded_and_count_attempts() -> None:
    policy = BackoffPolicy(max_attempts=5, initial_delay_s=1, max_delay_s=3, jitter=False)
    assert list(policy.delays()) == [1, 2, 3, 3]
    jittered = list(BULK_BACKOFF.delays())
    assert len(jittered) == BULK_BACKOFF.max_attempts - 1
    assert all(0 <= d <= BULK_BACKOFF.max_delay_s for d in jittered)


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(max_attempts=0, initial_delay_s=1, max_delay_s=1)
    with pytest.raises(ValueError):
        BackoffPolicy(max_attempts=2, initial_delay_s=5, max_delay_s=1)


def test_retry_call_retries_only_listed_errors_then_gives_up() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("blip")
        return "ok"

    policy = BackoffPolicy(max_attempts=3, initial_delay_s=0.1, max_delay_s=1, jitter=False)
    assert retry_call(flaky, policy, (ConnectionError,), sleep=sleeps.append) == "ok"
    assert sleeps == [0.1, 0.2]

    def always() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        retry_call(always, policy, (ConnectionError,), sleep=lambda _: None)
    with pytest.raises(KeyError):
        retry_call(lambda: {}["x"], policy, (ConnectionError,), sleep=lambda _: None)


def test_errors_carry_context_and_status() -> None:
    error = PayloadTooLargeError("image too large", limit=10, size=11)
    assert isinstance(error, RequestValidationError) and isinstance(error, MMSearchError)
    assert error.http_status == 413
    assert error.to_dict() == {"error": "PayloadTooLargeError", "message": "image too large", "limit": 10, "size": 11}
    assert MMSearchError("boom", error="detail").to_dict()["error"] == "MMSearchError"
    assert "limit=10" in str(error)
    assert ImageDecodeError("bad").http_status == 400


def test_cluster_errors_have_one_status_each() -> None:
    # The gateway's table (mmsearch.gateway): retry later -> 503, refused -> 502, whoever raises it.
    assert ClusterUnavailableError("down").http_status == 503
    assert isinstance(IndexNotFoundError("no alias"), ClusterUnavailableError)
    assert IndexNotFoundError("no alias").http_status == 503
    assert ClusterAuthError("refused").http_status == ClusterError("rejected").http_status == 502

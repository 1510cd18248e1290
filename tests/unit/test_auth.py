"""The admin bearer token (query_service.auth) and its setting (MMSEARCH_ADMIN_TOKEN)."""

from __future__ import annotations

import pytest

from mmsearch.config import Settings
from query_service.auth import MISSING, NOT_CONFIGURED, WRONG, bearer_token, check_admin


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

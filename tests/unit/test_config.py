from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.config import Settings
from mmsearch.exceptions import ConfigError


def test_defaults_are_valid_and_local() -> None:
    settings = Settings.load(environ={})
    assert settings.es_hosts == ("http://127.0.0.1:9200",)
    assert settings.verify_certs is True
    assert "verify_certs" not in settings.client_kwargs()


def test_env_overrides_file_and_kwargs_override_env(tmp_path: Path) -> None:
    config_file = tmp_path / "settings.json"
    config_file.write_text(json.dumps({"products_alias": "from-file", "request_timeout_s": 5}))
    env = {"MMSEARCH_CONFIG": str(config_file), "MMSEARCH_ALIAS": "from-env",
           "MMSEARCH_ES_HOSTS": "http://a:9200, https://b:9243"}
    settings = Settings.load(environ=env)
    assert settings.products_alias == "from-env"
    assert settings.request_timeout_s == 5
    assert settings.es_hosts == ("http://a:9200", "https://b:9243")
    assert Settings.load(environ=env, products_alias="explicit").products_alias == "explicit"


def test_yaml_file_is_read(tmp_path: Path) -> None:
    config_file = tmp_path / "s.yaml"
    config_file.write_text("es_hosts: [http://x:1, http://y:2]\nevents_index: ev\n")
    settings = Settings.load(environ={}, config_file=config_file)
    assert settings.es_hosts == ("http://x:1", "http://y:2")
    assert settings.events_index == "ev"


def test_api_key_and_basic_auth_reach_the_client() -> None:
    assert Settings(api_key="abc").client_kwargs()["api_key"] == "abc"
    assert Settings(username="u", password="p").client_kwargs()["basic_auth"] == ("u", "p")


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"es_hosts": ("localhost:9200",)}, "es_hosts"),
        ({"es_hosts": ()}, "es_hosts"),
        ({"api_key": "k", "username": "u", "password": "p"}, "api_key"),
        ({"username": "u"}, "username"),
        ({"ca_certs": "/nonexistent/ca.pem"}, "ca_certs"),
        ({"request_timeout_s": 0}, "request_timeout_s"),
        ({"products_alias": "Upper Case"}, "products_alias"),
        ({"events_index": "_bad"}, "events_index"),
    ],
)
def test_invalid_settings_name_the_setting(kwargs: dict, setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(**kwargs)
    assert info.value.context["setting"] == setting


def test_ca_file_with_verification_off_is_contradictory(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert Settings(ca_certs=str(ca)).client_kwargs()["ca_certs"] == str(ca)
    with pytest.raises(ConfigError):
        Settings(ca_certs=str(ca), verify_certs=False)


def test_verify_certs_off_only_when_asked_explicitly() -> None:
    settings = Settings.load(environ={"MMSEARCH_ES_VERIFY_CERTS": "false"})
    assert settings.client_kwargs()["verify_certs"] is False
    with pytest.raises(ConfigError):
        Settings.load(environ={"MMSEARCH_ES_VERIFY_CERTS": "maybe"})


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Settings.load(environ={}, config_file=tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        Settings.load(environ={}, config_file=broken)
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"es_hots": ["http://x:1"]}')
    with pytest.raises(ConfigError) as info:
        Settings.load(environ={}, config_file=unknown)
    assert info.value.context["unknown"] == ["es_hots"]


def test_redacted_hides_secrets() -> None:
    # A value no field name contains ("event_ticket_secret" holds the word "secret").
    shown = Settings(username="u", password="hunter2-pw").redacted()
    assert shown["password"] == "***"
    assert "hunter2-pw" not in json.dumps(shown)


def test_access_settings_come_from_the_environment() -> None:
    settings = Settings.load(environ={
        "MMSEARCH_EVENTS_TOKEN": "ev-tok", "MMSEARCH_EVENT_SECRET": "s" * 16, "MMSEARCH_METRICS_PUBLIC": "false",
        "MMSEARCH_RATE_LIMIT": "10/second", "MMSEARCH_RATE_LIMIT_STORAGE": "redis://:pw@cache:6379",
        "MMSEARCH_TRUSTED_PROXIES": "2"})
    assert (settings.events_token, settings.event_ticket_secret) == ("ev-tok", "s" * 16)
    assert settings.metrics_public is False and settings.trusted_proxies == 2
    assert settings.rate_limit == "10/second" and settings.rate_limit_storage == "redis://:pw@cache:6379"
    defaults = Settings.load(environ={})
    assert defaults.metrics_public is True and defaults.trusted_proxies == 0 and defaults.rate_limit_enabled
    assert defaults.rate_limit_storage == "memory://" and defaults.redacted()["rate_limit_storage"] == "memory://"
    assert not Settings(rate_limit="OFF").rate_limit_enabled


def test_every_secret_is_out_of_repr_and_masked_when_redacted() -> None:
    secrets = {"api_key": "apikey-1", "admin_token": "admin-1", "events_token": "events-1",
               "event_ticket_secret": "ticket-secret-1-16ch", "rate_limit_storage": "redis://:storepw-1@cache:6379"}
    for settings in (Settings(**secrets), Settings(username="u", password="password-1")):
        shown = json.dumps(settings.redacted())
        for value in (*secrets.values(), "password-1", "storepw-1"):
            assert value not in repr(settings) and value not in str(settings) and value not in shown


@pytest.mark.parametrize(("kwargs", "setting"), [
    ({"rate_limit": "50/sec0nd"}, "rate_limit"),
    ({"rate_limit": "lots"}, "rate_limit"),
    ({"rate_limit_storage": "redis"}, "rate_limit_storage"),
    ({"rate_limit_storage": "postgres://db"}, "rate_limit_storage"),
    ({"rate_limit_storage": "async+redis://cache"}, "rate_limit_storage"),  # the sync app needs a sync storage
    ({"trusted_proxies": -1}, "trusted_proxies"),
    ({"trusted_proxies": 11}, "trusted_proxies"),
    ({"event_ticket_secret": "short"}, "event_ticket_secret"),
    ({"events_token": ""}, "events_token"),
    ({"admin_token": "tok\n"}, "admin_token"),
    ({"metrics_public": "yes"}, "metrics_public"),  # only the loader coerces strings
])
def test_invalid_access_settings_fail_at_start_up(kwargs: dict, setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(**kwargs)
    assert info.value.context["setting"] == setting


def test_a_bad_storage_uri_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        Settings(rate_limit_storage="postgres://user:hunter2@db")
    assert "hunter2" not in str(info.value) and "hunter2" not in json.dumps(info.value.to_dict())


@pytest.mark.parametrize(("env", "setting"), [
    ({"MMSEARCH_TRUSTED_PROXIES": "one"}, "trusted_proxies"),
    ({"MMSEARCH_METRICS_PUBLIC": "maybe"}, "metrics_public"),
])
def test_unparsable_environment_values_name_the_setting(env: dict, setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(environ=env)
    assert info.value.context["setting"] == setting


def test_credentials_in_a_host_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        Settings(es_hosts=("http://elastic:hunter2@es:9200",))
    assert info.value.context["setting"] == "es_hosts"
    assert "hunter2" not in str(info.value) and "hunter2" not in json.dumps(info.value.to_dict())

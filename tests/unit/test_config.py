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
    shown = Settings(username="u", password="secret").redacted()
    assert shown["password"] == "***"
    assert "secret" not in json.dumps(shown)

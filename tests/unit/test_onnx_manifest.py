"""Package writing, identity and integrity checks (no ONNX runtime needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mmsearch.exceptions import ModelError
from onnx_models.manifest import identity_of, read_manifest, write_package


def _manifest() -> dict:
    return {"name": "m", "version": "1", "kind": "test", "dim": 4, "normalize": True,
            "text": {"graph": "text_encoder.onnx"}, "image": {"graph": "image_encoder.onnx"},
            "text_template": {"fields": ["title"]}, "created_at": "2024-01-01T00:00:00+00:00"}


def _stage(tmp_path: Path, payload: bytes = b"t") -> Path:
    staging = tmp_path / "staging"
    staging.mkdir(parents=True)
    (staging / "text_encoder.onnx").write_bytes(payload)
    (staging / "image_encoder.onnx").write_bytes(b"i")
    return staging


def test_write_hashes_files_and_identity_is_manifest_sha(tmp_path: Path) -> None:
    out = write_package(_stage(tmp_path), tmp_path / "pkg", _manifest())
    manifest, raw = read_manifest(out)
    assert manifest["files"]["text_encoder.onnx"] == hashlib.sha256(b"t").hexdigest()
    assert identity_of(out) == hashlib.sha256(raw).hexdigest()
    assert not (tmp_path / "staging").exists()


def test_identity_changes_with_weights(tmp_path: Path) -> None:
    a = write_package(_stage(tmp_path / "a", b"one"), tmp_path / "a" / "pkg", _manifest())
    b = write_package(_stage(tmp_path / "b", b"two"), tmp_path / "b" / "pkg", _manifest())
    assert identity_of(a) != identity_of(b)


def test_overwrite_replaces_whole_package(tmp_path: Path) -> None:
    out = write_package(_stage(tmp_path / "x"), tmp_path / "pkg", _manifest())
    (out / "stale.txt").write_text("old")
    write_package(_stage(tmp_path / "y"), tmp_path / "pkg", {**_manifest(), "version": "2"})
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "manifest.json").read_text())["version"] == "2"


def test_missing_graph_and_keys_refused(tmp_path: Path) -> None:
    staging = _stage(tmp_path)
    (staging / "image_encoder.onnx").unlink()
    with pytest.raises(ModelError, match="missing a graph"):
        write_package(staging, tmp_path / "pkg", _manifest())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelError, match="missing keys"):
        read_manifest(bad)
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_manifest(bad)

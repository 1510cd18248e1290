"""The model package on disk: files + ``manifest.json`` (no torch).

The manifest records what the model is (dims, preprocessing, text template),
where it came from (source weights, training data and params, metrics) and the
sha256 of every file. Its own sha256 is the model identity the indexer stores
in the index ``_meta``: any change to weights, preprocessing or template gives
a new identity, so an index can never silently mix two models.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmsearch.exceptions import ModelError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
TEXT_GRAPH = "text_encoder.onnx"
IMAGE_GRAPH = "image_encoder.onnx"
TOKENIZER_DIR = "tokenizer"
REQUIRED_KEYS = ("format_version", "name", "version", "kind", "dim", "normalize", "text", "image",
                 "text_template", "files", "created_at")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Canonical serialisation: sorted keys, so equal content gives an equal identity."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def identity_of_bytes(manifest_raw: bytes) -> str:
    """The model identity: sha256 of the manifest file's bytes. The one definition; every reader calls it."""
    return hashlib.sha256(manifest_raw).hexdigest()


def identity_of(model_dir: Path) -> str:
    return identity_of_bytes((Path(model_dir) / MANIFEST).read_bytes())


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def write_package(staging_dir: Path, out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Hash every file in ``staging_dir``, write the manifest, then move it to ``out_dir`` atomically.

    Readers (the indexer, a running service) either see the old complete package
    or the new one, never a half-written directory.
    """
    staging_dir, out_dir = Path(staging_dir), Path(out_dir)
    files = {str(p.relative_to(staging_dir)): sha256_file(p)
             for p in sorted(staging_dir.rglob("*")) if p.is_file() and p.name != MANIFEST}
    for key in ("text", "image"):
        graph = manifest.get(key, {}).get("graph")
        if graph not in files:
            raise ModelError("package is missing a graph", graph=graph, files=sorted(files))
    manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files,
                "created_at": manifest.get("created_at") or utc_now()}
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ModelError("manifest is missing keys", missing=missing)
    (staging_dir / MANIFEST).write_bytes(manifest_bytes(manifest))
    os.chmod(staging_dir, 0o755)  # mkdtemp makes 0700; packages are shared read-only artefacts
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if out_dir.exists():
        backup = out_dir.with_name(out_dir.name + f".old-{os.getpid()}")
        os.replace(out_dir, backup)
    os.replace(staging_dir, out_dir)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return out_dir


def read_manifest(model_dir: Path, verify_files: bool = True) -> tuple[dict[str, Any], bytes]:
    """Parse and validate a package's manifest; optionally check every file's sha256."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelError("not a model package: manifest.json missing", model_dir=str(model_dir))
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelError("manifest.json is not valid JSON", model_dir=str(model_dir), detail=str(exc)) from exc
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ModelError("manifest is missing keys", model_dir=str(model_dir), missing=missing)
    if manifest["format_version"] > FORMAT_VERSION:
        raise ModelError("model package is newer than this runtime", format_version=manifest["format_version"],
                         supported=FORMAT_VERSION)
    if verify_files:
        for name, expected in manifest["files"].items():
            file_path = model_dir / name
            if not file_path.is_file():
                raise ModelError("model file missing", model_dir=str(model_dir), file=name)
            actual = sha256_file(file_path)
            if actual != expected:
                raise ModelError("model file does not match its manifest sha256 (corrupt or modified)",
                                 model_dir=str(model_dir), file=name, expected=expected, actual=actual)
    return manifest, raw

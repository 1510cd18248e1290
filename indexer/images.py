"""Image references in a catalog: local path, base64 (or data: URI), or http(s) URL.

Loading returns bytes plus their sha256 (for the content hash); decoding uses
``onnx_models.images.safe_decode`` so the indexer enforces the same format
allow-list and decompression-bomb cap as the query service.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.fetch import fetch_image_url
from mmsearch.exceptions import ImageDecodeError

_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s_-]+$")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
#: A bare string this long made only of base64 characters is a payload, not a file name.
_MIN_BARE_BASE64 = 256


def classify_image_ref(ref: str, kind: str = "auto") -> str:
    """'path', 'base64' or 'url' for one reference (``kind`` forces it unless 'auto')."""
    if kind != "auto":
        return kind
    if ref.startswith("data:"):
        return "base64"
    match = _SCHEME.match(ref)
    if match and len(match.group(1)) > 1:  # "C:" is a drive letter, not a scheme
        return "url"
    if len(ref) >= _MIN_BARE_BASE64 and _BASE64.match(ref) and "." not in ref[-6:]:
        return "base64"
    return "path"


def decode_base64_ref(ref: str) -> bytes:
    payload = ref
    if ref.startswith("data:"):
        header, _, payload = ref.partition(",")
        if ";base64" not in header:
            raise ImageDecodeError("data: URI is not base64-encoded", header=header[:60])
    try:
        compact = "".join(payload.split())
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError("image is not valid base64", detail=str(exc)) from exc


def resolve_local_path(ref: str, root: Path) -> Path:
    """The file ``ref`` names under ``root``; refuse anything (.., absolute, symlink) that lands outside."""
    root = Path(root).resolve()
    candidate = Path(ref)
    # realpath follows symlinks, so a link inside the catalog pointing at /etc is caught too.
    resolved = Path(os.path.realpath(candidate if candidate.is_absolute() else root / candidate))
    if resolved != root and root not in resolved.parents:
        raise ImageDecodeError("image path escapes the catalog directory", path=ref[:200], root=str(root))
    return resolved


@dataclass(frozen=True)
class ImageSource:
    """How the pipeline turns a reference into bytes (built from the CatalogConfig)."""

    root: Path
    kind: str = "auto"
    allow_url_fetch: bool = False
    max_bytes: int = 16 * 1024 * 1024
    fetcher: Callable[..., bytes] = fetch_image_url

    def load(self, ref: str) -> bytes:
        kind = classify_image_ref(ref, self.kind)
        if kind == "url":
            if not self.allow_url_fetch:
                raise ImageDecodeError("image URL fetching is disabled (enable allow_url_fetch)", url=ref[:200])
            return self.fetcher(ref, max_bytes=self.max_bytes)
        if kind == "base64":
            data = decode_base64_ref(ref)
        else:
            path = resolve_local_path(ref, self.root)
            try:
                size = path.stat().st_size
                if size > self.max_bytes:
                    raise ImageDecodeError("image file exceeds the byte cap", path=ref[:200], bytes=size,
                                           max_bytes=self.max_bytes)
                data = path.read_bytes()
            except FileNotFoundError as exc:
                raise ImageDecodeError("image file not found", path=ref[:200]) from exc
            except IsADirectoryError as exc:
                raise ImageDecodeError("image path is a directory", path=ref[:200]) from exc
            except PermissionError as exc:
                raise ImageDecodeError("image file not readable", path=ref[:200]) from exc
        if len(data) > self.max_bytes:
            raise ImageDecodeError("image exceeds the byte cap", bytes=len(data), max_bytes=self.max_bytes)
        return data


@dataclass
class LoadedImage:
    """Result of loading + decoding one product image in a worker thread."""

    digest: str | None = None
    image: Any = None  # PIL.Image.Image when decoding succeeded
    error: str | None = None


def load_and_decode(ref: str | None, inline: bytes | None, source: ImageSource,
                    decode: Callable[[bytes], Any] | None = None,
                    skip: Callable[[str], bool] | None = None) -> LoadedImage:
    """Bytes -> digest -> (unless ``skip(digest)``) decoded image. Never raises; errors are data.

    ``skip`` lets a resumed build avoid decoding images of documents it will not re-index.
    """
    if inline is not None:
        data = inline
    elif ref:
        try:
            data = source.load(str(ref))
        except ImageDecodeError as exc:
            return LoadedImage(digest=_ref_digest(str(ref)), error=str(exc))
    else:
        return LoadedImage()
    digest = hashlib.sha256(data).hexdigest()
    if skip is not None and skip(digest):
        return LoadedImage(digest=digest)
    if decode is None:
        from onnx_models.images import safe_decode as decode
    try:
        return LoadedImage(digest=digest, image=decode(data))
    except ImageDecodeError as exc:
        return LoadedImage(digest=digest, error=str(exc))
    except Exception as exc:  # a decoder bug must not kill the run; the record is dead-lettered
        return LoadedImage(digest=digest, error=f"image decoder failed: {type(exc).__name__}: {exc}")


def _ref_digest(ref: str) -> str:
    # An unloadable image still contributes to the content hash (by reference), so a
    # resumed build retries it once the file appears.
    return "unloaded:" + hashlib.sha256(ref.encode("utf-8")).hexdigest()

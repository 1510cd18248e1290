"""Test doubles for the indexer: a tiny deterministic stand-in for ``onnx_models.runtime.Encoder``.

For unit tests of pure pipeline logic only; live acceptance tests use the real encoder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from mmsearch.exceptions import ImageDecodeError


class FakeEncoder:
    name = "fake-encoder"

    def __init__(self, dim: int = 16, identity: str = "f" * 64) -> None:
        self.dim = dim
        self.identity = identity
        self.text_calls: list[list[str]] = []
        self.image_calls = 0

    def product_text(self, record: Mapping[str, Any]) -> str:
        return " ".join(str(record.get(k, "")) for k in ("title", "gender", "article_type") if record.get(k))

    def _unit(self, seed: bytes) -> np.ndarray:
        raw = np.frombuffer(hashlib.sha256(seed).digest() * 8, dtype=np.uint8)[: self.dim].astype(np.float32) + 1
        return raw / np.linalg.norm(raw)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.text_calls.append(list(texts))
        return np.stack([self._unit(t.encode()) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_images(self, images: list[Any]) -> np.ndarray:
        self.image_calls += 1
        out = []
        for image in images:
            if image == "bad":
                raise ImageDecodeError("fake corrupt image")
            out.append(self._unit(repr(getattr(image, "size", image)).encode()))
        return np.stack(out)

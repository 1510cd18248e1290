"""Query encoding in the engine: text and photo at the same time, one deadline for both."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from PIL import Image

from mmsearch.config import Settings
from query_service.engine import EngineOptions, SearchEngine
from query_service.ranking import RankingConfig, SearchRequest

BOTH = RankingConfig(legs={"text_text": 1.0, "image_image": 1.0})


class RendezvousEncoder:
    """Each modality's encode waits until the other one has started: only concurrent encoding finishes."""

    identity = "fake"

    def __init__(self, block_s: float = 5.0) -> None:
        self.text_started, self.image_started = threading.Event(), threading.Event()
        self.block_s = block_s

    def load_image(self, data: Any) -> Image.Image:
        return Image.new("RGB", (4, 4))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.text_started.set()
        if not self.image_started.wait(self.block_s):
            raise RuntimeError("the photo was not being encoded at the same time")
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))

    def encode_images(self, images: list[Any]) -> np.ndarray:
        self.image_started.set()
        if not self.text_started.wait(self.block_s):
            raise RuntimeError("the text was not being encoded at the same time")
        return np.array([[0.0, 1.0]], dtype=np.float32)


class _NoES:
    def options(self, **_: Any) -> _NoES:
        return self


def _engine(encoder: Any, timeout_s: float = 2.0) -> SearchEngine:
    return SearchEngine(_NoES(), encoder, Settings(products_alias="p"), None, EngineOptions(encoder_timeout_s=timeout_s))


def test_text_and_photo_are_encoded_concurrently() -> None:
    degraded: list[str] = []
    vectors = _engine(RendezvousEncoder()).encode(SearchRequest(text="red", image=b"x"), BOTH, degraded)
    assert degraded == []
    assert vectors["text"].tolist() == [1.0, 0.0] and vectors["image"].tolist() == [0.0, 1.0]


class StuckEncoder(RendezvousEncoder):
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.block_s)
        return np.zeros((len(texts), 2), dtype=np.float32)

    def encode_images(self, images: list[Any]) -> np.ndarray:
        time.sleep(self.block_s)
        return np.zeros((1, 2), dtype=np.float32)


def test_one_deadline_covers_both_modalities() -> None:
    degraded: list[str] = []
    engine = _engine(StuckEncoder(block_s=3.0), timeout_s=0.5)
    start = time.perf_counter()
    assert engine.encode(SearchRequest(text="red", image=b"x"), BOTH, degraded) == {}
    elapsed = time.perf_counter() - start
    # Each modality had its own 0.5 s before (1.0 s in all); now both share one deadline.
    assert elapsed < 0.9, elapsed
    assert degraded == ["text_vector: encoder timed out after 0.5s", "image_vector: encoder timed out after 0.5s"]
    engine.close()


def test_no_model_names_each_wanted_modality() -> None:
    degraded: list[str] = []
    assert _engine(None).encode(SearchRequest(text="red", image=b"x"), BOTH, degraded) == {}
    assert degraded == ["text_vector: no model loaded", "image_vector: no model loaded"]

"""Disk cache of frozen-backbone features (torch), so head training takes minutes.

One store per (backbone, preprocessing) key; rows are keyed by a string
(product id for images, a hash of the text for texts). Asking for keys that
are missing computes just those and appends them, so a test subset and the full
catalog share the work.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from onnx_models.backbones import ColourConfig, ColourHistogram, MeanPooledText
from onnx_models.images import ImageSpec, preprocess
from onnx_models.text import TextTokenizer


def config_key(**parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class FeatureStore:
    def __init__(self, root: Path, key: str) -> None:
        self.path = Path(root) / f"{key}.npz"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _load(self) -> tuple[list[str], np.ndarray | None]:
        if not self.path.is_file():
            return [], None
        with np.load(self.path, allow_pickle=False) as data:
            return [str(k) for k in data["keys"]], data["values"]

    def _merge_and_save(self, new_keys: list[str], new_values: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Add rows to what is on disk *now*, under a lock.

        Why re-read: two processes (a training run and a test-model build, say) may fill
        the same store at once; writing back the rows read at the start would silently
        drop the other's rows, which then have to be recomputed (measured: an image store
        lost half its 8,083 rows that way).
        """
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            known, values = self._load()
            present = set(known)
            fresh = [i for i, key in enumerate(new_keys) if key not in present]
            known = known + [new_keys[i] for i in fresh]
            rows = new_values[fresh].astype(values.dtype if values is not None else new_values.dtype)
            values = rows if values is None else np.concatenate([values, rows])
            tmp = self.path.with_suffix(f".tmp{os.getpid()}.npz")
            np.savez(tmp, keys=np.asarray(known), values=values)
            os.replace(tmp, self.path)
        return known, values

    def get(self, keys: Sequence[str], compute: Callable[[list[int]], np.ndarray], batch: int = 256,
            desc: str = "features", dtype: type = np.float32) -> np.ndarray:
        """Rows for ``keys``; ``compute(indices)`` returns features for ``keys[i]`` of missing indices.

        ``dtype`` float16 halves the size of the large boundary-activation stores
        (partial unfreezing); the values are upcast per batch when training.
        """
        known, values = self._load()
        index = {k: i for i, k in enumerate(known)}
        missing: list[int] = []
        seen: set[str] = set()
        for i, key in enumerate(keys):
            if key not in index and key not in seen:  # duplicates in one request are computed once
                missing.append(i)
                seen.add(key)
        if missing:
            chunks = []
            for start in tqdm(range(0, len(missing), batch), desc=desc, unit="batch", disable=None):
                chunks.append(compute(missing[start:start + batch]).astype(dtype))
            known, values = self._merge_and_save([keys[i] for i in missing], np.concatenate(chunks))
            index = {k: i for i, k in enumerate(known)}
        assert values is not None
        return values[[index[k] for k in keys]]


@torch.inference_mode()
def text_features(model: MeanPooledText, tokenizer: TextTokenizer, texts: Sequence[str], store: FeatureStore,
                  batch: int = 128) -> np.ndarray:
    keys = [text_key(t) for t in texts]

    def compute(indices: list[int]) -> np.ndarray:
        feeds = tokenizer([texts[i] for i in indices])
        return model(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])).numpy()

    return store.get(keys, compute, batch=batch, desc="text features")


def load_images(paths: Sequence[Path], flip: bool) -> list[Image.Image]:
    images = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            images.append(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image)
    return images


@torch.inference_mode()
def image_features(backbone: torch.nn.Module, spec: ImageSpec, ids: Sequence[str], paths: Sequence[Path],
                   store: FeatureStore, flip: bool = False, batch: int = 64) -> np.ndarray:
    def compute(indices: list[int]) -> np.ndarray:
        pixels = preprocess(load_images([paths[i] for i in indices], flip), spec)
        return backbone(torch.from_numpy(pixels)).numpy()

    return store.get(list(ids), compute, batch=batch, desc="image features" + (" (flipped)" if flip else ""))


@torch.inference_mode()
def colour_features(cfg: ColourConfig, spec: ImageSpec, ids: Sequence[str], paths: Sequence[Path],
                    store: FeatureStore, batch: int = 128) -> np.ndarray:
    module = ColourHistogram(cfg, spec.mean, spec.std).eval()

    def compute(indices: list[int]) -> np.ndarray:
        pixels = preprocess(load_images([paths[i] for i in indices], False), spec)
        return module(torch.from_numpy(pixels)).numpy()

    return store.get(list(ids), compute, batch=batch, desc="colour features")

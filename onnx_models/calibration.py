"""Calibration photos for static int8 quantisation of the image tower (no torch).

Static quantisation fixes every activation's int8 range ahead of time from what the
graph sees on real inputs, so the calibration photos must go through exactly the
package's own decoding and preprocessing (``onnx_models.images``, the manifest's
``ImageSpec``); anything else would calibrate ranges for inputs serving never produces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.catalog import CATALOG_HELP, PRODUCTS_FILE, resolve_catalog
from mmsearch.exceptions import ConfigError, ImageDecodeError, ModelError
from onnx_models.catalog import SplitConfig, image_records, split_records
from onnx_models.images import ImageSpec, preprocess, safe_decode

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: Fewer photos than this give ranges from a handful of products: refuse rather than guess.
MIN_CALIBRATION_IMAGES = 4


def _spread_key(name: str) -> str:
    # Hash order: a deterministic sample spread over the whole set instead of whatever
    # sorts first (file and id order can group similar products together).
    return hashlib.sha256(name.encode()).hexdigest()


@dataclass(frozen=True)
class CalibrationSet:
    """Which photos calibrate a package, recorded in its manifest for reproducibility."""

    source: Path
    origin: str  # "catalog train split" or "directory"
    files: tuple[Path, ...]

    def digest(self) -> str:
        """sha256 over the photos' names and bytes: equal digest, equal calibration input."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"source": str(self.source), "origin": self.origin, "images": len(self.files),
                "sha256": self.digest()}


def find_calibration_images(source: Path, count: int, manifest: Mapping[str, Any]) -> CalibrationSet:
    """``count`` photos from a catalog (its *train* split) or from a plain image directory.

    A catalog is a directory with products.jsonl or a catalog file, as for every
    ``--catalog`` (docs/indexing.md "Catalog location"). From a catalog only
    training photos are used, so the held-out photos that measure the int8
    model's agreement with fp32 never shaped its ranges.
    """
    source = Path(source)
    if count < MIN_CALIBRATION_IMAGES:
        raise ModelError("too few calibration images requested", count=count, minimum=MIN_CALIBRATION_IMAGES)
    if not (source.is_dir() or source.is_file()):
        raise ModelError("calibration images must be a directory of photos or a catalog (" + CATALOG_HELP + ")",
                         path=str(source), exists=source.exists())
    if source.is_file() or (source / PRODUCTS_FILE).is_file():
        try:
            location = resolve_catalog(source)
            records = split_records(image_records(location), SplitConfig.of_manifest(dict(manifest)))["train"]
        except ConfigError as exc:
            raise ModelError("cannot read the calibration catalog", path=str(source), detail=str(exc)) from exc
        files = [location.root_dir / str(r["image"]) for r in sorted(records, key=lambda r: _spread_key(str(r["id"])))]
        origin = "catalog train split"
    else:
        found = [p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        files = sorted(found, key=lambda p: _spread_key(str(p.relative_to(source))))
        origin = "directory"
    if len(files) < MIN_CALIBRATION_IMAGES:
        raise ModelError("not enough calibration images", path=str(source), origin=origin, found=len(files),
                         minimum=MIN_CALIBRATION_IMAGES, suffixes=list(IMAGE_SUFFIXES))
    return CalibrationSet(source=source, origin=origin, files=tuple(files[:count]))


def load_pixels(files: Sequence[Path], spec: ImageSpec) -> np.ndarray:
    """All photos decoded and preprocessed up front, so a corrupt file fails before calibration starts."""
    images = []
    for path in files:
        try:
            images.append(safe_decode(Path(path).read_bytes()))
        except (ImageDecodeError, OSError) as exc:
            raise ModelError("calibration image cannot be used", file=str(path), detail=str(exc)) from exc
    return preprocess(images, spec)


class ImageCalibrationReader:
    """onnxruntime ``CalibrationDataReader``: batches of ``pixel_values`` for the image graph.

    Duck-typed (``get_next`` / ``rewind``) so importing this module does not need
    ``onnxruntime.quantization`` (and with it the ``onnx`` package).
    """

    def __init__(self, pixels: np.ndarray, input_name: str, batch_size: int = 8) -> None:
        if pixels.ndim != 4 or len(pixels) == 0:
            raise ModelError("calibration pixels must be a non-empty (N, 3, H, W) array", shape=list(pixels.shape))
        self.input_name = input_name
        self._batches = [pixels[i:i + batch_size] for i in range(0, len(pixels), batch_size)]
        self._next, self._end = 0, len(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._end:
            return None
        batch = self._batches[self._next]
        self._next += 1
        return {self.input_name: batch}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        # onnxruntime's own helpers (e.g. qdq_loss_debug) iterate instead of calling get_next.
        return iter(self.get_next, None)

    def rewind(self) -> None:
        self._next, self._end = 0, len(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Batches ``[start, end)`` only: onnxruntime's strided calibration reads the set chunk by chunk."""
        self._next, self._end = start_index, min(end_index, len(self._batches))

    def __len__(self) -> int:
        return len(self._batches)

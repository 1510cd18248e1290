"""Held-out retrieval evaluation of a model package through the onnxruntime Encoder (no torch)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from indexer.catalog import CatalogLocation, resolve_catalog
from onnx_models.catalog import SplitConfig, image_records, split_records
from onnx_models.metrics import retrieval_report
from onnx_models.runtime import Encoder


def split_config_of(encoder: Encoder) -> SplitConfig:
    """The split the model was trained with, so "held-out" means unseen by *this* model."""
    return SplitConfig.of_manifest(encoder.manifest)


def evaluate_package(encoder: Encoder, catalog: Path | CatalogLocation, split: str = "test",
                     limit: int | None = None) -> dict[str, Any]:
    """``catalog``: a catalog directory or file (docs/indexing.md "Catalog location")."""
    location = resolve_catalog(catalog)
    records = split_records(image_records(location), split_config_of(encoder))[split]
    if limit is not None:
        records = records[:limit]
    started = time.monotonic()
    text_emb = encoder.encode_texts([encoder.product_text(r) for r in records])
    image_emb = encoder.encode_images([(location.root_dir / r["image"]).read_bytes() for r in records])
    seconds = time.monotonic() - started
    report = retrieval_report(text_emb, image_emb, [r["article_type"] for r in records],
                              [r.get("base_colour") or "" for r in records])
    return {"model": encoder.name, "identity": encoder.identity, "split": split,
            "gallery_size": len(records), "encode_seconds": round(seconds, 1),
            "metrics": {k: round(v, 4) for k, v in report.items() if k != "gallery_size"},
            "embeddings": (text_emb, image_emb)}


def cosine_agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = (a * b).sum(1)
    return {"mean": float(cos.mean()), "min": float(cos.min())}

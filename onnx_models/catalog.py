"""Catalog loading and the deterministic train/val/test split (no torch).

The split hashes the product id with a seed, so it is stable across runs and
machines, independent of file order, and a product never moves between splits
when the catalog grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.catalog import CatalogLocation, iter_product_records, resolve_catalog


@dataclass(frozen=True)
class SplitConfig:
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 13

    def __post_init__(self) -> None:
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1):
            raise ValueError("fractions must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave room for training data")

    @classmethod
    def of_manifest(cls, manifest: dict[str, Any]) -> SplitConfig:
        """The split a package was trained with, so "held-out" means unseen by *that* model."""
        split = ((manifest.get("training") or {}).get("data") or {}).get("split") or {}
        return cls(val_fraction=float(split.get("val_fraction", 0.1)),
                   test_fraction=float(split.get("test_fraction", 0.2)), seed=int(split.get("seed", 13)))


def split_of(product_id: str, cfg: SplitConfig) -> str:
    bucket = int.from_bytes(hashlib.sha256(f"{cfg.seed}:{product_id}".encode()).digest()[:8], "big") / 2**64
    if bucket < cfg.test_fraction:
        return "test"
    if bucket < cfg.test_fraction + cfg.val_fraction:
        return "val"
    return "train"


def iter_records(catalog: Path | CatalogLocation) -> Iterator[dict[str, Any]]:
    """Catalog records with a string ``id`` (a directory or file, docs/indexing.md "Catalog location").

    Bad lines follow the indexer's rule (skipped, counted, reported on stderr);
    records without an id cannot be split, so they are left out here too.
    """
    for record in iter_product_records(resolve_catalog(catalog)):
        if record.get("id") is not None:
            record["id"] = str(record["id"])
            yield record


def image_records(catalog: Path | CatalogLocation) -> list[dict[str, Any]]:
    """Products that have a photo on disk (under the catalog's image root): the (text, image) training pairs."""
    location = resolve_catalog(catalog)
    root = location.root_dir
    return [r for r in iter_records(location) if r.get("image") and (root / str(r["image"])).is_file()]


def split_records(records: list[dict[str, Any]], cfg: SplitConfig) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for record in records:
        out[split_of(record["id"], cfg)].append(record)
    return out

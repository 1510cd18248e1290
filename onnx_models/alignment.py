"""End-to-end: catalog -> cached features -> trained heads -> ONNX towers -> model package (torch)."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from onnx_models.backbones import (LITE_SIZES, ColourHistogram, ImageFeatures, MeanPooledText, file_digest,
                                   lite_weights_path, load_lite, minilm_dir)
from onnx_models.catalog import image_records, split_records
from onnx_models.export import export_onnx
from onnx_models.features import FeatureStore, colour_features, config_key, image_features, text_features
from onnx_models.heads import Tower
from onnx_models.images import ImageSpec
from onnx_models.manifest import IMAGE_GRAPH, TEXT_GRAPH, TOKENIZER_DIR, write_package
from onnx_models.metrics import mean_pairwise_cosine, retrieval_report
from onnx_models.text import TextTokenizer
from onnx_models.train import Features, TrainConfig, TrainedHeads, embed, train_heads

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@dataclass
class Backbones:
    text: MeanPooledText
    tokenizer: TextTokenizer
    image: torch.nn.Module
    spec: ImageSpec
    text_id: str
    image_id: str


def load_backbones(cfg: TrainConfig) -> Backbones:
    text_dir = minilm_dir()
    weights = lite_weights_path(cfg.image_arch)
    return Backbones(
        text=MeanPooledText(text_dir).eval(),
        tokenizer=TextTokenizer(text_dir / "tokenizer.json", max_length=cfg.max_length, pad_token="[PAD]"),
        image=load_lite(cfg.image_arch),
        spec=ImageSpec(size=LITE_SIZES[cfg.image_arch], resize_mode=cfg.resize_mode),
        # Identify weights by content so a cache never serves features of other weights.
        text_id=f"all-MiniLM-L6-v2@sha256:{file_digest(text_dir / 'model.safetensors')[:16]}",
        image_id=f"{cfg.image_arch}@sha256:{file_digest(weights)[:16]}",
    )


def label_vocab(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Class indices for the auxiliary losses, from the training split only."""
    return {name: {v: i for i, v in enumerate(sorted({str(r.get(field) or "") for r in records} - {""}))}
            for name, field in (("type", "article_type"), ("colour", "base_colour"))}


def split_features(records: list[dict[str, Any]], catalog_dir: Path, bb: Backbones, cfg: TrainConfig,
                   cache_dir: Path, with_flip: bool, vocab: dict[str, dict[str, int]] | None = None) -> Features:
    texts = [cfg.template.render(r) for r in records]
    ids = [r["id"] for r in records]
    paths = [Path(catalog_dir) / r["image"] for r in records]
    text = text_features(bb.text, bb.tokenizer, texts, FeatureStore(cache_dir, config_key(
        kind="text", model=bb.text_id, max_length=cfg.max_length)))
    image_key = dict(kind="image", model=bb.image_id, spec=bb.spec.to_dict(), catalog=str(catalog_dir))
    image = image_features(bb.image, bb.spec, ids, paths, FeatureStore(cache_dir, config_key(**image_key)))
    branches: tuple[int, ...] = (image.shape[1],)
    flipped = None
    if with_flip:
        flipped = image_features(bb.image, bb.spec, ids, paths,
                                 FeatureStore(cache_dir, config_key(**image_key, flip=True)), flip=True)
    if cfg.colour is not None:
        colour = colour_features(cfg.colour, bb.spec, ids, paths, FeatureStore(cache_dir, config_key(
            kind="colour", cfg=cfg.colour.to_dict(), spec=bb.spec.to_dict(), catalog=str(catalog_dir))))
        branches = (image.shape[1], colour.shape[1])
        image = np.concatenate([image, colour], axis=1)
        if flipped is not None:
            flipped = np.concatenate([flipped, colour], axis=1)  # a histogram is flip-invariant
    labels = None
    if vocab:
        labels = {name: np.array([mapping.get(str(r.get(field) or ""), -100) for r in records], dtype=np.int64)
                  for (name, mapping), field in zip(vocab.items(), ("article_type", "base_colour"))}
    return Features(text=text, image=image, image_flipped=flipped, image_branches=branches, labels=labels)


def _subset(records: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    if limit is None or len(records) <= limit:
        return records
    rng = np.random.default_rng(seed)
    return [records[i] for i in sorted(rng.choice(len(records), limit, replace=False))]


@dataclass
class TrainResult:
    heads: TrainedHeads
    test_metrics: dict[str, float]
    sizes: dict[str, int]
    seconds: float


def train_alignment(catalog_dir: Path, cfg: TrainConfig, cache_dir: Path,
                    backbones: Backbones | None = None) -> tuple[TrainResult, Backbones]:
    """Features for train/val/test, train the heads, and score the held-out test split."""
    started = time.monotonic()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    splits = split_records(image_records(catalog_dir), cfg.split)
    train = _subset(splits["train"], cfg.max_train_pairs, cfg.seed)
    val = _subset(splits["val"], cfg.max_eval_pairs, cfg.seed)
    test = _subset(splits["test"], cfg.max_eval_pairs, cfg.seed)
    bb = backbones or load_backbones(cfg)
    feats = {
        "train": split_features(train, catalog_dir, bb, cfg, cache_dir, with_flip=cfg.flip_augment,
                                vocab=label_vocab(train) if cfg.aux_weight > 0 or cfg.soft_positive > 0
                                else None),
        "val": split_features(val, catalog_dir, bb, cfg, cache_dir, with_flip=False),
    }
    heads = train_heads(feats["train"], feats["val"], cfg)
    test_feats = split_features(test, catalog_dir, bb, cfg, cache_dir, with_flip=False)
    text_emb, image_emb = embed(heads.text_head, test_feats.text), embed(heads.image_head, test_feats.image)
    metrics = retrieval_report(text_emb, image_emb, [r["article_type"] for r in test],
                               [r.get("base_colour") or "" for r in test])
    # Collapse diagnostics: positive-only losses drive these towards 1.
    metrics["text_mean_pairwise_cos"] = mean_pairwise_cosine(text_emb)
    metrics["image_mean_pairwise_cos"] = mean_pairwise_cosine(image_emb)
    # Same held-out queries against a catalog-sized gallery: every product photo we have
    # (the seen train/val products act as distractors). Closer to the prototype's 9.6k gallery.
    others = train + val
    full = {name: feats[name] for name in ("train", "val")}
    text_all = np.concatenate([text_emb] + [embed(heads.text_head, full[s].text) for s in ("train", "val")])
    image_all = np.concatenate([image_emb] + [embed(heads.image_head, full[s].image) for s in ("train", "val")])
    everyone = test + others
    big = retrieval_report(text_all, image_all, [r["article_type"] for r in everyone],
                           [r.get("base_colour") or "" for r in everyone], n_queries=len(test))
    metrics.update({f"full_gallery_{k}": v for k, v in big.items()})
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    return TrainResult(heads, metrics, sizes, time.monotonic() - started), bb


def export_package(result: TrainResult, bb: Backbones, cfg: TrainConfig, out_dir: Path,
                   catalog_dir: Path) -> Path:
    """Assemble backbone + head per tower, export both to ONNX and write the package atomically."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        text_tower = Tower(bb.text, result.heads.text_head).eval()
        sample = bb.tokenizer(["a red cotton shirt for men", "shoes"])
        export_onnx(text_tower, (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"])),
                    staging / TEXT_GRAPH, ["input_ids", "attention_mask"],
                    {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}})
        colour = ColourHistogram(cfg.colour, bb.spec.mean, bb.spec.std) if cfg.colour else None
        image_tower = Tower(ImageFeatures(bb.image, colour), result.heads.image_head).eval()
        pixels = torch.zeros(2, 3, bb.spec.size, bb.spec.size)
        export_onnx(image_tower, (pixels,), staging / IMAGE_GRAPH, ["pixel_values"], {"pixel_values": {0: "batch"}})
        tok_dir = staging / TOKENIZER_DIR
        tok_dir.mkdir()
        for name in TOKENIZER_FILES:
            source = minilm_dir() / name
            if source.is_file():
                shutil.copy2(source, tok_dir / name)
        manifest = {
            "name": cfg.name,
            "version": cfg.version,
            "kind": "aligned-two-tower",
            "dim": cfg.dim,
            "normalize": True,
            "text": {"graph": TEXT_GRAPH, "tokenizer": f"{TOKENIZER_DIR}/tokenizer.json", "max_length": cfg.max_length,
                     "pad_token": "[PAD]", "inputs": ["input_ids", "attention_mask"], "pooling": "mean"},
            "image": {"graph": IMAGE_GRAPH, **bb.spec.to_dict(), "input": "pixel_values",
                      "colour_histogram": cfg.colour.to_dict() if cfg.colour else None},
            "text_template": cfg.template.to_dict(),
            "source_weights": {"text": bb.text_id, "image": bb.image_id,
                               "heads": "trained here (symmetric InfoNCE)" if cfg.loss == "infonce" else cfg.loss},
            "training": {
                "data": {"catalog": Path(catalog_dir).name, "pairs": result.sizes,
                         "split": {"val_fraction": cfg.split.val_fraction, "test_fraction": cfg.split.test_fraction,
                                   "seed": cfg.split.seed, "by": "sha256(seed:product id)"}},
                "params": cfg.to_dict(),
                "best_epoch": result.heads.best_epoch,
                "epochs_run": len(result.heads.history),
                "temperature": result.heads.temperature,
                "seconds": round(result.seconds, 1),
            },
            "metrics": {"held_out_test": result.test_metrics,
                        "computed_with": "cached backbone features + torch heads on the test split"},
        }
        return write_package(staging, out_dir, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build(catalog_dir: Path, out_dir: Path, cfg: TrainConfig, cache_dir: Path) -> Path:
    result, bb = train_alignment(catalog_dir, cfg, cache_dir)
    return export_package(result, bb, cfg, out_dir, catalog_dir)


__all__ = ["Backbones", "TrainResult", "build", "export_package", "load_backbones", "train_alignment"]

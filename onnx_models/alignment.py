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

from indexer.catalog import CatalogLocation, resolve_catalog
from onnx_models.backbones import (LITE_SIZES, ColourHistogram, ImageFeatures, MeanPooledText, file_digest,
                                   lite_weights_path, load_lite, minilm_dir)
from onnx_models.catalog import image_records, split_records
from onnx_models.export import export_onnx
from onnx_models.features import (FeatureStore, colour_features, config_key, image_features, load_images, text_features,
                                  text_key)
from onnx_models.heads import AttributeTower, Tower
from onnx_models.images import ImageSpec
from onnx_models.manifest import IMAGE_GRAPH, TEXT_GRAPH, TOKENIZER_DIR, write_package
from onnx_models.metrics import mean_pairwise_cosine, retrieval_report
from onnx_models.text import TextTokenizer
from onnx_models.train import Features, TowerInputs, TrainConfig, TrainedHeads, train_heads
from onnx_models.unfreeze import (ImageTail, TextTail, boundary_shape, image_boundary, split_text_boundary,
                                  text_boundary)

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


#: Auxiliary classifier name -> the catalog field it predicts (the photo attributes of the image graph).
CLASSIFIED_FIELDS = {"type": "article_type", "colour": "base_colour"}


def label_vocab(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Class indices for the auxiliary losses, from the training split only."""
    return {name: {v: i for i, v in enumerate(sorted({str(r.get(field) or "") for r in records} - {""}))}
            for name, field in CLASSIFIED_FIELDS.items()}


def classifier_accuracy(heads: TrainedHeads, image_emb: np.ndarray, records: list[dict[str, Any]],
                        vocab: dict[str, dict[str, int]]) -> dict[str, float]:
    """Top-1 and top-3 accuracy of each exported photo classifier on held-out photos (known labels only)."""
    out: dict[str, float] = {}
    for name, classifier in heads.classifiers.items():
        field_name = CLASSIFIED_FIELDS[name]
        target = np.array([vocab[name].get(str(r.get(field_name) or ""), -1) for r in records])
        with torch.no_grad():
            logits = classifier(torch.from_numpy(image_emb)).numpy()
        top3 = np.argsort(-logits, axis=1)[:, :3]
        known = target >= 0
        out[f"photo_{field_name}_top1"] = float((top3[known, 0] == target[known]).mean()) if known.any() else 0.0
        out[f"photo_{field_name}_top3"] = float((top3[known] == target[known, None]).any(axis=1).mean()) \
            if known.any() else 0.0
    return out


def _text_inputs(texts: list[str], bb: Backbones, cfg: TrainConfig, cache_dir: Path) -> dict[str, np.ndarray]:
    if not cfg.unfreeze_text_layers:
        return {"text": text_features(bb.text, bb.tokenizer, texts, FeatureStore(cache_dir, config_key(
            kind="text", model=bb.text_id, max_length=cfg.max_length)))}
    store = FeatureStore(cache_dir, config_key(kind="text_boundary", model=bb.text_id, max_length=cfg.max_length,
                                               layers=cfg.unfreeze_text_layers))
    rows = store.get([text_key(t) for t in texts],
                     lambda idx: text_boundary(bb.text, bb.tokenizer, [texts[i] for i in idx], cfg.unfreeze_text_layers),
                     batch=128, desc="text boundary states", dtype=np.float16)
    hidden, mask = split_text_boundary(rows, cfg.max_length)
    return {"text": hidden, "text_mask": mask}


def _image_inputs(ids: list[str], paths: list[Path], bb: Backbones, cfg: TrainConfig, cache_dir: Path,
                  catalog_dir: Path, flip: bool) -> np.ndarray:
    image_key = dict(kind="image", model=bb.image_id, spec=bb.spec.to_dict(), catalog=str(catalog_dir))
    extra = {"flip": True} if flip else {}
    if not cfg.unfreeze_image_stages:
        return image_features(bb.image, bb.spec, ids, paths, FeatureStore(cache_dir, config_key(**image_key, **extra)),
                              flip=flip)
    stages = cfg.unfreeze_image_stages
    store = FeatureStore(cache_dir, config_key(**image_key, **extra, boundary_stages=stages))
    rows = store.get(ids, lambda idx: image_boundary(bb.image, load_images([paths[i] for i in idx], flip), bb.spec,
                                                     stages),
                     batch=64, desc="image boundary maps" + (" (flipped)" if flip else ""), dtype=np.float16)
    return rows.reshape(len(ids), *boundary_shape(bb.image, bb.spec, stages))


def split_features(records: list[dict[str, Any]], catalog_dir: Path, bb: Backbones, cfg: TrainConfig,
                   cache_dir: Path, with_flip: bool, vocab: dict[str, dict[str, int]] | None = None) -> Features:
    texts = [cfg.template.render(r) for r in records]
    ids = [r["id"] for r in records]
    paths = [Path(catalog_dir) / r["image"] for r in records]
    text = _text_inputs(texts, bb, cfg, cache_dir)
    image = _image_inputs(ids, paths, bb, cfg, cache_dir, catalog_dir, flip=False)
    flipped = _image_inputs(ids, paths, bb, cfg, cache_dir, catalog_dir, flip=True) if with_flip else None
    pooled_dim = int(bb.image.num_features) if image.ndim == 4 else image.shape[1]
    branches: tuple[int, ...] = (pooled_dim,)
    colour = None
    if cfg.colour is not None:
        colour = colour_features(cfg.colour, bb.spec, ids, paths, FeatureStore(cache_dir, config_key(
            kind="colour", cfg=cfg.colour.to_dict(), spec=bb.spec.to_dict(), catalog=str(catalog_dir))))
        branches = (pooled_dim, colour.shape[1])
        if image.ndim == 2:  # pooled features: the colour columns ride along (a histogram is flip-invariant)
            image = np.concatenate([image, colour], axis=1)
            if flipped is not None:
                flipped = np.concatenate([flipped, colour], axis=1)
            colour = None
    labels = None
    if vocab:
        labels = {name: np.array([mapping.get(str(r.get(field) or ""), -100) for r in records], dtype=np.int64)
                  for (name, mapping), field in zip(vocab.items(), ("article_type", "base_colour"))}
    return Features(text=text["text"], text_mask=text.get("text_mask"), image=image, image_flipped=flipped,
                    image_branches=branches, labels=labels, colour=colour)


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
    labels: dict[str, dict[str, int]] | None = None  # classifier name -> label -> class index (training split)


def train_alignment(catalog: Path | CatalogLocation, cfg: TrainConfig, cache_dir: Path,
                    backbones: Backbones | None = None) -> tuple[TrainResult, Backbones]:
    """Features for train/val/test, train the heads, and score the held-out test split.

    ``catalog``: a catalog directory or file (docs/indexing.md "Catalog location").
    """
    started = time.monotonic()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    location = resolve_catalog(catalog)
    # The image root as given (unresolved) keys the feature cache, as the catalog dir did before.
    catalog_dir = location.root_dir
    splits = split_records(image_records(location), cfg.split)
    train = _subset(splits["train"], cfg.max_train_pairs, cfg.seed)
    val = _subset(splits["val"], cfg.max_eval_pairs, cfg.seed)
    test = _subset(splits["test"], cfg.max_eval_pairs, cfg.seed)
    bb = backbones or load_backbones(cfg)
    vocab = label_vocab(train) if cfg.aux_weight > 0 or cfg.soft_positive > 0 else None
    feats = {
        "train": split_features(train, catalog_dir, bb, cfg, cache_dir, with_flip=cfg.flip_augment, vocab=vocab),
        "val": split_features(val, catalog_dir, bb, cfg, cache_dir, with_flip=False),
    }
    text_tail = TextTail(bb.text, cfg.unfreeze_text_layers) if cfg.unfreeze_text_layers else None
    image_tail = ImageTail(bb.image, cfg.unfreeze_image_stages) if cfg.unfreeze_image_stages else None
    heads = train_heads(feats["train"], feats["val"], cfg, text_tail=text_tail, image_tail=image_tail)
    test_feats = split_features(test, catalog_dir, bb, cfg, cache_dir, with_flip=False)

    def embed_both(split: Features) -> tuple[np.ndarray, np.ndarray]:
        inputs = TowerInputs(split, heads.text_tail, heads.image_tail)
        return inputs.embed(heads.text_head, "text"), inputs.embed(heads.image_head, "image")

    text_emb, image_emb = embed_both(test_feats)
    metrics = retrieval_report(text_emb, image_emb, [r["article_type"] for r in test],
                               [r.get("base_colour") or "" for r in test])
    # Collapse diagnostics: positive-only losses drive these towards 1.
    metrics["text_mean_pairwise_cos"] = mean_pairwise_cosine(text_emb)
    metrics["image_mean_pairwise_cos"] = mean_pairwise_cosine(image_emb)
    if vocab and heads.classifiers:
        metrics.update(classifier_accuracy(heads, image_emb, test, vocab))
    # Same held-out queries against a catalog-sized gallery: every product photo we have
    # (the seen train/val products act as distractors). Closer to the prototype's 9.6k gallery.
    others = train + val
    full = {name: feats[name] for name in ("train", "val")}
    others_emb = [embed_both(full[s]) for s in ("train", "val")]
    text_all = np.concatenate([text_emb] + [t for t, _ in others_emb])
    image_all = np.concatenate([image_emb] + [i for _, i in others_emb])
    everyone = test + others
    big = retrieval_report(text_all, image_all, [r["article_type"] for r in everyone],
                           [r.get("base_colour") or "" for r in everyone], n_queries=len(test))
    metrics.update({f"full_gallery_{k}": v for k, v in big.items()})
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    return TrainResult(heads, metrics, sizes, time.monotonic() - started, labels=vocab), bb


def export_package(result: TrainResult, bb: Backbones, cfg: TrainConfig, out_dir: Path,
                   catalog: Path | CatalogLocation) -> Path:
    """Assemble backbone + head per tower, export both to ONNX and write the package atomically."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        # Partially unfrozen: the trained tail goes back into a copy of the backbone.
        text_backbone = result.heads.text_tail.merged_into(bb.text) if result.heads.text_tail else bb.text
        image_backbone = result.heads.image_tail.merged_into(bb.image) if result.heads.image_tail else bb.image
        text_tower = Tower(text_backbone, result.heads.text_head).eval()
        sample = bb.tokenizer(["a red cotton shirt for men", "shoes"])
        export_onnx(text_tower, (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"])),
                    staging / TEXT_GRAPH, ["input_ids", "attention_mask"],
                    {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}})
        colour = ColourHistogram(cfg.colour, bb.spec.mean, bb.spec.std) if cfg.colour else None
        image_tower: torch.nn.Module = Tower(ImageFeatures(image_backbone, colour), result.heads.image_head).eval()
        photo_attributes = photo_attribute_outputs(result)
        if photo_attributes:
            image_tower = AttributeTower(image_tower, {CLASSIFIED_FIELDS[name]: result.heads.classifiers[name]
                                                       for name in result.heads.classifiers}).eval()
        pixels = torch.zeros(2, 3, bb.spec.size, bb.spec.size)
        export_onnx(image_tower, (pixels,), staging / IMAGE_GRAPH, ["pixel_values"], {"pixel_values": {0: "batch"}},
                    extra_outputs=[spec["output"] for spec in photo_attributes.values()])
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
                      "colour_histogram": cfg.colour.to_dict() if cfg.colour else None,
                      **({"attributes": photo_attributes} if photo_attributes else {})},
            "text_template": cfg.template.to_dict(),
            "source_weights": {"text": bb.text_id, "image": bb.image_id,
                               "unfrozen": {"text_layers": cfg.unfreeze_text_layers,
                                            "image_stages": cfg.unfreeze_image_stages},
                               "heads": "trained here (symmetric InfoNCE)" if cfg.loss == "infonce" else cfg.loss},
            "training": {
                "data": {"catalog": resolve_catalog(catalog).name, "pairs": result.sizes,
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


def photo_attribute_outputs(result: TrainResult) -> dict[str, dict[str, Any]]:
    """The manifest's ``image.attributes``: per catalog field, its graph output and class labels in order."""
    if not result.heads.classifiers or not result.labels:
        return {}
    out = {}
    for name in result.heads.classifiers:  # the AttributeTower's output order
        mapping = result.labels[name]
        out[CLASSIFIED_FIELDS[name]] = {"output": f"{CLASSIFIED_FIELDS[name]}_probs",
                                        "labels": sorted(mapping, key=mapping.__getitem__)}
    return out


def build(catalog: Path | CatalogLocation, out_dir: Path, cfg: TrainConfig, cache_dir: Path) -> Path:
    location = resolve_catalog(catalog)
    result, bb = train_alignment(location, cfg, cache_dir)
    return export_package(result, bb, cfg, out_dir, location)


__all__ = ["Backbones", "TrainResult", "build", "export_package", "load_backbones", "train_alignment"]

"""``mmsearch models ...``: train, export, inspect, evaluate and quantise model packages.

torch is imported lazily inside the training/export handlers only, so ``info``,
``eval`` and ``quantize`` work on a serving install (onnxruntime only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from indexer.catalog import CATALOG_HELP, resolve_catalog
from mmsearch.exceptions import ConfigError, ModelError

DEFAULT_CACHE = Path(".state") / "models" / "_features"


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def register(subparsers: Any) -> None:
    models = subparsers.add_parser("models", help="encoder model packages (train, export, inspect, evaluate)")
    sub = models.add_subparsers(dest="models_command", required=True)

    train = sub.add_parser("train-alignment", help="train MiniLM+EfficientNet-Lite projection heads (InfoNCE)")
    train.add_argument("--catalog", type=Path, required=True, help=CATALOG_HELP)
    train.add_argument("--out", type=Path, required=True, help="model package directory to write")
    train.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="backbone feature cache")
    train.add_argument("--name", default="mmsearch-aligned")
    train.add_argument("--version", default="1")
    train.add_argument("--fields", default=None, help="comma-separated product fields for the text template")
    train.add_argument("--loss", choices=("infonce", "cosine", "mse"), default="infonce")
    train.add_argument("--image-arch", default="efficientnet_lite0",
                       choices=("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"))
    train.add_argument("--resize-mode", default="pad", choices=("pad", "squash", "center_crop"))
    train.add_argument("--no-colour", action="store_true", help="drop the in-graph colour histogram branch")
    train.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    train.add_argument("--aux-weight", type=float, default=1.0,
                       help="auxiliary type/colour classification loss weight (0 = off)")
    train.add_argument("--soft-positive", type=float, default=0.0,
                       help="InfoNCE target mass shared with same type+colour items (trades exact-item recall "
                            "for type+colour precision)")
    train.add_argument("--max-eval-pairs", type=int, default=None)
    train.add_argument("--head", default="mlp", choices=("linear", "mlp"))
    train.add_argument("--dim", type=int, default=256)
    train.add_argument("--epochs", type=int, default=60)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=13)
    train.add_argument("--max-train-pairs", type=int, default=None)
    train.add_argument("--unfreeze-text-layers", type=int, default=0,
                       help="train the last N MiniLM layers too (cached token states below them)")
    train.add_argument("--unfreeze-image-stages", type=int, default=0,
                       help="train the last N EfficientNet stages + conv head too (cached maps below them)")
    train.add_argument("--backbone-lr", type=float, default=1e-4, help="learning rate of the unfrozen layers")
    train.set_defaults(handler=_train)

    export = sub.add_parser("export-clip", help="export a Hugging Face CLIP/SigLIP model to two ONNX towers")
    export.add_argument("--model", required=True, help="from_pretrained id or local directory")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--kind", default="auto", choices=("auto", "clip", "siglip"))
    export.add_argument("--revision", default=None)
    export.add_argument("--max-length", type=int, default=None)
    export.set_defaults(handler=_export_clip)

    info = sub.add_parser("info", help="print a package's manifest summary and identity")
    info.add_argument("model_dir", type=Path)
    info.add_argument("--no-verify", action="store_true", help="skip sha256 checks of the files")
    info.set_defaults(handler=_info)

    evaluate = sub.add_parser("eval", help="held-out retrieval metrics through onnxruntime")
    evaluate.add_argument("model_dir", type=Path)
    evaluate.add_argument("--catalog", type=Path, required=True, help=CATALOG_HELP)
    evaluate.add_argument("--split", default="test", choices=("train", "val", "test"))
    evaluate.add_argument("--limit", type=int, default=None)
    evaluate.add_argument("--threads", type=int, default=None)
    evaluate.add_argument("--compare", type=Path, default=None,
                          help="second package (e.g. its int8 version): report cosine agreement too")
    evaluate.set_defaults(handler=_eval)

    quantize = sub.add_parser("quantize", help="int8 quantisation of a package (dynamic; --image-static: "
                                                "calibrated static QDQ for the image tower)")
    quantize.add_argument("model_dir", type=Path)
    quantize.add_argument("--out", type=Path, default=None,
                          help="default: <model_dir>-int8 (<model_dir>-int8-static with --image-static)")
    quantize.add_argument("--towers", default="text,image")
    quantize.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales (less accurate)")
    quantize.add_argument("--image-conv", action="store_true",
                          help="also quantise Conv in the image tower (measured slower and less accurate on CPU)")
    quantize.add_argument("--image-static", action="store_true",
                          help="static QDQ int8 for the image backbone (stem, colour histogram and head stay fp32), "
                               "calibrated on real photos")
    quantize.add_argument("--calibration-images", type=Path, default=None,
                          help="photo directory, or a catalog (directory with products.jsonl, or catalog file; "
                                "its train split is used)")
    quantize.add_argument("--calibration-count", type=int, default=None, help="photos to calibrate on (default 128)")
    quantize.set_defaults(handler=_quantize)


def _train(args: argparse.Namespace) -> int:
    location = resolve_catalog(args.catalog)  # before torch loads: a wrong path fails in a second
    from onnx_models.alignment import build
    from onnx_models.backbones import ColourConfig
    from onnx_models.text import TextTemplate
    from onnx_models.train import TrainConfig

    try:
        template = TextTemplate(fields=tuple(f.strip() for f in args.fields.split(","))) if args.fields \
            else TextTemplate()
        cfg = TrainConfig(name=args.name, version=args.version, template=template, loss=args.loss,
                          image_arch=args.image_arch, resize_mode=args.resize_mode,
                          colour=None if args.no_colour else ColourConfig(), flip_augment=not args.no_flip,
                          head=args.head, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed, max_train_pairs=args.max_train_pairs, aux_weight=args.aux_weight,
                          soft_positive=args.soft_positive, max_eval_pairs=args.max_eval_pairs,
                          unfreeze_text_layers=args.unfreeze_text_layers,
                          unfreeze_image_stages=args.unfreeze_image_stages, backbone_lr=args.backbone_lr)
    except ValueError as exc:
        raise ConfigError(f"invalid training option: {exc}") from exc
    out = build(location, args.out, cfg, cache_dir=args.cache_dir)
    return _info(argparse.Namespace(model_dir=out, no_verify=True))


def _export_clip(args: argparse.Namespace) -> int:
    from onnx_models.clip_export import export_clip

    try:
        out = export_clip(args.model, args.out, kind=args.kind, revision=args.revision, max_length=args.max_length)
    except OSError as exc:  # from_pretrained: unknown id, no hub, missing files
        raise ModelError("cannot load the model (offline? wrong id or path?)", model=args.model,
                         detail=str(exc)) from exc
    return _info(argparse.Namespace(model_dir=out, no_verify=True))


def _info(args: argparse.Namespace) -> int:
    from onnx_models.manifest import identity_of, read_manifest

    manifest, _ = read_manifest(args.model_dir, verify_files=not args.no_verify)
    _print({"model_dir": str(args.model_dir), "identity": identity_of(args.model_dir), "name": manifest["name"],
            "version": manifest["version"], "kind": manifest["kind"], "dim": manifest["dim"],
            "text_template": manifest["text_template"], "image": manifest["image"],
            "source_weights": manifest.get("source_weights"), "quantization": manifest.get("quantization"),
            "metrics": manifest.get("metrics"), "files": manifest["files"], "created_at": manifest["created_at"],
            "verified": not args.no_verify})
    return 0


def _eval(args: argparse.Namespace) -> int:
    from onnx_models.evaluate import cosine_agreement, evaluate_package
    from onnx_models.runtime import Encoder

    location = resolve_catalog(args.catalog)
    encoder = Encoder.load(args.model_dir, intra_op_threads=args.threads)
    result = evaluate_package(encoder, location, split=args.split, limit=args.limit)
    text_emb, image_emb = result.pop("embeddings")
    if args.compare:
        other = evaluate_package(Encoder.load(args.compare, intra_op_threads=args.threads), location,
                                 split=args.split, limit=args.limit)
        other_text, other_image = other.pop("embeddings")
        result["compare"] = {**other, "cosine_text": cosine_agreement(text_emb, other_text),
                             "cosine_image": cosine_agreement(image_emb, other_image)}
    _print(result)
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from onnx_models.quantize import DEFAULT_CALIBRATION_COUNT, quantize_package

    if not args.image_static and (args.calibration_images is not None or args.calibration_count is not None):
        raise ConfigError("--calibration-images/--calibration-count only apply with --image-static")
    if args.image_static and args.calibration_images is None:
        raise ConfigError("--image-static needs --calibration-images (a photo directory or a catalog)")
    suffix = "-int8-static" if args.image_static else "-int8"
    out = args.out or args.model_dir.with_name(args.model_dir.name + suffix)
    quantize_package(args.model_dir, out, towers=tuple(t.strip() for t in args.towers.split(",") if t.strip()),
                     per_channel=not args.per_tensor, image_conv=args.image_conv, image_static=args.image_static,
                     calibration_images=args.calibration_images,
                     calibration_count=DEFAULT_CALIBRATION_COUNT if args.calibration_count is None
                     else args.calibration_count)
    return _info(argparse.Namespace(model_dir=out, no_verify=True))

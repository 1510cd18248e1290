"""Encoder throughput: PyTorch eager vs onnxruntime fp32 vs onnxruntime int8 (a script, not a test).

    python benchmarks/encoders.py --model .state/models/dev [--catalog "$MMSEARCH_CATALOG_DIR"]

--catalog is a catalog directory (with products.jsonl) or catalog file
(docs/indexing.md, "Catalog location"); without it, the shared catalog as
``make demo`` finds it (MMSEARCH_CATALOG_DIR, else ../shared/data/fashion-products).

Texts are real catalog product texts, images real catalog JPEG bytes; every
variant includes its own tokenisation / decoding + preprocessing, so the
numbers are what a caller sees. PyTorch eager runs the same backbones with
heads of the same shape (head weights do not change speed; parity with the
ONNX graphs is asserted in tests/unit/test_onnx_parity.py). Reports medians
over repeated calls and the int8-vs-fp32 cosine agreement.

"ORT int8 static (image)" is the image tower with static QDQ int8
(``mmsearch models quantize --image-static``), calibrated on photos of the
model's *train* split; its agreement is measured on held-out test photos.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.catalog import CATALOG_HELP, catalog_or_default  # noqa: E402
from mmsearch.exceptions import ConfigError  # noqa: E402
from onnx_models.catalog import image_records, split_records  # noqa: E402
from onnx_models.evaluate import split_config_of  # noqa: E402
from onnx_models.runtime import Encoder  # noqa: E402


def torch_encoders(encoder: Encoder, threads: int) -> tuple[Callable[[list[str]], Any], Callable[[list[bytes]], Any]]:
    import torch

    from onnx_models.alignment import load_backbones
    from onnx_models.backbones import ColourConfig, ColourHistogram, ImageFeatures
    from onnx_models.heads import ProjectionHead, Tower
    from onnx_models.images import preprocess
    from onnx_models.train import TrainConfig

    torch.set_num_threads(threads)
    colour_cfg = encoder.manifest["image"].get("colour_histogram")
    colour = ColourConfig(**colour_cfg) if colour_cfg else None
    cfg = TrainConfig(image_arch=encoder.manifest["training"]["params"]["image_arch"], colour=colour,
                      max_length=int(encoder.manifest["text"]["max_length"]), dim=encoder.dim)
    bb = load_backbones(cfg)
    text_tower = Tower(bb.text, ProjectionHead(bb.text.dim, cfg.dim)).eval()
    image_in = 1280 + (colour.dim if colour else 0)
    image_tower = Tower(ImageFeatures(bb.image, ColourHistogram(colour, bb.spec.mean, bb.spec.std) if colour
                                      else None), ProjectionHead(image_in, cfg.dim)).eval()

    def texts(batch: list[str]) -> Any:
        feeds = bb.tokenizer(batch)
        with torch.inference_mode():
            return text_tower(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))

    def images(batch: list[bytes]) -> Any:
        pixels = preprocess([encoder.load_image(b) for b in batch], bb.spec)
        with torch.inference_mode():
            return image_tower(torch.from_numpy(pixels))

    return texts, images


def ensure_quantized(model_dir: Path, out_dir: Path, **options: Any) -> Path:
    """``out_dir`` quantised from *this* ``model_dir``: built when missing or made from another parent."""
    from onnx_models.manifest import identity_of
    from onnx_models.quantize import quantize_package

    if (out_dir / "manifest.json").is_file():
        parent = (json.loads((out_dir / "manifest.json").read_text()).get("quantization") or {}).get("parent_identity")
        if parent == identity_of(model_dir):
            return out_dir
    return quantize_package(model_dir, out_dir, **options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path(".state/models/dev"))
    parser.add_argument("--int8", type=Path, default=None, help="int8 package (default: <model>-int8, built if missing)")
    parser.add_argument("--int8-static", type=Path, default=None,
                        help="static-int8 image package (default: <model>-int8-static, built if missing)")
    parser.add_argument("--calibration-count", type=int, default=128,
                        help="train-split photos to calibrate a missing static package on")
    parser.add_argument("--agreement-images", type=int, default=256, help="held-out photos for the cosine check")
    parser.add_argument("--catalog", type=Path, default=None, help=CATALOG_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats-b1", type=int, default=40)
    parser.add_argument("--repeats-b32", type=int, default=6)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON result here too")
    args = parser.parse_args()
    try:
        catalog = catalog_or_default(args.catalog)
    except ConfigError as exc:
        parser.error(str(exc))

    load_start = os.getloadavg()
    int8_dir = ensure_quantized(args.model, args.int8 or args.model.with_name(args.model.name + "-int8"))
    static_dir = args.int8_static or args.model.with_name(args.model.name + "-int8-static")
    static_dir = ensure_quantized(args.model, static_dir, image_static=True, calibration_images=catalog.source,
                                  calibration_count=args.calibration_count)
    fp32 = Encoder.load(args.model, intra_op_threads=args.threads, providers=["CPUExecutionProvider"])
    int8 = Encoder.load(int8_dir, intra_op_threads=args.threads, providers=["CPUExecutionProvider"])
    static = Encoder.load(static_dir, intra_op_threads=args.threads, providers=["CPUExecutionProvider"])
    held_out = split_records(image_records(catalog), split_config_of(fp32))["test"]
    records = held_out[:max(256, args.agreement_images)]
    texts = [fp32.product_text(r) for r in records]
    images = [(catalog.root_dir / r["image"]).read_bytes() for r in records]

    # A variant without a text function (None) is timed on images only.
    variants: dict[str, tuple[Callable[[list[str]], Any] | None, Callable[[list[bytes]], Any]]] = {}
    if not args.no_torch:
        import torch

        text_fn, image_fn = torch_encoders(fp32, args.threads)
        # PyTorch at 1 thread and at --threads: on a shared, oversubscribed machine torch's
        # OpenMP pool can be *much* slower with 2 threads than with 1 (measured: 457 ms vs
        # 11 ms for one text); the speedup below is against the faster of the two.
        for n in sorted({1, args.threads}):
            def pinned(fn: Callable[[Any], Any], n: int = n) -> Callable[[Any], Any]:
                def run(batch: Any) -> Any:
                    torch.set_num_threads(n)
                    return fn(batch)
                return run
            variants[f"pytorch_eager_{n}t"] = (pinned(text_fn), pinned(image_fn))
    variants["ort_fp32"] = (fp32.encode_texts, fp32.encode_images)
    variants["ort_int8"] = (int8.encode_texts, int8.encode_images)
    # Its text tower is the same dynamic int8 graph as ort_int8's; timing it twice adds nothing.
    variants["ort_int8_static_image"] = (None, static.encode_images)

    # Interleave variants call by call: on a shared machine, load changes over minutes, and
    # timing one variant after another would hand one of them all the contention.
    pools = {"text": texts, "image": images}
    plan = [("text_b1", "text", 1, args.repeats_b1), ("text_b32", "text", 32, args.repeats_b32),
            ("image_b1", "image", 1, max(10, args.repeats_b1 // 2)), ("image_b32", "image", 32, args.repeats_b32)]
    results: dict[str, Any] = {name: {} for name in variants}
    for key, kind, batch, repeats in plan:
        fns = {name: pair[0] if kind == "text" else pair[1] for name, pair in variants.items()}
        active = {name: fn for name, fn in fns.items() if fn is not None}
        rates: dict[str, list[float]] = {name: [] for name in active}
        for fn in active.values():  # warm-up: first calls allocate and pick kernels
            for _ in range(2):
                fn(pools[kind][:batch])
        for rep in range(repeats):
            start_row = (rep * batch) % (len(pools[kind]) - batch)
            chunk = pools[kind][start_row:start_row + batch]
            for name, fn in active.items():
                started = time.perf_counter()
                fn(chunk)
                rates[name].append(batch / (time.perf_counter() - started))
        for name in active:
            results[name][key] = {"median_per_s": statistics.median(rates[name]), "min_per_s": min(rates[name]),
                                  "max_per_s": max(rates[name]), "repeats": repeats}
        print(key, {n: round(results[n][key]["median_per_s"], 1) for n in active}, file=sys.stderr)

    image_sample = images[:args.agreement_images]
    fp32_images = fp32.encode_images(image_sample)
    agreement = {}
    for kind, a, b in (("text", fp32.encode_texts(texts), int8.encode_texts(texts)),
                       ("image", fp32_images, int8.encode_images(image_sample)),
                       ("image_static", fp32_images, static.encode_images(image_sample))):
        cos = (a * b).sum(1)
        agreement[kind] = {"mean": float(cos.mean()), "min": float(cos.min()),
                           "p05": float(np.percentile(cos, 5)), "n": len(cos)}
    import onnxruntime

    report = {
        "model": fp32.name, "identity": fp32.identity, "int8_identity": int8.identity,
        "int8_static_identity": static.identity,
        "conditions": {"device": "CPU", "threads": args.threads, "cpu_count": os.cpu_count(),
                       "machine": platform.machine(), "python": platform.python_version(),
                       "onnxruntime": onnxruntime.__version__, "loadavg_at_start": load_start,
                       "loadavg_at_end": os.getloadavg(), "interleaved": True,
                       "int8": int8.manifest.get("quantization"),
                       "int8_static": static.manifest.get("quantization")},
        "throughput": results, "int8_vs_fp32_cosine": agreement,
    }
    torch_variants = [v for v in results if v.startswith("pytorch_eager")]
    if torch_variants:
        keys = list(results["ort_fp32"])
        best = {k: max(results[v][k]["median_per_s"] for v in torch_variants) for k in keys}
        report["speedup_vs_best_pytorch"] = {
            variant: {k: results[variant][k]["median_per_s"] / best[k] for k in keys if k in results[variant]}
            for variant in ("ort_fp32", "ort_int8", "ort_int8_static_image")}
    report["int8_static_image_vs_fp32"] = {
        k: results["ort_int8_static_image"][k]["median_per_s"] / results["ort_fp32"][k]["median_per_s"]
        for k in results["ort_int8_static_image"]}
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""int8 quantisation of a model package (onnxruntime only, no torch).

Dynamic int8 for MatMul/Gemm by default; ``image_static`` switches the image tower to
static QDQ int8 calibrated on real photos (``onnx_models.quantize_static``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.exceptions import ModelError
from onnx_models.calibration import CalibrationSet, find_calibration_images, load_pixels
from onnx_models.images import ImageSpec
from onnx_models.manifest import read_manifest, write_package
from onnx_models.quantize_static import StaticConfig, quantize_image_static

TOWERS = ("text", "image")
DEFAULT_CALIBRATION_COUNT = 128


def quantize_package(model_dir: Path, out_dir: Path, towers: tuple[str, ...] = TOWERS,
                     per_channel: bool = True, image_conv: bool = False, image_static: bool = False,
                     calibration_images: Path | None = None, calibration_count: int = DEFAULT_CALIBRATION_COUNT,
                     static: StaticConfig | None = None) -> Path:
    """int8 weights for MatMul/Gemm, activations quantised at run time.

    ``image_static``: the image tower instead gets static QDQ int8 (Conv included),
    calibrated on ``calibration_count`` photos from ``calibration_images`` (a photo
    directory, or a catalog whose *train* split is used).

    Dynamic quantisation needs no calibration data; the accuracy cost is
    measured (``models eval --compare`` / ``benchmarks/encoders.py``), not assumed.
    Why these defaults (measured on the EfficientNet-Lite0 tower, 32 catalog photos):
    dynamic int8 Conv (ConvInteger) dropped mean cosine to fp32 to 0.80 and ran
    3-8x *slower* on CPU, so the image tower only quantises its MatMul/Gemm head
    unless ``image_conv``. Per-channel weights lift MiniLM's cosine from 0.95 to 0.99.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    unknown = [t for t in towers if t not in TOWERS]
    if unknown:
        raise ModelError("unknown tower", towers=unknown, known=list(TOWERS))
    manifest, raw = read_manifest(Path(model_dir))
    if manifest.get("quantization"):
        raise ModelError("package is already quantised", model_dir=str(model_dir))
    if image_static and "image" not in towers:
        raise ModelError("--image-static needs the image tower in --towers", towers=list(towers))
    if image_static and image_conv:
        raise ModelError("--image-conv (dynamic Conv) and --image-static exclude each other")
    calibration: CalibrationSet | None = None
    pixels: np.ndarray | None = None
    if image_static:
        if calibration_images is None:
            raise ModelError("static quantisation needs calibration images (--calibration-images)")
        # Decode and check every calibration photo before any graph work starts.
        calibration = find_calibration_images(Path(calibration_images), calibration_count, manifest)
        pixels = load_pixels(calibration.files, ImageSpec.from_dict(manifest["image"]))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        (staging / "manifest.json").unlink()
        done: dict[str, Any] = {}
        for tower in towers:
            graph = manifest[tower]["graph"]
            source = Path(model_dir) / graph
            if tower == "image" and calibration is not None and pixels is not None:
                done[tower] = {**quantize_image_static(source, staging / graph, pixels, static or StaticConfig(),
                                                       work_dir=staging),
                               "calibration": calibration.describe()}
                continue
            prepared = staging / f"{graph}.prep"
            try:
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            except Exception:  # noqa: BLE001 - pre-processing is an optimisation, not a requirement
                shutil.copy2(source, prepared)
            op_types = ["MatMul", "Gemm"] + (["Conv"] if tower == "image" and image_conv else [])
            quantize_dynamic(str(prepared), str(staging / graph), weight_type=QuantType.QInt8,
                             per_channel=per_channel, op_types_to_quantize=op_types)
            prepared.unlink()
            done[tower] = {"method": "dynamic", "op_types": op_types, "weight_type": "int8",
                           "per_channel": per_channel}
        methods = sorted({"onnxruntime static QDQ" if d["method"] == "static_qdq" else "onnxruntime dynamic"
                          for d in done.values()})
        quantized = {**manifest, "name": f"{manifest['name']}-int8", "created_at": None,
                     "quantization": {"method": " + ".join(methods), "towers": done,
                                      "parent_identity": hashlib.sha256(raw).hexdigest()}}
        quantized["metrics"] = {"parent": manifest.get("metrics", {})}
        return write_package(staging, out_dir, json.loads(json.dumps(quantized)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)

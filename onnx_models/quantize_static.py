"""Static (calibrated) QDQ int8 quantisation of the image tower (onnxruntime only, no torch).

Dynamic int8 computes activation ranges at run time, which for convolutions means
ConvInteger kernels plus a range scan of every feature map: slower than fp32 on
CPU and inaccurate. Static QDQ fixes the ranges from calibration photos, and
onnxruntime then fuses DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv
(int8 kernels). The defaults were chosen by measurement (``StaticConfig``); results in
``docs/benchmarks.md`` (Encoders).
"""

from __future__ import annotations

import shutil
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.exceptions import ModelError
from onnx_models.calibration import ImageCalibrationReader

CALIBRATE_METHODS = ("minmax", "entropy", "percentile")
QUANT_TYPES = ("int8", "uint8")


@dataclass(frozen=True)
class StaticConfig:
    """Defaults chosen by measurement (mean / min cosine to fp32, 128 calibration photos).

    Full-catalog dev model, 96 *validation* photos (the test photos are kept for
    reporting): this config 0.995 / 0.987; every Conv int8 0.990 / 0.973; first 2 or 5
    Convs fp32 0.994 / 0.996 (5 was slower at batch 32). On the test model or dev test
    photos, all Convs int8: int8 activations no more accurate and slower at batch 32
    (u8 activations x s8 weights is onnxruntime's fast x86 path); per-tensor weights
    0.818 / 0.479 (depthwise convolutions need per-channel scales); only
    Conv/MatMul/Gemm quantised 0.882 / 0.595; percentile or entropy calibration within
    0.001 of min-max and 3-5x slower to calibrate. Keeping the colour branch and the
    head in fp32 changed the mean by < 0.001 at no measurable cost; nothing is gained by
    quantising them.
    """

    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    calibrate_method: str = "minmax"
    #: None: every op type onnxruntime can quantise (Conv, Clip, Add, Mul, pooling, ...).
    op_types: tuple[str, ...] | None = None
    #: Keep nodes that see the pixels without passing a Conv (the colour histogram) in fp32.
    exclude_pixel_branch: bool = True
    #: Keep everything after the last Conv (pooling, LayerNorm + MLP head, L2 norm) in fp32.
    exclude_head: bool = True
    #: Keep the first N Convs (with their activations) in fp32. 3 = EfficientNet-Lite's
    #: stem and first depthwise-separable block, the layers that see near-raw pixels at
    #: 112x112; they carry most of the int8 error (see docs/benchmarks.md) for ~5 % of the MACs.
    float_leading_convs: int = 3
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.activation_type not in QUANT_TYPES or self.weight_type not in QUANT_TYPES:
            raise ValueError(f"quantisation types must be in {QUANT_TYPES}")
        if self.calibrate_method not in CALIBRATE_METHODS:
            raise ValueError(f"calibrate_method must be one of {CALIBRATE_METHODS}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.float_leading_convs < 0:
            raise ValueError("float_leading_convs must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["op_types"] = list(self.op_types) if self.op_types else "all"
        return data


def pixel_branch_nodes(model: Any) -> list[str]:
    """Names of nodes that read the graph input without passing through a Conv, and feed no Conv.

    In our image tower that is exactly the in-graph colour histogram: a soft
    assignment of pixels to a 64-colour palette whose inputs span [0, 1] in tiny
    steps. With one int8 scale per tensor the near-white/near-colour distinctions it
    exists for would be rounded away, and it is cheap, so it stays fp32.
    """
    graph = model.graph
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def reachable(starts: list[str], stop_at_conv: bool) -> set[int]:
        seen: set[int] = set()
        queue = deque(starts)
        while queue:
            for node in consumers.get(queue.popleft(), []):
                if id(node) in seen or (stop_at_conv and node.op_type == "Conv"):
                    continue
                seen.add(id(node))
                queue.extend(node.output)
        return seen

    initializers = {i.name for i in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    from_pixels = reachable(inputs, stop_at_conv=True)
    after_conv = reachable([out for node in graph.node if node.op_type == "Conv" for out in node.output],
                           stop_at_conv=False)
    return [node.name for node in graph.node if id(node) in from_pixels - after_conv]


def head_nodes(model: Any) -> list[str]:
    """Names of nodes downstream of a Conv from which no Conv is reachable: pooling and the projection head.

    The head is ~0.5 % of the tower's multiply-adds, so keeping it in fp32 costs
    no measurable time; its input concatenates backbone features and the colour
    histogram, whose ranges differ by an order of magnitude.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    feeds_conv: set[int] = set()
    queue = deque(node for node in graph.node if node.op_type == "Conv")
    while queue:  # walk upstream from every Conv
        node = queue.popleft()
        for name in node.input:
            parent = producers.get(name)
            if parent is not None and id(parent) not in feeds_conv:
                feeds_conv.add(id(parent))
                queue.append(parent)
    after_conv: set[int] = set()
    queue = deque(c for node in graph.node if node.op_type == "Conv" for out in node.output
                  for c in consumers.get(out, []))
    while queue:
        node = queue.popleft()
        if id(node) in after_conv:
            continue
        after_conv.add(id(node))
        queue.extend(c for out in node.output for c in consumers.get(out, []))

    def fused_activation(node: Any) -> bool:
        # A ReLU6 right after the last Conv becomes that Conv's int8 output range
        # (QLinearConv); excluding it would leave the Conv without a quantised output.
        parent = producers.get(node.input[0]) if node.input else None
        return node.op_type in ("Clip", "Relu") and parent is not None and parent.op_type == "Conv"

    return [node.name for node in graph.node if id(node) in after_conv and id(node) not in feeds_conv
            and node.op_type != "Conv" and not fused_activation(node)]


def float_graph_inputs_for_excluded(model: Any, excluded: set[str]) -> int:
    """Let excluded nodes read the float graph input instead of its QuantizeLinear -> DequantizeLinear copy.

    onnxruntime inserts one shared Q/DQ pair per quantised tensor and rewires *every*
    consumer to it, excluded nodes included, so the colour histogram would see
    int8-rounded pixels. Only graph inputs are restored: inside the graph the quantiser
    folds a ReLU6 into its Conv's output range and gives the Conv the ReLU's output
    name, so skipping such a pair would silently drop the activation. Returns how many
    inputs were restored; Q/DQ nodes nobody reads any more are dropped.
    """
    graph = model.graph
    inputs = {i.name for i in graph.input}
    producers = {out: node for node in graph.node for out in node.output}
    rewired = 0
    for node in graph.node:
        if node.name not in excluded:
            continue
        for i, name in enumerate(node.input):
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] in inputs:
                node.input[i] = q.input[0]
                rewired += 1
    outputs = {o.name for o in graph.output}
    while True:  # drop Q/DQ nodes nobody reads any more (a DQ first, then its Q)
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)  # the dropped pairs' scales and zero points
    return rewired


def leading_conv_nodes(model: Any, count: int) -> list[str]:
    """Names of the first ``count`` Conv nodes in graph order plus the Clip/Relu reading each of them."""
    convs = [node for node in model.graph.node if node.op_type == "Conv"][:max(count, 0)]
    outputs = {out for node in convs for out in node.output}
    activations = [node for node in model.graph.node
                   if node.op_type in ("Clip", "Relu") and node.input and node.input[0] in outputs]
    return [node.name for node in convs + activations]


def _name_nodes(model: Any) -> None:
    # nodes_to_exclude works by name; optimisers may leave nodes unnamed.
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_unnamed_{i}"


def _stride(batches: int, most: int = 4) -> int:
    # onnxruntime requires the number of batches to be a multiple of the stride.
    return next(d for d in range(min(most, batches), 0, -1) if batches % d == 0)


def quantize_image_static(source: Path, target: Path, pixels: np.ndarray, cfg: StaticConfig,
                          work_dir: Path) -> dict[str, Any]:
    """Write the static-int8 version of image graph ``source`` to ``target``; returns what was done."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work_dir / "image.prep.onnx"
    try:
        # onnxruntime's basic graph optimisations (constant folding, simple fusions) and
        # shape inference, so calibration and QDQ placement see the graph that will run.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        pre_processed = True
    except Exception:  # noqa: BLE001 - pre-processing is an optimisation, not a requirement
        shutil.copy2(source, prepared)
        pre_processed = False
    model = onnx.load(str(prepared))
    _name_nodes(model)
    excluded = (pixel_branch_nodes(model) if cfg.exclude_pixel_branch else []) + \
        (head_nodes(model) if cfg.exclude_head else []) + leading_conv_nodes(model, cfg.float_leading_convs)
    onnx.save(model, str(prepared))
    input_name = next(i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer})
    reader = ImageCalibrationReader(pixels, input_name, batch_size=cfg.batch_size)
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    try:
        quantize_static(str(prepared), str(target), reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(cfg.op_types) if cfg.op_types else None,
                        per_channel=cfg.per_channel, activation_type=types[cfg.activation_type],
                        weight_type=types[cfg.weight_type], nodes_to_exclude=excluded,
                        calibrate_method=methods[cfg.calibrate_method],
                        # Calibrate a few batches at a time and merge the ranges: the histogram
                        # methods keep every intermediate feature map of a chunk in memory. Not
                        # CalibMaxIntermediateOutputs: in onnxruntime 1.32 the min-max calibrator
                        # drops what it collected when that cap is hit ("No data is collected").
                        extra_options={"CalibStridedMinMax": _stride(len(reader))})
    except Exception as exc:  # onnxruntime raises plain RuntimeError/ValueError here
        raise ModelError("static quantisation of the image graph failed", graph=str(source),
                         detail=f"{type(exc).__name__}: {exc}") from exc
    finally:
        prepared.unlink(missing_ok=True)
    quantized = onnx.load(str(target))
    rewired = float_graph_inputs_for_excluded(quantized, set(excluded))
    onnx.save(quantized, str(target))
    return {"method": "static_qdq", **cfg.to_dict(), "pre_processed": pre_processed,
            "excluded_nodes": len(excluded), "float_inputs_restored": rewired, "calibration_batches": len(reader)}

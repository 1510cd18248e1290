"""torch -> ONNX export helpers shared by the aligned model and the CLIP exporter (torch)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from mmsearch.exceptions import ModelError

OPSET = 17


def export_onnx(module: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path, input_names: Sequence[str],
                dynamic: dict[str, dict[int, str]], output_name: str = "embedding",
                extra_outputs: Sequence[str] = ()) -> Path:
    """Export with the TorchScript-based exporter (stable for BERT/EfficientNet/CLIP graphs,
    single self-contained file), falling back to the dynamo exporter if it refuses.

    ``extra_outputs``: names of the module's further outputs, after the embedding (batch-major)."""
    module = module.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    output_names = [output_name, *extra_outputs]
    dynamic_axes = {**dynamic, **{name: {0: "batch"} for name in output_names}}
    errors: list[str] = []
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow are expected
        try:
            torch.onnx.export(module, args, str(path), input_names=list(input_names), output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False,
                              do_constant_folding=True)
            return path
        except Exception as exc:  # noqa: BLE001 - try the other exporter, report both
            errors.append(f"torchscript: {exc}")
        try:
            shapes = {name: {axis: torch.export.Dim.AUTO for axis in axes} for name, axes in dynamic.items()}
            program = torch.onnx.export(module, args, input_names=list(input_names), output_names=output_names,
                                        dynamic_shapes=shapes, opset_version=max(OPSET, 18), dynamo=True)
            assert program is not None
            program.save(str(path), external_data=False)
            return path
        except Exception as exc:  # noqa: BLE001
            errors.append(f"dynamo: {exc}")
    raise ModelError("ONNX export failed", path=str(path), errors=errors)

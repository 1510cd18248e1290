"""Export the text and vision towers of a Hugging Face CLIP / SigLIP model to two ONNX graphs (torch).

Any ``from_pretrained`` id (needs a reachable hub) or local directory works.
optimum's ONNX exporter (``optimum.exporters.onnx``, split out into the
``optimum-onnx`` distribution since optimum 2.0) only has a *joint* CLIP task
(one graph with both inputs); separate towers need a wrapper per tower, so we
export them with ``torch.onnx.export`` directly.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mmsearch.exceptions import ModelError
from onnx_models.export import export_onnx
from onnx_models.images import ImageSpec
from onnx_models.manifest import IMAGE_GRAPH, TEXT_GRAPH, TOKENIZER_DIR, write_package
from onnx_models.text import TextTemplate, TextTokenizer

KINDS = ("clip", "siglip")


def _as_tensor(output: Any) -> torch.Tensor:
    # transformers 5 may return a ModelOutput from get_*_features; take the pooled projection.
    if isinstance(output, torch.Tensor):
        return output
    for name in ("text_embeds", "image_embeds", "pooler_output"):
        value = getattr(output, name, None)
        if isinstance(value, torch.Tensor):
            return value
    return output[0]


class ClipTextTower(nn.Module):
    def __init__(self, model: nn.Module, use_mask: bool) -> None:
        super().__init__()
        self.model = model
        self.use_mask = use_mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = {"attention_mask": attention_mask} if self.use_mask else {}
        return F.normalize(_as_tensor(self.model.get_text_features(input_ids=input_ids, **kwargs)), dim=-1)


class ClipVisionTower(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(_as_tensor(self.model.get_image_features(pixel_values=pixel_values)), dim=-1)


def image_spec_from_processor(processor: Any, kind: str) -> ImageSpec:
    """Translate a transformers image processor into our ImageSpec."""
    # transformers 5 stores sizes as SizeDict (attribute access, ``.get`` too); CLIP has
    # {"shortest_edge"} + crop_size, SigLIP {"height", "width"} and no crop.
    do_crop = bool(getattr(processor, "do_center_crop", False))
    crop = (getattr(processor, "crop_size", None) or {}) if do_crop else {}
    size = getattr(processor, "size", None) or {}
    height = crop.get("height") or size.get("height") or size.get("shortest_edge") or 224
    width = crop.get("width") or size.get("width") or height
    if int(height) != int(width):
        # ImageSpec is square; a non-square model input would silently be fed the wrong shape.
        raise ModelError("only square image inputs are supported", height=height, width=width, kind=kind)
    side = height
    resample = {2: "bilinear", 3: "bicubic", 1: "lanczos"}.get(int(getattr(processor, "resample", 3) or 3), "bicubic")
    return ImageSpec(size=int(side), mean=tuple(float(x) for x in processor.image_mean),  # type: ignore[arg-type]
                     std=tuple(float(x) for x in processor.image_std),  # type: ignore[arg-type]
                     resize_mode="center_crop" if do_crop or kind == "clip" else "squash", resample=resample)


def _shared_dim(model: nn.Module, ids: torch.Tensor, pixels: torch.Tensor, use_mask: bool, mask: torch.Tensor,
                model_id: str) -> int:
    """Embedding width read from the towers themselves.

    The config is no reliable source: CLIP has ``projection_dim``, SigLIP has none and its
    text head projects to ``text_config.projection_size``, which may differ from ``hidden_size``.
    """
    with torch.no_grad():
        text_dim = int(ClipTextTower(model, use_mask)(ids, mask if use_mask else None).shape[-1])
        image_dim = int(ClipVisionTower(model)(pixels).shape[-1])
    if text_dim != image_dim:
        raise ModelError("text and image towers have different output widths", model=model_id,
                         text_dim=text_dim, image_dim=image_dim)
    return text_dim


def export_clip(model_id: str, out_dir: Path, kind: str = "auto", name: str | None = None,
                template: TextTemplate | None = None, max_length: int | None = None,
                revision: str | None = None) -> Path:
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(model_id, revision=revision)
    model_type = str(getattr(config, "model_type", ""))
    kind = model_type if kind == "auto" else kind
    if kind not in KINDS:
        raise ModelError("not a CLIP/SigLIP model", model=model_id, model_type=model_type, supported=list(KINDS))
    model = AutoModel.from_pretrained(model_id, revision=revision).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError("a fast tokenizer (tokenizer.json) is required for the runtime", model=model_id)
    processor = AutoImageProcessor.from_pretrained(model_id, revision=revision)
    spec = image_spec_from_processor(processor, kind)
    positions = int(config.text_config.max_position_embeddings)
    trained = min(positions, int(getattr(tokenizer, "model_max_length", positions) or positions))
    # SigLIP was trained on max_length-padded text without an attention mask and pools the
    # *last* position, so it only gives its own embeddings at exactly the trained length.
    siglip = kind == "siglip"
    if siglip and max_length is not None and max_length != trained:
        raise ModelError("SigLIP text must be padded to its trained length", model=model_id,
                         max_length=max_length, trained_length=trained)
    length = trained if siglip else min(max_length or 64, trained)
    pad_token = tokenizer.pad_token or tokenizer.eos_token

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tokenizer.save_pretrained(str(staging / TOKENIZER_DIR))
        if not (staging / TOKENIZER_DIR / "tokenizer.json").is_file():
            raise ModelError("tokenizer did not produce tokenizer.json", model=model_id)
        runtime_tok = TextTokenizer(staging / TOKENIZER_DIR / "tokenizer.json", max_length=length,
                                    pad_token=pad_token, pad_to_max_length=siglip)
        sample = runtime_tok(["a red shirt", "shoes for running"])
        ids = torch.from_numpy(sample["input_ids"])
        dyn = {0: "batch", 1: "sequence"}
        if siglip:
            export_onnx(ClipTextTower(model, use_mask=False), (ids,), staging / TEXT_GRAPH, ["input_ids"],
                        {"input_ids": dyn})
        else:
            export_onnx(ClipTextTower(model, use_mask=True), (ids, torch.from_numpy(sample["attention_mask"])),
                        staging / TEXT_GRAPH, ["input_ids", "attention_mask"],
                        {"input_ids": dyn, "attention_mask": dyn})
        pixels = torch.zeros(2, 3, spec.size, spec.size)
        export_onnx(ClipVisionTower(model), (pixels,), staging / IMAGE_GRAPH, ["pixel_values"],
                    {"pixel_values": {0: "batch"}})
        dim = _shared_dim(model, ids, pixels, use_mask=not siglip, mask=torch.from_numpy(sample["attention_mask"]),
                          model_id=model_id)
        manifest = {
            "name": name or Path(str(model_id)).name,
            "version": str(getattr(config, "_commit_hash", None) or "local"),
            "kind": kind,
            "dim": dim,
            "normalize": True,
            "text": {"graph": TEXT_GRAPH, "tokenizer": f"{TOKENIZER_DIR}/tokenizer.json", "max_length": length,
                     "pad_token": pad_token, "pad_to_max_length": siglip,
                     "inputs": ["input_ids"] if siglip else ["input_ids", "attention_mask"]},
            "image": {"graph": IMAGE_GRAPH, **spec.to_dict(), "input": "pixel_values"},
            "text_template": (template or TextTemplate()).to_dict(),
            "source_weights": {"model": str(model_id), "revision": revision,
                               "commit": getattr(config, "_commit_hash", None)},
            "training": {"data": None, "params": None, "note": "pretrained weights, exported as-is"},
            "metrics": {},
        }
        return write_package(staging, out_dir, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

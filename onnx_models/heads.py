"""Projection heads, the two-tower export modules and the alignment losses (torch)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOSSES = ("infonce", "cosine", "mse")
HEAD_KINDS = ("linear", "mlp")


class ProjectionHead(nn.Module):
    """LayerNorm -> (Linear | MLP) -> L2 normalise.

    The input LayerNorm puts backbone features and the colour histogram (very
    different scales) on one footing before they are mixed.
    """

    def __init__(self, in_dim: int, out_dim: int, kind: str = "mlp", hidden: int = 1024, dropout: float = 0.1) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ValueError(f"head kind must be one of {HEAD_KINDS}")
        self.norm = nn.LayerNorm(in_dim)
        if kind == "linear":
            self.proj: nn.Module = nn.Linear(in_dim, out_dim)
        else:
            self.proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.norm(features)), dim=-1)


class Tower(nn.Module):
    """Frozen feature extractor + trained head: what gets exported to ONNX."""

    def __init__(self, features: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(*inputs))


class LogitScale(nn.Module):
    """CLIP's learnable temperature, stored as log(1/T), clamped at 100 as in CLIP."""

    def __init__(self, init_temperature: float = 0.07) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.value.clamp(max=math.log(100)).exp()


def alignment_loss(kind: str, text: torch.Tensor, image: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``infonce``: symmetric CLIP loss. ``cosine``/``mse``: the seed's positive-only losses.

    Positive-only losses have a trivial minimum (every embedding the same
    vector), which is the collapse the docs measure; only InfoNCE pushes
    non-matching pairs apart.
    """
    if kind == "infonce":
        logits = scale * text @ image.T
        target = torch.arange(len(text), device=text.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    cos = (text * image).sum(-1)
    if kind == "cosine":
        return (1 - cos).mean()
    if kind == "mse":
        return (cos - 1).pow(2).mean()
    raise ValueError(f"loss must be one of {LOSSES}")

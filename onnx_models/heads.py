"""Projection heads, the two-tower export modules and the alignment losses (torch)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOSSES = ("infonce", "cosine", "mse")
HEAD_KINDS = ("linear", "mlp")


class ProjectionHead(nn.Module):
    """Per-branch LayerNorm -> (Linear | MLP) -> L2 normalise.

    ``branches`` splits the input (e.g. 1280 backbone dims + 129 colour-histogram
    dims). Each branch gets its own LayerNorm and a gain; without it a small
    branch can be drowned by a large one under a shared norm (the colour study
    in docs/alignment.md measures this).
    """

    def __init__(self, in_dim: int, out_dim: int, kind: str = "mlp", hidden: int = 1024, dropout: float = 0.1,
                 branches: tuple[int, ...] | None = None, branch_gains: tuple[float, ...] | None = None) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ValueError(f"head kind must be one of {HEAD_KINDS}")
        branches = branches or (in_dim,)
        if sum(branches) != in_dim:
            raise ValueError(f"branches {branches} do not add up to in_dim {in_dim}")
        gains = branch_gains or tuple(1.0 for _ in branches)
        if len(gains) != len(branches):
            raise ValueError("one gain per branch")
        self.branches = tuple(int(b) for b in branches)
        self.norms = nn.ModuleList(nn.LayerNorm(b) for b in self.branches)
        self.register_buffer("gains", torch.tensor(gains, dtype=torch.float32))
        if kind == "linear":
            self.proj: nn.Module = nn.Linear(in_dim, out_dim)
        else:
            self.proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if len(self.branches) == 1:
            normed = self.norms[0](features)
        else:
            parts = torch.split(features, self.branches, dim=-1)
            normed = torch.cat([norm(part) * self.gains[i] for i, (norm, part) in enumerate(zip(self.norms, parts))],
                               dim=-1)
        return F.normalize(self.proj(normed), dim=-1)


class Tower(nn.Module):
    """Frozen feature extractor + trained head: what gets exported to ONNX."""

    def __init__(self, features: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(*inputs))


#: The auxiliary classifiers' logit scale in training (embeddings are unit vectors: the softmax needs it).
CLASSIFIER_SCALE = 10.0


class AttributeTower(nn.Module):
    """A tower that also answers its classifiers' probabilities over the embedding it computes.

    Exported as the image graph: outputs ``embedding`` then one probability vector per
    classifier (``<name>_probs``, in ``names`` order), so a query photo's predicted type and
    colour cost one matrix product on top of the vector the search needs anyway.
    """

    def __init__(self, tower: nn.Module, classifiers: dict[str, nn.Linear]) -> None:
        super().__init__()
        self.tower = tower
        self.names = tuple(classifiers)
        self.classifiers = nn.ModuleList(classifiers[name] for name in self.names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        embedding = self.tower(*inputs)
        probs = [F.softmax(CLASSIFIER_SCALE * classifier(embedding), dim=-1) for classifier in self.classifiers]
        return (embedding, *probs)


class LogitScale(nn.Module):
    """CLIP's learnable temperature, stored as log(1/T), clamped at 100 as in CLIP."""

    def __init__(self, init_temperature: float = 0.07) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.value.clamp(max=math.log(100)).exp()


def soft_targets(groups: torch.Tensor, weight: float) -> torch.Tensor:
    """Row i: 1 - weight on item i, ``weight`` shared by other in-batch items of the same group.

    Why: catalog products of the same type and colour are near-duplicates;
    plain InfoNCE pushes them apart as negatives, which hurts type+colour
    precision. Rows without a same-group partner (or group < 0) keep a hard target.
    """
    same = (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0)
    same.fill_diagonal_(False)
    partners = same.sum(1, keepdim=True)
    soft = same.float() * (weight / partners.clamp(min=1))
    own = torch.where(partners.squeeze(1) > 0, 1 - weight, 1.0)
    return soft + torch.diag(own)


def alignment_loss(kind: str, text: torch.Tensor, image: torch.Tensor, scale: torch.Tensor,
                   groups: torch.Tensor | None = None, soft_weight: float = 0.0) -> torch.Tensor:
    """``infonce``: symmetric CLIP loss. ``cosine``/``mse``: the seed's positive-only losses.

    Positive-only losses have a trivial minimum (every embedding the same
    vector), which is the collapse the docs measure; only InfoNCE pushes
    non-matching pairs apart.
    """
    if kind == "infonce":
        logits = scale * text @ image.T
        if groups is not None and soft_weight > 0:
            target_matrix = soft_targets(groups, soft_weight)  # symmetric, so it serves both directions
            return -((target_matrix * F.log_softmax(logits, 1)).sum(1).mean()
                     + (target_matrix * F.log_softmax(logits.T, 1)).sum(1).mean()) / 2
        target = torch.arange(len(text), device=text.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    cos = (text * image).sum(-1)
    if kind == "cosine":
        return (1 - cos).mean()
    if kind == "mse":
        return (cos - 1).pow(2).mean()
    raise ValueError(f"loss must be one of {LOSSES}")

"""Head training on cached features: InfoNCE (or the positive-only losses), early stopping (torch)."""

from __future__ import annotations

import copy
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from onnx_models.backbones import LITE_SIZES, ColourConfig
from onnx_models.catalog import SplitConfig
from onnx_models.heads import HEAD_KINDS, LOSSES, LogitScale, ProjectionHead, alignment_loss
from onnx_models.metrics import exact_item_metrics
from onnx_models.text import TextTemplate


@dataclass(frozen=True)
class TrainConfig:
    name: str = "mmsearch-aligned"
    version: str = "1"
    template: TextTemplate = field(default_factory=TextTemplate)
    max_length: int = 64
    image_arch: str = "efficientnet_lite0"
    resize_mode: str = "pad"
    colour: ColourConfig | None = field(default_factory=ColourConfig)
    flip_augment: bool = True  # hflip view of each training image (features cached too)
    colour_branch_norm: bool = True  # own LayerNorm (+ gain) for the colour histogram dims
    colour_gain: float = 1.0
    aux_weight: float = 1.0  # auxiliary type/colour classification on both towers' embeddings (chosen in docs/alignment.md)
    soft_positive: float = 0.0  # InfoNCE target mass shared with same type+colour in-batch items
    dim: int = 256
    head: str = "mlp"
    hidden: int = 1024
    dropout: float = 0.1
    loss: str = "infonce"
    init_temperature: float = 0.07
    learn_temperature: bool = True
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    patience: int = 6
    seed: int = 13
    split: SplitConfig = field(default_factory=SplitConfig)
    max_train_pairs: int | None = None  # subset for quick builds (test model)
    max_eval_pairs: int | None = None  # subset of val and test for quick builds
    progress: bool = True

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}")
        if self.head not in HEAD_KINDS:
            raise ValueError(f"head must be one of {HEAD_KINDS}")
        if self.image_arch not in LITE_SIZES:
            raise ValueError(f"image_arch must be one of {sorted(LITE_SIZES)}")
        if not 8 <= self.dim <= 2048:
            raise ValueError("dim must be in [8, 2048]")
        if self.epochs < 1 or self.batch_size < 2 or self.patience < 1:
            raise ValueError("need epochs >= 1, batch_size >= 2, patience >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.dropout < 1:
            raise ValueError("need lr > 0, weight_decay >= 0, 0 <= dropout < 1")
        if not 0 < self.init_temperature < 1:
            raise ValueError("init_temperature must be in (0, 1)")
        if self.max_train_pairs is not None and self.max_train_pairs < self.batch_size:
            raise ValueError("max_train_pairs must be >= batch_size")
        if not 0 <= self.soft_positive < 1:
            raise ValueError("soft_positive must be in [0, 1)")
        if self.colour_gain <= 0 or self.aux_weight < 0:
            raise ValueError("need colour_gain > 0 and aux_weight >= 0")
        if self.max_eval_pairs is not None and self.max_eval_pairs < 10:
            raise ValueError("max_eval_pairs must be >= 10")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["template"] = self.template.to_dict()
        data["colour"] = self.colour.to_dict() if self.colour else None
        return data


@dataclass
class Features:
    """Cached inputs of the heads for one split, rows aligned by product."""

    text: np.ndarray
    image: np.ndarray
    image_flipped: np.ndarray | None = None
    image_branches: tuple[int, ...] | None = None  # e.g. (1280, 129): backbone dims, colour dims
    labels: dict[str, np.ndarray] | None = None  # class index per row (-100 = unknown), for aux_weight

    def __post_init__(self) -> None:
        if len(self.text) != len(self.image):
            raise ValueError("text and image features must align")


@dataclass
class TrainedHeads:
    text_head: ProjectionHead
    image_head: ProjectionHead
    temperature: float
    history: list[dict[str, float]]
    best_epoch: int


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def embed(head: ProjectionHead, features: np.ndarray, batch: int = 2048) -> np.ndarray:
    head.eval()
    return np.concatenate([head(torch.from_numpy(features[i:i + batch])).numpy()
                           for i in range(0, len(features), batch)])


def train_heads(train: Features, val: Features, cfg: TrainConfig) -> TrainedHeads:
    """Early stopping on validation mean exact-item R@10 (both directions)."""
    seed_everything(cfg.seed)
    text_head = ProjectionHead(train.text.shape[1], cfg.dim, cfg.head, cfg.hidden, cfg.dropout)
    branches = train.image_branches if cfg.colour_branch_norm else None
    gains = (1.0, cfg.colour_gain) if branches and len(branches) == 2 else None
    image_head = ProjectionHead(train.image.shape[1], cfg.dim, cfg.head, cfg.hidden, cfg.dropout,
                                branches=branches, branch_gains=gains)
    scale = LogitScale(cfg.init_temperature)
    # Auxiliary classifiers exist only during training; they are not exported.
    aux = torch.nn.ModuleDict()
    if cfg.aux_weight > 0 and train.labels:  # labels also exist for soft_positive; classifiers only here
        for name, values in train.labels.items():
            aux[f"aux_{name}"] = torch.nn.Linear(cfg.dim, int(values.max()) + 1)  # "type" is an nn.Module attr
    params = [*text_head.parameters(), *image_head.parameters(), *aux.parameters()]
    groups: list[dict[str, Any]] = [{"params": params, "weight_decay": cfg.weight_decay}]
    if cfg.learn_temperature:
        groups.append({"params": list(scale.parameters()), "weight_decay": 0.0})
    optimiser = torch.optim.AdamW(groups, lr=cfg.lr)
    steps_per_epoch = max(1, len(train.text) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                   pct_start=0.1)
    text_t = torch.from_numpy(train.text)
    image_t = torch.from_numpy(train.image)
    flipped_t = torch.from_numpy(train.image_flipped) if train.image_flipped is not None else None
    labels_t = {k: torch.from_numpy(v.astype(np.int64)) for k, v in (train.labels or {}).items()}
    groups_t = None
    if cfg.soft_positive > 0 and {"type", "colour"} <= set(labels_t):
        t, c = labels_t["type"], labels_t["colour"]
        groups_t = torch.where((t >= 0) & (c >= 0), t * 1000 + c, -1)
    generator = torch.Generator().manual_seed(cfg.seed)
    best: tuple[float, int, dict[str, Any]] = (-1.0, -1, {})
    history: list[dict[str, float]] = []
    bar = tqdm(range(cfg.epochs), desc=f"train heads ({cfg.loss})", disable=not cfg.progress)
    for epoch in bar:
        text_head.train()
        image_head.train()
        order = torch.randperm(len(text_t), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            images = image_t[idx]
            if flipped_t is not None:
                use_flip = torch.rand(len(idx), generator=generator) < 0.5
                images = torch.where(use_flip[:, None], flipped_t[idx], images)
            text_emb, image_emb = text_head(text_t[idx]), image_head(images)
            loss = alignment_loss(cfg.loss, text_emb, image_emb, scale(),
                                  groups=groups_t[idx] if groups_t is not None else None,
                                  soft_weight=cfg.soft_positive)
            for name, classifier in aux.items():
                target = labels_t[name.removeprefix("aux_")][idx]
                # logits scaled by 10: embeddings are unit vectors, the classifier needs a sharp softmax
                loss = loss + cfg.aux_weight * 0.5 * (
                    F.cross_entropy(10 * classifier(text_emb), target, ignore_index=-100)
                    + F.cross_entropy(10 * classifier(image_emb), target, ignore_index=-100))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        val_metrics = validate(text_head, image_head, val)
        score = (val_metrics["t2i_R@10"] + val_metrics["i2t_R@10"]) / 2
        record = {"epoch": epoch, "loss": total / steps_per_epoch, "temperature": float(1 / scale().detach()),
                  "val_R@10": score, **val_metrics}
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", val_r10=f"{score:.3f}")
        if score > best[0]:
            best = (score, epoch, {"text": copy.deepcopy(text_head.state_dict()),
                                   "image": copy.deepcopy(image_head.state_dict()), "scale": float(scale())})
        elif epoch - best[1] >= cfg.patience:
            break
    text_head.load_state_dict(best[2]["text"])
    image_head.load_state_dict(best[2]["image"])
    text_head.eval()
    image_head.eval()
    return TrainedHeads(text_head, image_head, 1 / best[2]["scale"], history, best[1])


def validate(text_head: ProjectionHead, image_head: ProjectionHead, val: Features) -> dict[str, float]:
    text_emb, image_emb = embed(text_head, val.text), embed(image_head, val.image)
    out = {f"t2i_{k}": v for k, v in exact_item_metrics(text_emb, image_emb).items()}
    out.update({f"i2t_{k}": v for k, v in exact_item_metrics(image_emb, text_emb).items()})
    return out

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
from onnx_models.heads import CLASSIFIER_SCALE, HEAD_KINDS, LOSSES, LogitScale, ProjectionHead, alignment_loss
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
    # Partial unfreezing (onnx_models/unfreeze.py): train the last N layers/stages of a backbone
    # on cached boundary activations, at a lower learning rate than the heads.
    unfreeze_text_layers: int = 0
    unfreeze_image_stages: int = 0
    backbone_lr: float = 1e-4
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
        if not 0 <= self.unfreeze_text_layers <= 6 or not 0 <= self.unfreeze_image_stages <= 7:
            raise ValueError("unfreeze_text_layers must be in [0, 6] (MiniLM-L6) and unfreeze_image_stages in [0, 7]")
        if self.backbone_lr <= 0:
            raise ValueError("backbone_lr must be > 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["template"] = self.template.to_dict()
        data["colour"] = self.colour.to_dict() if self.colour else None
        return data


@dataclass
class Features:
    """Cached inputs of the heads (or of the unfrozen tails) for one split, rows aligned by product.

    Frozen backbones: ``text`` (n, d) pooled features, ``image`` (n, d [+ colour]).
    Unfrozen text tail: ``text`` (n, L, d) token states and ``text_mask`` (n, L).
    Unfrozen image tail: ``image`` (n, C, H, W) feature maps and ``colour`` (n, k) kept apart.
    """

    text: np.ndarray
    image: np.ndarray
    image_flipped: np.ndarray | None = None
    image_branches: tuple[int, ...] | None = None  # e.g. (1280, 129): backbone dims, colour dims
    labels: dict[str, np.ndarray] | None = None  # class index per row (-100 = unknown), for aux_weight
    text_mask: np.ndarray | None = None
    colour: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.text) != len(self.image):
            raise ValueError("text and image features must align")
        if (self.text.ndim == 3) != (self.text_mask is not None):
            raise ValueError("token-state text features need a text_mask (and only they do)")


class TowerInputs:
    """Batches of head inputs: cached pooled features, or a trainable tail run over cached boundaries."""

    def __init__(self, feats: Features, text_tail: torch.nn.Module | None = None,
                 image_tail: torch.nn.Module | None = None) -> None:
        self.text = torch.from_numpy(feats.text)
        self.text_mask = torch.from_numpy(feats.text_mask) if feats.text_mask is not None else None
        self.image = torch.from_numpy(feats.image)
        self.flipped = torch.from_numpy(feats.image_flipped) if feats.image_flipped is not None else None
        self.colour = torch.from_numpy(feats.colour) if feats.colour is not None else None
        self.text_tail = text_tail if self.text_mask is not None else None
        self.image_tail = image_tail if self.image.ndim == 4 else None

    def __len__(self) -> int:
        return len(self.text)

    def text_batch(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.text[idx].float()
        if self.text_tail is None:
            return x
        assert self.text_mask is not None
        return self.text_tail(x, self.text_mask[idx].float())

    def image_batch(self, idx: torch.Tensor, use_flip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.image[idx]
        if use_flip is not None and self.flipped is not None:
            x = torch.where(use_flip.view(-1, *([1] * (x.dim() - 1))), self.flipped[idx], x)
        x = x.float()
        if self.image_tail is None:
            return x
        pooled = self.image_tail(x)
        return pooled if self.colour is None else torch.cat([pooled, self.colour[idx].float()], dim=1)

    @torch.no_grad()
    def embed(self, head: ProjectionHead, tower: str, batch: int = 512) -> np.ndarray:
        head.eval()
        for tail in (self.text_tail, self.image_tail):
            if tail is not None:
                tail.eval()
        take = self.text_batch if tower == "text" else self.image_batch
        return np.concatenate([head(take(torch.arange(i, min(i + batch, len(self))))).numpy()
                               for i in range(0, len(self), batch)])


@dataclass
class TrainedHeads:
    text_head: ProjectionHead
    image_head: ProjectionHead
    temperature: float
    history: list[dict[str, float]]
    best_epoch: int
    text_tail: torch.nn.Module | None = None  # trained last layers, when partially unfrozen
    image_tail: torch.nn.Module | None = None
    #: The auxiliary classifiers over the shared embedding ("type", "colour"), at the best epoch: the
    #: export puts them into the image graph, so a query photo's type and colour come with its vector.
    classifiers: dict[str, torch.nn.Linear] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_heads(train: Features, val: Features, cfg: TrainConfig, text_tail: torch.nn.Module | None = None,
                image_tail: torch.nn.Module | None = None) -> TrainedHeads:
    """Early stopping on validation mean exact-item R@10 (both directions).

    ``text_tail`` / ``image_tail`` (partial unfreezing) are trained with the heads at
    ``cfg.backbone_lr``; they only apply where ``train`` holds boundary activations.
    """
    seed_everything(cfg.seed)
    train_in = TowerInputs(train, text_tail, image_tail)
    val_in = TowerInputs(val, text_tail, image_tail)
    text_dim = int(train_in.text_batch(torch.arange(2)).shape[1])
    image_dim = int(train_in.image_batch(torch.arange(2)).shape[1])
    text_head = ProjectionHead(text_dim, cfg.dim, cfg.head, cfg.hidden, cfg.dropout)
    branches = train.image_branches if cfg.colour_branch_norm else None
    gains = (1.0, cfg.colour_gain) if branches and len(branches) == 2 else None
    image_head = ProjectionHead(image_dim, cfg.dim, cfg.head, cfg.hidden, cfg.dropout,
                                branches=branches, branch_gains=gains)
    scale = LogitScale(cfg.init_temperature)
    # Auxiliary classifiers: a training signal, and exported into the image graph (photo attributes).
    aux = torch.nn.ModuleDict()
    if cfg.aux_weight > 0 and train.labels:  # labels also exist for soft_positive; classifiers only here
        for name, values in train.labels.items():
            aux[f"aux_{name}"] = torch.nn.Linear(cfg.dim, int(values.max()) + 1)  # "type" is an nn.Module attr
    params = [*text_head.parameters(), *image_head.parameters(), *aux.parameters()]
    groups: list[dict[str, Any]] = [{"params": params, "weight_decay": cfg.weight_decay, "lr": cfg.lr}]
    if cfg.learn_temperature:
        groups.append({"params": list(scale.parameters()), "weight_decay": 0.0, "lr": cfg.lr})
    tails = [t for t in (train_in.text_tail, train_in.image_tail) if t is not None]
    tail_params = [p for tail in tails for p in tail.parameters() if p.requires_grad]
    if tail_params:
        # Why a lower rate: the tail starts from pretrained weights the heads rely on;
        # the heads' rate would wreck them in the first steps.
        groups.append({"params": tail_params, "weight_decay": 0.01, "lr": cfg.backbone_lr})
    optimiser = torch.optim.AdamW(groups, lr=cfg.lr)
    steps_per_epoch = max(1, len(train_in) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[g["lr"] for g in groups],
                                                   total_steps=cfg.epochs * steps_per_epoch, pct_start=0.1)
    labels_t = {k: torch.from_numpy(v.astype(np.int64)) for k, v in (train.labels or {}).items()}
    groups_t = None
    if cfg.soft_positive > 0 and {"type", "colour"} <= set(labels_t):
        t, c = labels_t["type"], labels_t["colour"]
        groups_t = torch.where((t >= 0) & (c >= 0), t * 1000 + c, -1)
    generator = torch.Generator().manual_seed(cfg.seed)
    best: tuple[float, int, dict[str, Any]] = (-1.0, -1, {})
    history: list[dict[str, float]] = []
    modules = {"text": text_head, "image": image_head, **{f"tail{i}": t for i, t in enumerate(tails)}, **aux}
    bar = tqdm(range(cfg.epochs), desc=f"train heads ({cfg.loss})", disable=not cfg.progress)
    for epoch in bar:
        for module in modules.values():
            module.train()
        order = torch.randperm(len(train_in), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            use_flip = torch.rand(len(idx), generator=generator) < 0.5 if train_in.flipped is not None else None
            text_emb = text_head(train_in.text_batch(idx))
            image_emb = image_head(train_in.image_batch(idx, use_flip))
            loss = alignment_loss(cfg.loss, text_emb, image_emb, scale(),
                                  groups=groups_t[idx] if groups_t is not None else None,
                                  soft_weight=cfg.soft_positive)
            for name, classifier in aux.items():
                target = labels_t[name.removeprefix("aux_")][idx]
                # logits scaled: embeddings are unit vectors, the classifier needs a sharp softmax
                loss = loss + cfg.aux_weight * 0.5 * (
                    F.cross_entropy(CLASSIFIER_SCALE * classifier(text_emb), target, ignore_index=-100)
                    + F.cross_entropy(CLASSIFIER_SCALE * classifier(image_emb), target, ignore_index=-100))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        val_metrics = validate(text_head, image_head, val_in)
        score = (val_metrics["t2i_R@10"] + val_metrics["i2t_R@10"]) / 2
        record = {"epoch": epoch, "loss": total / steps_per_epoch, "temperature": float(1 / scale().detach()),
                  "val_R@10": score, **val_metrics}
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", val_r10=f"{score:.3f}")
        if score > best[0]:
            best = (score, epoch, {name: copy.deepcopy(m.state_dict()) for name, m in modules.items()}
                    | {"scale": float(scale().detach())})
        elif epoch - best[1] >= cfg.patience:
            break
    for name, module in modules.items():
        module.load_state_dict(best[2][name])
        module.eval()
    classifiers = {name.removeprefix("aux_"): classifier for name, classifier in aux.items()}
    return TrainedHeads(text_head, image_head, 1 / best[2]["scale"], history, best[1],
                        text_tail=train_in.text_tail, image_tail=train_in.image_tail, classifiers=classifiers)


def validate(text_head: ProjectionHead, image_head: ProjectionHead, val: TowerInputs) -> dict[str, float]:
    text_emb, image_emb = val.embed(text_head, "text"), val.embed(image_head, "image")
    out = {f"t2i_{k}": v for k, v in exact_item_metrics(text_emb, image_emb).items()}
    out.update({f"i2t_{k}": v for k, v in exact_item_metrics(image_emb, text_emb).items()})
    return out

"""Partial unfreezing: train the last layers of each backbone on cached boundary activations (torch).

Why cache at a boundary: on 2 CPU cores a full backbone forward per step is
too slow to train, but everything *below* the unfrozen layers never changes.
So we run the frozen bottom once, cache its output (token states for the text
tower, feature maps for the image tower) and train only the top ("tail")
together with the heads. The tail on a cached boundary is numerically the same
function as the whole backbone (``tests/unit/test_onnx_unfreeze.py`` pins it),
and for export the trained tail is put back into a copy of the backbone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from onnx_models.backbones import MeanPooledText, mean_pool
from onnx_models.images import ImageSpec, preprocess
from onnx_models.text import TextTokenizer


def _freeze_batchnorm(module: nn.Module) -> None:
    # Why: batches of a few hundred crops of one catalog would drift ImageNet's running
    # statistics; fine-tuning keeps BN statistics (and affine params) fixed, as timm does.
    for child in module.modules():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):  # the public classes (timm's subclass them)
            child.eval()
            for param in child.parameters():
                param.requires_grad_(False)


class TextTail(nn.Module):
    """The last ``layers`` BERT layers + attention-masked mean pooling, fed cached token states."""

    def __init__(self, text: MeanPooledText, layers: int) -> None:
        super().__init__()
        encoder_layers = text.bert.encoder.layer
        if not 1 <= layers <= len(encoder_layers):
            raise ValueError(f"can unfreeze 1..{len(encoder_layers)} text layers, not {layers}")
        self.first = len(encoder_layers) - layers
        self.config = text.bert.config
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layers[i]) for i in range(self.first, len(encoder_layers)))

    def _mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = self._mask(hidden, attention_mask)
        for layer in self.layers:
            out = layer(hidden, mask)
            hidden = out[0] if isinstance(out, tuple) else out
        return mean_pool(hidden, attention_mask)

    def merged_into(self, text: MeanPooledText) -> MeanPooledText:
        """A copy of the full text backbone with this (trained) tail in place of its last layers."""
        merged = copy.deepcopy(text)
        for offset, layer in enumerate(self.layers):
            merged.bert.encoder.layer[self.first + offset] = copy.deepcopy(layer)
        return merged.eval()


class ImageTail(nn.Module):
    """The last ``stages`` EfficientNet stages + conv_head + bn2 + global pool, fed cached feature maps."""

    def __init__(self, backbone: nn.Module, stages: int) -> None:
        super().__init__()
        total = len(backbone.blocks)
        if not 1 <= stages <= total:
            raise ValueError(f"can unfreeze 1..{total} image stages, not {stages}")
        self.first = total - stages
        self.blocks = copy.deepcopy(backbone.blocks[self.first:])
        self.conv_head = copy.deepcopy(backbone.conv_head)
        self.bn2 = copy.deepcopy(backbone.bn2)
        self.pool = copy.deepcopy(backbone.global_pool)
        _freeze_batchnorm(self)

    def train(self, mode: bool = True) -> ImageTail:
        super().train(mode)
        _freeze_batchnorm(self)  # stays in eval mode whatever the caller asks
        return self

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.pool(self.bn2(self.conv_head(self.blocks(maps)))).flatten(1)

    def merged_into(self, backbone: nn.Module) -> nn.Module:
        merged = copy.deepcopy(backbone)
        for offset, stage in enumerate(self.blocks):
            merged.blocks[self.first + offset] = copy.deepcopy(stage)
        merged.conv_head = copy.deepcopy(self.conv_head)
        merged.bn2 = copy.deepcopy(self.bn2)
        return merged.eval()


# -- boundary activations (what gets cached) ----------------------------------------------


@torch.inference_mode()
def text_boundary(text: MeanPooledText, tokenizer: TextTokenizer, texts: Sequence[str],
                  layers: int) -> np.ndarray:
    """Token states entering the last ``layers`` layers, padded to max_length, with the mask appended.

    One row = ``max_length * hidden`` states followed by ``max_length`` mask values,
    so rows of any batch have the same width and can share one feature store.
    """
    feeds = tokenizer(list(texts))
    ids, mask = feeds["input_ids"], feeds["attention_mask"]
    length = tokenizer.max_length
    pad = length - ids.shape[1]
    if pad > 0:
        ids = np.pad(ids, ((0, 0), (0, pad)))
        mask = np.pad(mask, ((0, 0), (0, pad)))
    out = text.bert(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    token_type_ids=torch.zeros_like(torch.from_numpy(ids)), output_hidden_states=True)
    first = len(text.bert.encoder.layer) - layers
    hidden = out.hidden_states[first].numpy()  # hidden_states[0] is the embedding output
    return np.concatenate([hidden.reshape(len(texts), -1), mask.astype(np.float32)], axis=1)


def split_text_boundary(rows: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Undo ``text_boundary``'s row layout; trims padding columns no row uses (saves tail compute)."""
    mask = rows[:, -max_length:]
    hidden = rows[:, :-max_length].reshape(len(rows), max_length, -1)
    used = max(1, int(mask.sum(1).max()))
    return np.ascontiguousarray(hidden[:, :used]), np.ascontiguousarray(mask[:, :used])


def _frozen_bottom(backbone: nn.Module, pixels: torch.Tensor, stages: int) -> torch.Tensor:
    """The backbone up to (not including) its last ``stages`` stages."""
    x = backbone.bn1(backbone.conv_stem(pixels))
    for stage in backbone.blocks[:len(backbone.blocks) - stages]:
        x = stage(x)
    return x


@torch.inference_mode()
def image_boundary(backbone: nn.Module, images: Sequence[object], spec: ImageSpec, stages: int) -> np.ndarray:
    """Feature maps entering the last ``stages`` stages, flattened to one row per image."""
    pixels = torch.from_numpy(preprocess(list(images), spec))  # type: ignore[arg-type]
    return _frozen_bottom(backbone, pixels, stages).flatten(1).numpy()


@torch.inference_mode()
def boundary_shape(backbone: nn.Module, spec: ImageSpec, stages: int) -> tuple[int, int, int]:
    """(channels, height, width) of the cached maps, to reshape the flattened rows."""
    _, channels, height, width = _frozen_bottom(backbone, torch.zeros(1, 3, spec.size, spec.size), stages).shape
    return int(channels), int(height), int(width)

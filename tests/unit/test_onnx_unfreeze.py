"""Partial unfreezing: a tail over cached boundary activations is the same function as the backbone,
training moves it, and the trained tail is what the exported ONNX package computes (real weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.torch, pytest.mark.slow]

TEXTS = ["Turtle Check Men Navy Blue Shirt, Casual", "red heels", "Titan Women Silver Watch",
         "a much longer product description with many words " * 3]


@pytest.fixture(scope="module")
def bb():  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from onnx_models.alignment import load_backbones
    from onnx_models.train import TrainConfig

    return load_backbones(TrainConfig())


def _photos(catalog_dir: Path, n: int) -> list[object]:
    from PIL import Image

    images = []
    for path in sorted((catalog_dir / "images").glob("*.jpg"))[:n]:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


@pytest.mark.parametrize("layers", [1, 2])
def test_text_tail_on_cached_states_equals_full_backbone(bb, layers: int) -> None:  # type: ignore[no-untyped-def]
    import torch

    from onnx_models.unfreeze import TextTail, split_text_boundary, text_boundary

    rows = text_boundary(bb.text, bb.tokenizer, TEXTS, layers)
    hidden, mask = split_text_boundary(rows, bb.tokenizer.max_length)
    assert hidden.shape[1] == int(mask.sum(1).max())  # unused padding columns are trimmed
    feeds = bb.tokenizer(TEXTS)
    with torch.no_grad():
        got = TextTail(bb.text, layers).eval()(torch.from_numpy(hidden), torch.from_numpy(mask)).numpy()
        ref = bb.text(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_image_tail_on_cached_maps_equals_full_backbone(bb, catalog_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from onnx_models.images import preprocess
    from onnx_models.unfreeze import ImageTail, boundary_shape, image_boundary

    images = _photos(catalog_dir, 4)
    for stages in (1, 2):
        maps = image_boundary(bb.image, images, bb.spec, stages).reshape(4, *boundary_shape(bb.image, bb.spec, stages))
        with torch.no_grad():
            got = ImageTail(bb.image, stages).eval()(torch.from_numpy(maps)).numpy()
            ref = bb.image(torch.from_numpy(preprocess(images, bb.spec))).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_merged_backbone_carries_the_trained_tail_and_leaves_the_original(bb) -> None:  # type: ignore[no-untyped-def]
    import torch

    from onnx_models.unfreeze import TextTail, split_text_boundary, text_boundary

    feeds = bb.tokenizer(TEXTS)
    ids, mask = torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])
    with torch.no_grad():
        before = bb.text(ids, mask).numpy()
        tail = TextTail(bb.text, 1).eval()
        torch.manual_seed(1)
        for param in tail.parameters():  # stands in for training: any change must survive the merge
            param.add_(0.05 * torch.randn_like(param))
        hidden, tail_mask = split_text_boundary(text_boundary(bb.text, bb.tokenizer, TEXTS, 1), bb.tokenizer.max_length)
        expected = tail(torch.from_numpy(hidden), torch.from_numpy(tail_mask)).numpy()
        merged = tail.merged_into(bb.text)(ids, mask).numpy()
        after = bb.text(ids, mask).numpy()
    np.testing.assert_allclose(merged, expected, atol=1e-4)
    assert np.abs(merged - before).max() > 1e-2  # the perturbed tail is really in the merged model
    np.testing.assert_array_equal(after, before)  # the shared frozen backbone was not touched


def test_image_tail_keeps_batchnorm_statistics_frozen(bb) -> None:  # type: ignore[no-untyped-def]
    import torch

    from onnx_models.unfreeze import ImageTail, boundary_shape

    tail = ImageTail(bb.image, 1).train()
    norms = [m for m in tail.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert not any(p.requires_grad for m in norms for p in m.parameters())
    stats = [m.running_mean.clone() for m in norms]
    tail(torch.randn(8, *boundary_shape(bb.image, bb.spec, 1))).sum().backward()
    assert all(torch.equal(s, m.running_mean) for s, m in zip(stats, norms))
    assert any(p.grad is not None for p in tail.parameters() if p.requires_grad)


def test_unfrozen_training_moves_the_tails_and_the_package_serves_them(bb, catalog_dir: Path,  # type: ignore[no-untyped-def]
                                                                        tmp_path: Path) -> None:
    import torch

    from onnx_models.alignment import export_package, train_alignment
    from onnx_models.runtime import Encoder
    from onnx_models.train import TrainConfig
    from onnx_models.unfreeze import ImageTail, TextTail

    cfg = TrainConfig(name="unfrozen", max_train_pairs=256, max_eval_pairs=32, epochs=2, batch_size=64,
                      flip_augment=False, aux_weight=0.0, unfreeze_text_layers=1, unfreeze_image_stages=1,
                      backbone_lr=1e-3, progress=False)
    result, _ = train_alignment(catalog_dir, cfg, tmp_path / "cache", backbones=bb)
    heads = result.heads
    assert isinstance(heads.text_tail, TextTail) and isinstance(heads.image_tail, ImageTail)
    pretrained_text = TextTail(bb.text, 1).state_dict()
    moved = [k for k, v in heads.text_tail.state_dict().items() if not torch.equal(v, pretrained_text[k])]
    assert moved, "text tail weights did not change: not in the optimiser?"
    pretrained_image = ImageTail(bb.image, 1).state_dict()
    assert any(not torch.equal(v, pretrained_image[k]) for k, v in heads.image_tail.state_dict().items())

    pkg = export_package(result, bb, cfg, tmp_path / "pkg", catalog_dir)
    encoder = Encoder.load(pkg)
    feeds = bb.tokenizer(TEXTS)
    with torch.no_grad():
        ref_text = heads.text_head(heads.text_tail.merged_into(bb.text)(
            torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))).numpy()
        frozen_text = heads.text_head(bb.text(torch.from_numpy(feeds["input_ids"]),
                                              torch.from_numpy(feeds["attention_mask"]))).numpy()
    got = encoder.encode_texts(TEXTS)
    assert (got * ref_text).sum(1).min() >= 0.999
    assert (got * frozen_text).sum(1).min() < 0.9999  # the package is not the frozen backbone + head

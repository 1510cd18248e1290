"""ORT vs PyTorch parity on the real MiniLM + EfficientNet-Lite0 weights (export extra needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.torch, pytest.mark.slow]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path):  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from onnx_models.alignment import TrainResult, export_package, load_backbones
    from onnx_models.heads import ProjectionHead
    from onnx_models.train import TrainConfig, TrainedHeads

    cfg = TrainConfig(name="parity")
    bb = load_backbones(cfg)
    torch.manual_seed(0)
    image_dim = 1280 + (cfg.colour.dim if cfg.colour else 0)
    classifiers = {"type": torch.nn.Linear(cfg.dim, 3).eval(), "colour": torch.nn.Linear(cfg.dim, 2).eval()}
    heads = TrainedHeads(ProjectionHead(384, cfg.dim).eval(), ProjectionHead(image_dim, cfg.dim).eval(), 0.07, [], 0,
                         classifiers=classifiers)
    labels = {"type": {"Shirts": 0, "Watches": 1, "Heels": 2}, "colour": {"Black": 0, "Red": 1}}
    result = TrainResult(heads, {}, {}, 0.0, labels=labels)
    pkg = export_package(result, bb, cfg, tmp_path_factory.mktemp("parity") / "pkg", catalog_dir)
    return pkg, bb, heads, cfg


def test_text_tower_parity(exported) -> None:  # type: ignore[no-untyped-def]
    import torch

    from onnx_models.heads import Tower
    from onnx_models.runtime import Encoder

    pkg, bb, heads, _ = exported
    texts = ["Turtle Check Men Navy Blue Shirt, Casual", "red heels", "Titan Women Silver Watch",
             "a much longer product description " * 3]
    got = Encoder.load(pkg).encode_texts(texts)
    feeds = bb.tokenizer(texts)
    with torch.no_grad():
        ref = Tower(bb.text, heads.text_head).eval()(torch.from_numpy(feeds["input_ids"]),
                                                     torch.from_numpy(feeds["attention_mask"])).numpy()
    cos = (got * ref).sum(1)
    assert cos.min() >= 0.999, cos
    assert float(got[0] @ got[1]) < 0.999  # distinct inputs, distinct outputs


def test_image_tower_parity(exported, catalog_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from onnx_models.backbones import ColourHistogram, ImageFeatures
    from onnx_models.heads import Tower
    from onnx_models.images import preprocess
    from onnx_models.runtime import Encoder

    pkg, bb, heads, cfg = exported
    paths = sorted((catalog_dir / "images").glob("*.jpg"))[:6]
    encoder = Encoder.load(pkg)
    got = encoder.encode_images([p.read_bytes() for p in paths])
    images = [encoder.load_image(p.read_bytes()) for p in paths]
    tower = Tower(ImageFeatures(bb.image, ColourHistogram(cfg.colour, bb.spec.mean, bb.spec.std)), heads.image_head)
    with torch.no_grad():
        ref = tower.eval()(torch.from_numpy(preprocess(images, bb.spec))).numpy()
    cos = (got * ref).sum(1)
    assert cos.min() >= 0.999, cos
    assert np.abs(got[0] - got[1]).max() > 1e-3


def test_image_graph_answers_the_classifiers(exported, catalog_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The photo's type and colour come from the exported classifiers, labelled in their class order."""
    import torch

    from onnx_models.heads import CLASSIFIER_SCALE
    from onnx_models.runtime import Encoder

    pkg, _, heads, _ = exported
    encoder = Encoder.load(pkg)
    assert encoder.photo_labels == {"article_type": ["Shirts", "Watches", "Heels"], "base_colour": ["Black", "Red"]}
    photo = sorted((catalog_dir / "images").glob("*.jpg"))[0].read_bytes()
    vector, guesses = encoder.encode_image_with_attributes(photo)
    assert np.allclose(vector, encoder.encode_images([photo])[0], atol=1e-5)
    with torch.no_grad():
        probs = torch.softmax(CLASSIFIER_SCALE * heads.classifiers["type"](torch.from_numpy(vector[None])), -1)[0]
    expected = sorted(zip(["Shirts", "Watches", "Heels"], probs.tolist()), key=lambda pair: -pair[1])
    assert [label for label, _ in guesses["article_type"]] == [label for label, _ in expected]
    assert np.allclose([p for _, p in guesses["article_type"]], [p for _, p in expected], atol=1e-3)
    assert len(guesses["base_colour"]) == 2 and abs(sum(p for _, p in guesses["base_colour"]) - 1) < 1e-4

"""SigLIP export: a tiny randomly initialised SiglipModel (no hub) -> two ONNX towers -> Encoder parity.

The references are what the Hugging Face docs prescribe for SigLIP: the model's own
tokenizer with ``padding="max_length"`` (SigLIP pools the *last* position and was trained
without an attention mask) and the model's own ``SiglipImageProcessor``. The tiny config
has a text ``projection_size`` different from its ``hidden_size`` on purpose: SigLIP has no
``projection_dim``, and the embedding width must come from the towers, not the config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.torch

WORDS = ["a", "red", "blue", "shirt", "shoes", "for", "men", "women", "running", "black", "watch"]
MAX_LENGTH = 16
DIM = 24  # text projection_size == vision hidden_size; text hidden_size is 32
TEXTS = ["a red shirt for men", "blue running shoes", "black watch", "women"]


def _tiny_siglip(out: Path) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    # SigLIP's real tokenizer: no BOS, "</s>" appended, "</s>" doubles as the pad token.
    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="</s>",
                                                eos_token="</s>", model_max_length=MAX_LENGTH)
    config = transformers.SiglipConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": MAX_LENGTH, "projection_size": DIM,
                     "pad_token_id": 1, "eos_token_id": 1, "bos_token_id": None},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": DIM, "intermediate_size": 37,
                       "num_hidden_layers": 2, "num_attention_heads": 4})
    torch.manual_seed(0)
    model = transformers.SiglipModel(config).eval()
    model.save_pretrained(out)
    fast.save_pretrained(out)
    transformers.SiglipImageProcessor(size={"height": 32, "width": 32}, resample=3,
                                      image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from onnx_models.clip_export import export_clip

    src = _tiny_siglip(tmp_path_factory.mktemp("src") / "tiny-siglip")
    pkg = export_clip(str(src), tmp_path_factory.mktemp("pkg") / "siglip-pkg", kind="auto", name="tiny-siglip")
    return src, pkg


def _reference(src: Path) -> tuple[Any, Any, Any]:
    transformers = pytest.importorskip("transformers")
    return (transformers.SiglipModel.from_pretrained(src).eval(), transformers.AutoTokenizer.from_pretrained(src),
            transformers.AutoImageProcessor.from_pretrained(src))


def _normalised(output: Any) -> np.ndarray:
    torch = pytest.importorskip("torch")
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return torch.nn.functional.normalize(tensor, dim=-1).numpy()


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    # Non-square on purpose: SigLIP squashes to height x width (no crop, no pad).
    return [Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)) for _ in range(3)]


def test_manifest_describes_siglip(tiny: tuple[Path, Path]) -> None:
    _, pkg = tiny
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["kind"] == "siglip"
    assert manifest["dim"] == DIM
    assert manifest["text"]["inputs"] == ["input_ids"]
    assert manifest["text"]["pad_to_max_length"] is True and manifest["text"]["max_length"] == MAX_LENGTH
    assert manifest["image"]["size"] == 32 and manifest["image"]["resize_mode"] == "squash"
    assert manifest["image"]["resample"] == "bicubic"


def test_text_matches_torch_with_max_length_padding(tiny: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    from onnx_models.runtime import Encoder

    src, pkg = tiny
    encoder = Encoder.load(pkg)
    assert [i.name for i in encoder._text.get_inputs()] == ["input_ids"]
    model, tokenizer, _ = _reference(src)
    feeds = tokenizer(TEXTS, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt")
    with torch.no_grad():
        ref = _normalised(model.get_text_features(input_ids=feeds["input_ids"]))
    got = encoder.encode_texts(TEXTS)
    assert got.shape == (len(TEXTS), DIM) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.min((got * ref).sum(1)) >= 0.999
    assert float(got[0] @ got[2]) < 0.999  # a constant graph would pass the parity check


def test_padding_to_max_length_is_what_makes_parity(tiny: tuple[Path, Path]) -> None:
    """Without max_length padding the last position is a word, not padding: the parity check must notice."""
    from onnx_models.runtime import Encoder
    from onnx_models.text import TextTokenizer

    _, pkg = tiny
    encoder = Encoder.load(pkg)
    padded = encoder.encode_texts(TEXTS)
    encoder.tokenizer = TextTokenizer(encoder.tokenizer.path, max_length=MAX_LENGTH, pad_token="</s>",
                                      pad_to_max_length=False)
    unpadded = encoder.encode_texts(TEXTS)
    assert np.min((padded * unpadded).sum(1)) < 0.99


def test_image_matches_torch_with_siglip_processor(tiny: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    from onnx_models.runtime import Encoder

    src, pkg = tiny
    encoder = Encoder.load(pkg)
    model, _, processor = _reference(src)
    images = _images()
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape[-2:]) == (32, 32)
    with torch.no_grad():
        ref = _normalised(model.get_image_features(pixel_values=pixels))
    got = encoder.encode_images(images)
    assert got.shape == (len(images), DIM) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.min((got * ref).sum(1)) >= 0.999


def test_other_max_length_is_refused_for_siglip(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from mmsearch.exceptions import ModelError
    from onnx_models.clip_export import export_clip

    src, _ = tiny
    with pytest.raises(ModelError, match="trained length"):
        export_clip(str(src), tmp_path / "out", max_length=8)
    assert not (tmp_path / "out").exists()


def test_non_square_processor_is_refused() -> None:
    transformers = pytest.importorskip("transformers")
    from mmsearch.exceptions import ModelError
    from onnx_models.clip_export import image_spec_from_processor

    processor = transformers.SiglipImageProcessor(size={"height": 32, "width": 48})
    with pytest.raises(ModelError, match="square"):
        image_spec_from_processor(processor, "siglip")

"""CLIP export: a tiny randomly initialised CLIPModel (no hub) -> two ONNX towers -> Encoder parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.torch

WORDS = ["a", "red", "blue", "shirt", "shoes", "for", "men", "women", "running", "black", "watch"]


def _tiny_clip(tmp_path: Path) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    specials = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", 2), ("<|endoftext|>", 3)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                                bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                                model_max_length=16)
    config = transformers.CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": 16, "bos_token_id": 2,
                     "eos_token_id": 3, "pad_token_id": 0},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
                       "num_hidden_layers": 2, "num_attention_heads": 4},
        projection_dim=24)
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    out = tmp_path / "tiny-clip"
    model.save_pretrained(out)
    fast.save_pretrained(out)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from onnx_models.clip_export import export_clip

    src = _tiny_clip(tmp_path_factory.mktemp("src"))
    pkg = export_clip(str(src), tmp_path_factory.mktemp("pkg") / "clip-pkg", name="tiny-clip")
    return src, pkg


def test_export_writes_two_towers_and_manifest(tiny: tuple[Path, Path]) -> None:
    _, pkg = tiny
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["kind"] == "clip"
    assert manifest["dim"] == 24
    assert set(manifest["files"]) >= {"text_encoder.onnx", "image_encoder.onnx", "tokenizer/tokenizer.json"}
    assert manifest["image"]["size"] == 32 and manifest["image"]["resize_mode"] == "center_crop"


def test_ort_matches_torch(tiny: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from onnx_models.images import preprocess
    from onnx_models.runtime import Encoder

    src, pkg = tiny
    encoder = Encoder.load(pkg)
    model = transformers.CLIPModel.from_pretrained(src).eval()
    texts = ["a red shirt for men", "blue running shoes", "black watch", "women"]
    got = encoder.encode_texts(texts)
    feeds = encoder.tokenizer(texts)
    with torch.no_grad():
        ref = model.get_text_features(input_ids=torch.from_numpy(feeds["input_ids"]),
                                      attention_mask=torch.from_numpy(feeds["attention_mask"]))
    ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    assert got.shape == (4, 24) and got.dtype == np.float32
    assert np.min((got * ref).sum(1)) >= 0.999

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(3)]
    got_img = encoder.encode_images(images)
    with torch.no_grad():
        ref_img = model.get_image_features(pixel_values=torch.from_numpy(preprocess(images, encoder.image_spec)))
    ref_img = ref_img if isinstance(ref_img, torch.Tensor) else ref_img.pooler_output
    ref_img = torch.nn.functional.normalize(ref_img, dim=-1).numpy()
    assert np.min((got_img * ref_img).sum(1)) >= 0.999
    # Different texts must give different embeddings (a constant graph would pass the parity check).
    assert float(got[0] @ got[2]) < 0.999


def test_non_clip_model_is_refused(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from mmsearch.exceptions import ModelError
    from onnx_models.clip_export import export_clip

    config = transformers.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=8)
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelError, match="not a CLIP"):
        export_clip(str(tmp_path / "bert"), tmp_path / "out")

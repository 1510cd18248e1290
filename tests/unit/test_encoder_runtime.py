"""The onnxruntime Encoder on the real (small) test model package."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmsearch.config import PROJECT_ROOT
from mmsearch.exceptions import ImageDecodeError, ModelError
from onnx_models.catalog import image_records, split_records
from onnx_models.evaluate import split_config_of
from onnx_models.runtime import Encoder


@pytest.fixture(scope="module")
def held_out(encoder: Encoder, catalog_dir: Path) -> list[dict[str, Any]]:
    """Test-split products: never seen by the heads."""
    return split_records(image_records(catalog_dir), split_config_of(encoder))["test"][:120]


def test_contract_attributes(encoder: Encoder, model_dir: Path) -> None:
    raw = (model_dir / "manifest.json").read_bytes()
    assert encoder.identity == hashlib.sha256(raw).hexdigest()
    assert encoder.manifest == json.loads(raw)
    assert encoder.dim == encoder.manifest["dim"] and encoder.name == encoder.manifest["name"]


def test_text_embeddings_are_normalised_float32(encoder: Encoder) -> None:
    out = encoder.encode_texts(["red shirt", "black leather wallet for men", ""])
    assert out.shape == (3, encoder.dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert float(out[0] @ out[1]) < 0.99
    assert encoder.encode_texts([]).shape == (0, encoder.dim)


def test_batching_does_not_change_results(model_dir: Path, catalog_dir: Path, held_out: list[dict[str, Any]]) -> None:
    texts = [r["title"] for r in held_out[:7]]
    images = [(catalog_dir / r["image"]).read_bytes() for r in held_out[:5]]
    one = Encoder.load(model_dir, batch_size=1, intra_op_threads=1)
    many = Encoder.load(model_dir, batch_size=32)
    assert np.allclose(one.encode_texts(texts), many.encode_texts(texts), atol=1e-4)
    assert np.allclose(one.encode_images(images), many.encode_images(images), atol=1e-4)


def test_product_text_uses_manifest_template(encoder: Encoder) -> None:
    record = {"title": "Puma Men Black Running Shoes", "gender": "Men", "article_type": "Sports Shoes",
              "base_colour": "Black", "usage": "Sports"}
    text = encoder.product_text(record)
    assert text.startswith("Puma Men Black Running Shoes")
    for field in encoder.manifest["text_template"]["fields"]:
        value = record.get(field)
        if value:
            assert value in text


def test_cross_modal_retrieval_beats_chance(encoder: Encoder, catalog_dir: Path,
                                            held_out: list[dict[str, Any]]) -> None:
    """On unseen products the right photo ranks in the top 10 far more often than chance (10/120)."""
    text = encoder.encode_texts([encoder.product_text(r) for r in held_out])
    images = encoder.encode_images([(catalog_dir / r["image"]).read_bytes() for r in held_out])
    scores = text @ images.T
    ranks = (scores >= np.diag(scores)[:, None]).sum(1) - 1
    assert (ranks < 10).mean() > 0.4
    # article type from the photo: the nearest text is usually of the same type
    types = np.array([r["article_type"] for r in held_out])
    assert (types[scores.argmax(0)] == types).mean() > 0.5


def test_images_accept_pil_and_bytes(encoder: Encoder, catalog_dir: Path, held_out: list[dict[str, Any]]) -> None:
    data = (catalog_dir / held_out[0]["image"]).read_bytes()
    from_bytes = encoder.encode_images([data])
    from_pil = encoder.encode_images([Image.open(io.BytesIO(data))])
    assert np.allclose(from_bytes, from_pil, atol=1e-5)
    assert np.allclose(np.linalg.norm(from_bytes, axis=1), 1.0, atol=1e-5)


def test_bad_images_raise_typed_errors(encoder: Encoder, catalog_dir: Path, held_out: list[dict[str, Any]]) -> None:
    good = (catalog_dir / held_out[0]["image"]).read_bytes()
    with pytest.raises(ImageDecodeError):
        encoder.encode_images([good, b"garbage"])
    with pytest.raises(ImageDecodeError):
        encoder.encode_images(["images/1.jpg"])  # type: ignore[list-item]
    with pytest.raises(ImageDecodeError):
        encoder.encode_images([good[: len(good) // 3]])


def test_unknown_provider_refused(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="provider"):
        Encoder.load(model_dir, providers=["NoSuchExecutionProvider"])


def test_tampered_package_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(model_dir, copy)
    with open(copy / "tokenizer" / "tokenizer.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(ModelError, match="sha256"):
        Encoder.load(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ModelError, match="manifest"):
        Encoder.load(copy)


def test_runtime_never_imports_torch(model_dir: Path) -> None:
    code = (
        "import sys; from onnx_models.runtime import Encoder; import onnx_models.images, onnx_models.evaluate;"
        "import onnx_models.cli, onnx_models.quantize;"
        f"e = Encoder.load({str(model_dir)!r}); e.encode_texts(['red shirt']);"
        "from PIL import Image; e.encode_images([Image.new('RGB', (50, 60), (200, 0, 0))]);"
        "bad = [m for m in ('torch', 'transformers', 'timm') if m in sys.modules];"
        "print('LOADED', bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_serving_workers_turn_onnxruntime_spinning_off_unless_asked(model_dir: Path) -> None:
    from query_service.wsgi import serving_runtime_options

    assert serving_runtime_options({}) == {"intra_op_threads": None, "allow_spinning": False}
    assert serving_runtime_options({"MMSEARCH_ORT_SPINNING": "1", "MMSEARCH_ORT_THREADS": "1"}) == {
        "intra_op_threads": 1, "allow_spinning": True}
    quiet = Encoder.load(model_dir, **serving_runtime_options({}))
    for session in (quiet._text, quiet._image):
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = Encoder.load(model_dir)  # batch jobs keep onnxruntime's default: the entry is not set at all
    with pytest.raises(Exception):
        default._text.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    assert np.allclose(quiet.encode_texts(["red shirt"]), default.encode_texts(["red shirt"]), atol=1e-6)

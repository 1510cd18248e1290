"""int8 quantisation and the ``mmsearch models`` CLI, on the real test package (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmsearch.cli import main
from onnx_models.catalog import image_records, split_records
from onnx_models.evaluate import split_config_of
from onnx_models.runtime import Encoder


@pytest.fixture(scope="module")
def int8_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from onnx_models.quantize import quantize_package

    return quantize_package(model_dir, tmp_path_factory.mktemp("q") / "int8")


def test_int8_close_to_fp32_but_not_identical(encoder: Encoder, int8_dir: Path, catalog_dir: Path) -> None:
    q = Encoder.load(int8_dir)
    assert q.identity != encoder.identity and q.manifest["quantization"]["parent_identity"] == encoder.identity
    records = split_records(image_records(catalog_dir), split_config_of(encoder))["test"][:24]
    texts = [encoder.product_text(r) for r in records]
    images = [(catalog_dir / r["image"]).read_bytes() for r in records]
    for fp32, int8 in ((encoder.encode_texts(texts), q.encode_texts(texts)),
                       (encoder.encode_images(images), q.encode_images(images))):
        cos = (fp32 * int8).sum(1)
        assert cos.mean() > 0.97, cos  # measured ~0.99 (text, per-channel) and ~0.9998 (image head only)
        assert not np.allclose(fp32, int8, atol=1e-6)  # it really is a different graph


def test_info_prints_identity(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", str(model_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["identity"] == Encoder.load(model_dir).identity and out["verified"] is True


def test_info_on_non_package_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", str(tmp_path)]) == 2
    assert "manifest.json missing" in capsys.readouterr().err


def test_eval_reports_metrics(model_dir: Path, catalog_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "eval", str(model_dir), "--catalog", str(catalog_dir), "--limit", "60"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gallery_size"] == 60
    assert 0 < out["metrics"]["t2i_R@10"] <= 1 and set(out["metrics"]) >= {"i2t_MRR", "i2i_P@10_type_colour"}


def test_export_clip_without_hub_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    code = main(["models", "export-clip", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "cannot load" in capsys.readouterr().err

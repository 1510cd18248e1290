from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mmsearch.sample_catalog import COLOURS, SampleSpec, generate


def test_generated_catalog_has_the_real_schema_and_is_deterministic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", SampleSpec(n_products=40, seed=3))
    second = generate(tmp_path / "b", SampleSpec(n_products=40, seed=3))
    rows = [json.loads(line) for line in first.read_text().splitlines()]
    assert first.read_text() == second.read_text()
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
    required = {"id", "title", "gender", "master_category", "sub_category", "article_type", "base_colour", "year"}
    assert all(required <= set(r) for r in rows)
    with_images = [r for r in rows if "image"in r]
    assert 0 < len(with_images) < 40
    for row in with_images[:5]:
        image = Image.open(tmp_path / "a" / row["image"]).convert("RGB")
        # the drawn garment carries the product's colour
        colours = image.getcolors(maxcolors=1 << 16)
        assert any(rgb == COLOURS[row["base_colour"]] and count > 500 for count, rgb in colours)


def test_spec_is_validated() -> None:
    with pytest.raises(ValueError):
        SampleSpec(n_products=0)
    with pytest.raises(ValueError):
        SampleSpec(image_share=1.5)

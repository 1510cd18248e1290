"""Pure parts of legacy-index enrichment: field lookup, text building, source building, config checks."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.enrich import EnrichConfig, enriched_source, get_path, legacy_text
from mmsearch.exceptions import ConfigError

SOURCE = {"name": "Blue Shirt", "brand": {"name": "Acme", "country": "IT"}, "tags": ["cotton", "", None, "slim"],
          "variants": [{"colour": "Blue"}, {"colour": "Red"}], "price": 10}


def test_get_path():
    assert get_path(SOURCE, "brand.name") == "Acme"
    assert get_path(SOURCE, "variants.colour") == "Blue"
    assert get_path(SOURCE, "missing.x") is None
    assert get_path(SOURCE, "price.x") is None


def test_legacy_text_joins_non_empty_values_in_order():
    assert legacy_text(SOURCE, ["name", "brand.name", "tags", "nope"], ", ") == "Blue Shirt, Acme, cotton, slim"
    assert legacy_text(SOURCE, ["price"], " ") == "10"
    assert legacy_text({}, ["name"], ", ") == ""


def test_enriched_source_keeps_everything_and_adds_vectors():
    out = enriched_source(SOURCE, np.array([1.0, 0.0], np.float32), None, "h")
    assert {k: out[k] for k in SOURCE} == SOURCE
    assert out["text_vector"] == [1.0, 0.0] and out["content_hash"] == "h" and "image_vector" not in out
    assert "has_image" not in out  # not in the legacy mapping, which may be strict
    assert "text_vector" not in SOURCE


@pytest.mark.parametrize("name", ["", "shop-*", "a,b"])
def test_enrich_config_needs_one_concrete_name(name):
    with pytest.raises(ConfigError):
        EnrichConfig(source_index=name)


def test_enrich_config_image_root_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        EnrichConfig(source_index="shop", image_field="photo", image_root=tmp_path / "nope")
    assert EnrichConfig(source_index="shop", text_fields=("a", "", "b")).text_fields == ("a", "b")

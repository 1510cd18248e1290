"""Retrieval metrics on hand-made embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_models.metrics import exact_item_metrics, label_precision, retrieval_report


def test_perfect_alignment() -> None:
    eye = np.eye(20, dtype=np.float32)
    metrics = exact_item_metrics(eye, eye)
    assert metrics == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MRR": 1.0}


def test_known_ranks() -> None:
    # Query i is most similar to gallery (i+1) % n and second-most to its own item: rank 1 everywhere.
    n = 12
    gallery = np.eye(n, dtype=np.float32)
    queries = 0.8 * np.roll(gallery, 1, axis=1) + 0.6 * gallery
    metrics = exact_item_metrics(queries, gallery)
    assert metrics["R@1"] == 0.0 and metrics["R@5"] == 1.0
    assert metrics["MRR"] == pytest.approx(0.5)


def test_collapsed_embeddings_score_zero_not_perfect() -> None:
    same = np.ones((50, 4), dtype=np.float32) / 2  # every score ties
    assert exact_item_metrics(same, same) == {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "MRR": pytest.approx(1 / 50)}


def test_random_embeddings_score_near_chance() -> None:
    rng = np.random.default_rng(1)
    assert exact_item_metrics(rng.normal(size=(500, 16)), rng.normal(size=(500, 16)))["R@10"] < 0.06


def test_label_precision_and_exclude_self() -> None:
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    labels = ["a", "a", "b", "b"]
    assert label_precision(emb, emb, labels, labels, k=1) == 1.0  # self is the top hit
    assert label_precision(emb, emb, labels, labels, k=1, exclude_self=True) == 1.0
    assert label_precision(emb, emb, labels, labels, k=2, exclude_self=True) == 0.5
    assert label_precision(emb, emb, ["a", "b", "a", "b"], ["a", "b", "a", "b"], k=1, exclude_self=True) == 0.0


def test_report_keys() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    report = retrieval_report(emb, emb, ["t"] * 30, ["c"] * 15 + ["d"] * 15)
    assert report["t2i_R@1"] == 1.0 and report["gallery_size"] == 30
    assert report["i2i_P@10_type"] == 1.0 and report["i2i_P@10_type_colour"] < 1.0


def test_mean_pairwise_cosine_detects_collapse() -> None:
    from onnx_models.metrics import mean_pairwise_cosine

    rng = np.random.default_rng(0)
    spread = rng.normal(size=(300, 32))
    spread /= np.linalg.norm(spread, axis=1, keepdims=True)
    collapsed = np.tile(spread[:1], (300, 1)) + 1e-3 * spread
    collapsed /= np.linalg.norm(collapsed, axis=1, keepdims=True)
    assert abs(mean_pairwise_cosine(spread)) < 0.05
    assert mean_pairwise_cosine(collapsed) > 0.99


def test_label_precision_ceiling() -> None:
    from onnx_models.metrics import label_precision_ceiling

    labels = ["a"] * 20 + ["b"] * 5
    # "a" queries can fill all 10 slots; "b" queries at most 5 (4 without self)
    assert label_precision_ceiling(labels) == pytest.approx((20 * 1.0 + 5 * 0.5) / 25)
    assert label_precision_ceiling(labels, exclude_self=True) == pytest.approx((20 * 1.0 + 5 * 0.4) / 25)


def test_report_with_distractors() -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(40, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    report = retrieval_report(emb, emb, ["t"] * 40, ["c"] * 40, n_queries=10)
    assert report["queries"] == 10 and report["gallery_size"] == 40
    assert report["t2i_R@1"] == 1.0 and report["i2i_P@10_type"] == 1.0
    # a distractor identical to query 0's item makes rank 1 for that query (ties count against)
    tied = np.concatenate([emb, emb[:1]])
    assert retrieval_report(tied, tied, ["t"] * 41, ["c"] * 41, n_queries=10)["t2i_R@1"] == 0.9

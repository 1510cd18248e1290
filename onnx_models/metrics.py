"""Retrieval metrics on embedding matrices (pure numpy, no I/O).

Exact-item metrics: query i's single relevant item is gallery row i (the same
product in the other modality). Label precision: a hit is a gallery item whose
label (article type, or type+colour) equals the query's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def exact_item_metrics(queries: np.ndarray, gallery: np.ndarray, ks: Sequence[int] = (1, 5, 10),
                       chunk: int = 1024) -> dict[str, float]:
    if queries.shape[1] != gallery.shape[1] or len(gallery) < len(queries):
        raise ValueError("exact-item retrieval needs gallery row i to be query i's item (extra rows = distractors)")
    n = len(queries)
    if n == 0:
        raise ValueError("no queries")
    ranks = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk):
        scores = queries[start:start + chunk] @ gallery.T
        own = scores[np.arange(len(scores)), np.arange(start, start + len(scores))]
        # rank = number of *other* gallery items scoring at least as high: ties count
        # against the item, so a collapsed model (all scores equal) scores ~0, not 1.
        ranks[start:start + chunk] = (scores >= own[:, None]).sum(1) - 1
    out = {f"R@{k}": float((ranks < k).mean()) for k in ks}
    out["MRR"] = float((1.0 / (ranks + 1)).mean())
    return out


def label_precision(queries: np.ndarray, gallery: np.ndarray, query_labels: Sequence[object],
                    gallery_labels: Sequence[object], k: int = 10, exclude_self: bool = False,
                    chunk: int = 1024) -> float:
    """Mean P@k; ``exclude_self`` drops gallery row i for query i (image->image with the same gallery)."""
    if len(queries) != len(query_labels) or len(gallery) != len(gallery_labels):
        raise ValueError("labels must align with embeddings")
    if exclude_self and len(queries) != len(gallery):
        raise ValueError("exclude_self needs queries and gallery to be the same items")
    q_labels = np.asarray(query_labels, dtype=object)
    g_labels = np.asarray(gallery_labels, dtype=object)
    hits = []
    for start in range(0, len(queries), chunk):
        scores = queries[start:start + chunk] @ gallery.T
        if exclude_self:
            rows = np.arange(len(scores))
            scores[rows, rows + start] = -np.inf
        top = _topk(scores, k)
        hits.append((g_labels[top] == q_labels[start:start + chunk, None]).mean(1))
    return float(np.concatenate(hits).mean())


def label_precision_ceiling(labels: Sequence[object], k: int = 10, exclude_self: bool = False) -> float:
    """Best achievable mean P@k: a label with fewer than k gallery items caps its queries' precision.

    Small galleries have small label buckets, so P@10 is not comparable across
    gallery sizes without this number next to it.
    """
    counts: dict[object, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    own = 1 if exclude_self else 0
    return float(np.mean([min(k, counts[label] - own) / k for label in labels]))


def retrieval_report(text_emb: np.ndarray, image_emb: np.ndarray, types: Sequence[str],
                     colours: Sequence[str], n_queries: int | None = None) -> dict[str, float]:
    """The full table reported in docs/alignment.md.

    Rows ``[:n_queries]`` are the queries (held-out products); all rows form the
    gallery, so extra rows act as distractors (e.g. the training products, to
    evaluate on a catalog-sized gallery).
    """
    n = len(text_emb) if n_queries is None else n_queries
    type_colour = [f"{t}|{c}" for t, c in zip(types, colours)]
    report: dict[str, float] = {"gallery_size": float(len(image_emb)), "queries": float(n)}
    for name, value in exact_item_metrics(text_emb[:n], image_emb).items():
        report[f"t2i_{name}"] = value
    for name, value in exact_item_metrics(image_emb[:n], text_emb).items():
        report[f"i2t_{name}"] = value
    report["t2i_P@10_type"] = label_precision(text_emb[:n], image_emb, types[:n], types)
    report["t2i_P@10_type_colour"] = label_precision(text_emb[:n], image_emb, type_colour[:n], type_colour)
    # image->image: exclude the query's own photo (row i of the gallery)
    report["i2i_P@10_type"] = _i2i(image_emb, n, types)
    report["i2i_P@10_type_colour"] = _i2i(image_emb, n, type_colour)
    report["t2i_P@10_type_colour_ceiling"] = _ceiling(type_colour, n, exclude_self=False)
    report["i2i_P@10_type_colour_ceiling"] = _ceiling(type_colour, n, exclude_self=True)
    return report


def _i2i(image_emb: np.ndarray, n: int, labels: Sequence[object], k: int = 10) -> float:
    if n == len(image_emb):
        return label_precision(image_emb, image_emb, labels, labels, k=k, exclude_self=True)
    scores = image_emb[:n] @ image_emb.T
    scores[np.arange(n), np.arange(n)] = -np.inf
    top = _topk(scores, k)
    g = np.asarray(labels, dtype=object)
    return float((g[top] == g[:n, None]).mean())


def _ceiling(labels: Sequence[object], n: int, exclude_self: bool, k: int = 10) -> float:
    counts: dict[object, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    own = 1 if exclude_self else 0
    return float(np.mean([min(k, counts[label] - own) / k for label in labels[:n]]))


def mean_pairwise_cosine(emb: np.ndarray, max_rows: int = 2000) -> float:
    """Average cosine between *different* items: ~1 means the space collapsed to one point."""
    emb = emb[:max_rows]
    n = len(emb)
    if n < 2:
        raise ValueError("need at least two embeddings")
    sims = emb @ emb.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))

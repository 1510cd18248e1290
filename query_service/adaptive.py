"""Adaptive fusion: leg weights chosen per query from cheap features of its own legs. Pure numpy.

A policy holds a few weight presets (one of them is every single leg alone, so the policy
can always fall back to the best leg) and, for each preset, a ridge-regression model that
predicts the preset's NDCG@10 from the query's features. Serving computes the features of
the legs it already ran (``query_features``), asks ``AdaptivePolicy.choose`` for the preset
with the best predicted NDCG, and fuses with its weights: a dot product per preset, no
model runtime. ``fit`` learns the models on the tuning split (``mmsearch eval
tune-adaptive``); the policy lives in the ranking file as ``adaptive: {...}``.

Features (all cheap, all from the ``LegRun``): per leg, whether it returned hits, its top
score, and the drop from its first to its tenth score (how peaked the leg is); the overlap
of the legs' top 10s (do they agree?); the query's length; and the parse: its number of
attributes, their mean confidence, and whether it read a type, a colour, a gender.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FEATURE_LEGS = ("bm25", "text_text", "text_image")
FEATURE_NAMES = tuple(f"{leg}_{what}" for leg in FEATURE_LEGS for what in ("present", "top", "drop")) + (
    "overlap_bm25_text", "overlap_bm25_image", "overlap_text_image", "query_words",
    "parsed_count", "parsed_confidence", "parsed_type", "parsed_colour", "parsed_gender")


def _top10(ranked: Sequence[tuple[str, float]]) -> set[str]:
    return {doc for doc, _ in ranked[:10]}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def query_features(legs: Mapping[str, Sequence[tuple[str, float]]], text: str | None,
                   understanding: Any = None) -> np.ndarray:
    """The feature vector of one query (order: ``FEATURE_NAMES``)."""
    values: list[float] = []
    for leg in FEATURE_LEGS:
        ranked = list(legs.get(leg) or [])
        scores = [score for _, score in ranked[:10]]
        top = scores[0] if scores else 0.0
        # BM25 scores are unbounded: a log keeps one long query from dominating the fit.
        scale = np.log1p(max(top, 0.0)) if leg == "bm25" else top
        drop = (scores[0] - scores[-1]) / max(abs(scores[0]), 1e-9) if len(scores) > 1 else 0.0
        values += [1.0 if ranked else 0.0, float(scale), float(drop)]
    tops = {leg: _top10(legs.get(leg) or []) for leg in FEATURE_LEGS}
    values += [_jaccard(tops["bm25"], tops["text_text"]), _jaccard(tops["bm25"], tops["text_image"]),
               _jaccard(tops["text_text"], tops["text_image"]), float(len((text or "").split()))]
    attributes = dict(getattr(understanding, "attributes", None) or {})
    confidences = [a.confidence for a in attributes.values()]
    values += [float(len(attributes)), float(np.mean(confidences)) if confidences else 0.0,
               float("article_type" in attributes), float("base_colour" in attributes), float("gender" in attributes)]
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class AdaptivePolicy:
    """Weight presets and, per preset, ridge coefficients over [1, standardised features]."""

    presets: tuple[Mapping[str, float], ...]
    coef: np.ndarray  # (presets, features + 1)
    mean: np.ndarray  # feature means and scales of the tuning split
    scale: np.ndarray

    def __post_init__(self) -> None:
        if not self.presets:
            raise ValueError("an adaptive policy needs at least one preset")
        expected = (len(self.presets), len(FEATURE_NAMES) + 1)
        if self.coef.shape != expected or self.mean.shape != (len(FEATURE_NAMES),) or self.scale.shape != self.mean.shape:
            raise ValueError(f"adaptive policy coefficients must be {expected} over {len(FEATURE_NAMES)} features")

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = np.concatenate([[1.0], (features - self.mean) / self.scale])
        return self.coef @ x

    def choose(self, features: np.ndarray) -> int:
        return int(np.argmax(self.predict(features)))

    def weights_for(self, features: np.ndarray) -> dict[str, float]:
        return dict(self.presets[self.choose(features)])

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURE_NAMES), "presets": [dict(p) for p in self.presets],
                "coef": self.coef.round(6).tolist(), "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdaptivePolicy:
        if list(data.get("features", [])) != list(FEATURE_NAMES):
            raise ValueError("the adaptive policy was fitted on other features; fit it again")
        return cls(tuple(dict(p) for p in data["presets"]), np.asarray(data["coef"], dtype=np.float64),
                   np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64))


def fit(features: np.ndarray, ndcg: np.ndarray, presets: Sequence[Mapping[str, float]],
        ridge: float = 1.0) -> AdaptivePolicy:
    """Ridge regression per preset: ``features`` (queries, F), ``ndcg`` (presets, queries)."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = np.hstack([np.ones((len(features), 1)), (features - mean) / scale])
    penalty = ridge * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk: a preset's average NDCG is kept
    coef = np.linalg.solve(x.T @ x + penalty, x.T @ ndcg.T).T
    return AdaptivePolicy(tuple(dict(p) for p in presets), coef, mean, scale)


def choices(policy: AdaptivePolicy, features: np.ndarray) -> np.ndarray:
    """The chosen preset index of every query (rows of ``features``)."""
    return np.asarray([policy.choose(row) for row in features], dtype=int)

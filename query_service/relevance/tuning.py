"""Fusion auto-tuning with k-fold cross-validation, so the reported gain is out-of-sample.

Each leg runs once per query (and BM25 once per field-boost setting) through the
real engine; every candidate configuration is then fused offline from that cache
with ``query_service.fusion.fuse``, the same function the service uses. The score
matrix (configs x queries) makes cross-validation a cheap argmax per fold.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from query_service.fusion import COMBINATIONS, NORMALIZATIONS, fuse
from query_service.ranking import RankingConfig, SearchRequest
from query_service.relevance import metrics, stats
from query_service.relevance.judgments import Judgment

TEXT_LEGS = ("bm25", "text_text", "text_image")
BOOST_OPTIONS: tuple[dict[str, float], ...] = (
    {"title": 3.0, "category_path": 2.0, "search_text": 1.0},
    {"title": 1.0, "category_path": 1.0, "search_text": 1.0},
    {"title": 2.0, "category_path": 4.0, "search_text": 2.0},
)
WEIGHT_VALUES = (0.0, 0.5, 1.0, 2.0)
RRF_KS = (10, 30, 60, 100)

LegCache = dict[int, dict[str, dict[str, list[tuple[str, float]]]]]  # boost idx -> qid -> leg -> ranked


def collect_legs(engine: Any, judgments: Sequence[Judgment], depth: int = 100,
                 boosts: Sequence[Mapping[str, float]] = BOOST_OPTIONS) -> LegCache:
    """Run every text leg once per query; BM25 again for each extra boost setting."""
    cache: LegCache = {}
    for index, field_boosts in enumerate(boosts):
        legs = {leg: 1.0 for leg in TEXT_LEGS} if index == 0 else {"bm25": 1.0}
        ranking = RankingConfig(name="collect", legs=legs, depth=depth, num_candidates=max(200, depth),
                                field_boosts=dict(field_boosts))
        cache[index] = {}
        for judgment in judgments:
            run = engine.run_legs(SearchRequest(text=judgment.query, size=10, explain=False), ranking)
            cache[index][judgment.qid] = {leg: run.legs.get(leg, []) for leg in legs}
    return cache


def legs_for(cache: LegCache, boost_index: int, qid: str) -> dict[str, list[tuple[str, float]]]:
    vector_legs = {k: v for k, v in cache[0][qid].items() if k != "bm25"}
    return {"bm25": cache[boost_index][qid]["bm25"], **vector_legs}


def candidate_grid(n_boosts: int = len(BOOST_OPTIONS)) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = []
    weight_sets = [dict(zip(TEXT_LEGS, ws)) for ws in itertools.product(WEIGHT_VALUES, repeat=len(TEXT_LEGS))
                   if any(ws)]
    for boost_index, weights in itertools.product(range(n_boosts), weight_sets):
        if weights["bm25"] == 0 and boost_index > 0:
            continue  # boosts only matter when BM25 takes part
        legs = {leg: w for leg, w in weights.items() if w > 0}
        for k in RRF_KS:
            configs.append({"boost_index": boost_index, "legs": legs, "method": "rrf", "rrf_k": k})
        for normalization, combination in itertools.product(NORMALIZATIONS, COMBINATIONS):
            if normalization in ("z_score", "none") and combination != "arithmetic":
                continue  # negative or unbounded scores are skipped by geometric/harmonic: not meaningful
            configs.append({"boost_index": boost_index, "legs": legs, "method": "linear",
                            "normalization": normalization, "combination": combination})
    return configs


def config_ndcg(config: Mapping[str, Any], cache: LegCache, judgments: Sequence[Judgment]) -> list[float]:
    out = []
    for judgment in judgments:
        legs = legs_for(cache, config["boost_index"], judgment.qid)
        legs = {leg: legs[leg] for leg in config["legs"]}
        fused = fuse(legs, config["method"], config["legs"], config.get("rrf_k", 60),
                     config.get("normalization", "min_max"), config.get("combination", "arithmetic"))
        out.append(metrics.ndcg_at([h.doc_id for h in fused], judgment.grades, 10))
    return out


def score_matrix(configs: Sequence[Mapping[str, Any]], cache: LegCache, judgments: Sequence[Judgment]) -> np.ndarray:
    return np.asarray([config_ndcg(c, cache, judgments) for c in configs], dtype=np.float64)


def kfold_indices(n: int, folds: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i::folds] for i in range(folds)]


def cross_validate(matrix: np.ndarray, folds: int = 5, seed: int = 0,
                   classes: Sequence[str] | None = None) -> tuple[np.ndarray, list[int | dict[str, int]]]:
    """Out-of-sample NDCG per query: each fold is scored with the config chosen on the other folds.

    With ``classes`` (one label per query) the choice is made per class (a per-class policy).
    """
    n = matrix.shape[1]
    out = np.zeros(n)
    chosen: list[int | dict[str, int]] = []
    for test in kfold_indices(n, folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        if classes is None:
            best = int(np.argmax(matrix[:, train].mean(axis=1)))
            out[test] = matrix[best, test]
            chosen.append(best)
            continue
        policy: dict[str, int] = {}
        fallback = int(np.argmax(matrix[:, train].mean(axis=1)))
        for label in sorted(set(classes)):
            cls_train = [i for i in train if classes[i] == label]
            policy[label] = int(np.argmax(matrix[:, cls_train].mean(axis=1))) if len(cls_train) >= 5 else fallback
        for i in test:
            out[i] = matrix[policy[classes[i]], i]
        chosen.append(policy)
    return out, chosen


@dataclass(frozen=True)
class TuneResult:
    best: dict[str, Any]
    in_sample_ndcg: float
    out_of_sample: list[float]
    per_class_out_of_sample: list[float] | None
    fold_choices: list[Any]

    def summary(self, seed: int = 0) -> dict[str, Any]:
        out = {"best": self.best, "in_sample_ndcg@10": self.in_sample_ndcg,
               "cv_ndcg@10": stats.mean(self.out_of_sample),
               "cv_ndcg@10_ci95": stats.bootstrap_ci(self.out_of_sample, seed=seed)}
        if self.per_class_out_of_sample is not None:
            out["per_class_cv_ndcg@10"] = stats.mean(self.per_class_out_of_sample)
            out["per_class_cv_ndcg@10_ci95"] = stats.bootstrap_ci(self.per_class_out_of_sample, seed=seed)
        return out


def tune(matrix: np.ndarray, configs: Sequence[Mapping[str, Any]], folds: int = 5, seed: int = 0,
         classes: Sequence[str] | None = None) -> TuneResult:
    out_of_sample, choices = cross_validate(matrix, folds, seed)
    per_class = cross_validate(matrix, folds, seed, classes)[0].tolist() if classes is not None else None
    best_index = int(np.argmax(matrix.mean(axis=1)))
    return TuneResult(best=dict(configs[best_index]), in_sample_ndcg=float(matrix[best_index].mean()),
                      out_of_sample=out_of_sample.tolist(), per_class_out_of_sample=per_class,
                      fold_choices=choices)


def to_variant(config: Mapping[str, Any], name: str = "tuned-hybrid",
               boosts: Sequence[Mapping[str, float]] = BOOST_OPTIONS) -> dict[str, Any]:
    variant = {"name": name, "legs": dict(config["legs"]), "method": config["method"],
               "field_boosts": dict(boosts[config["boost_index"]])}
    if config["method"] == "rrf":
        variant["rrf_k"] = config["rrf_k"]
    else:
        variant["normalization"] = config["normalization"]
        variant["combination"] = config["combination"]
    RankingConfig.from_dict(variant)  # the written file must load in the service
    return variant


def compare_with_single_legs(matrix: np.ndarray, configs: Sequence[Mapping[str, Any]],
                             out_of_sample: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """The cross-validated tuned hybrid against each single leg (default boosts), paired per query.

    A single leg needs no tuning, so its in-sample score is already out-of-sample.
    """
    out: dict[str, Any] = {}
    for leg in TEXT_LEGS:
        index = next(i for i, c in enumerate(configs) if c["boost_index"] == 0 and c["legs"] == {leg: 1.0}
                     and c["method"] == "rrf" and c["rrf_k"] == 60)
        single = matrix[index].tolist()
        diffs = [t - s for s, t in zip(single, out_of_sample)]
        out[leg] = {"ndcg@10": stats.mean(single), "ndcg@10_ci95": stats.bootstrap_ci(single, seed=seed),
                    "tuned_minus_leg": stats.mean(diffs), "diff_ci95": stats.bootstrap_ci(diffs, seed=seed),
                    "p": stats.paired_randomization(single, list(out_of_sample), seed=seed)}
    return out

"""Tuning and evaluation logic on hand-made leg caches (no server)."""

from __future__ import annotations

import numpy as np
import pytest

from query_service.ranking import RankingConfig
from query_service.relevance import evaluate, tuning
from query_service.relevance.judgments import Judgment


def test_cross_validation_never_sees_the_test_fold() -> None:
    # config 0 is great on even queries, config 1 on odd ones; a leaky CV would report ~1.0
    matrix = np.array([[1.0 if q % 2 == 0 else 0.0 for q in range(20)],
                       [0.0 if q % 2 == 0 else 1.0 for q in range(20)]])
    out, choices = tuning.cross_validate(matrix, folds=5, seed=1)
    assert out.mean() < 0.8
    assert all(c in (0, 1) for c in choices)
    # with the query class known, a per-class policy recovers every query out-of-sample
    classes = ["even" if q % 2 == 0 else "odd" for q in range(20)]
    per_class, _ = tuning.cross_validate(matrix, folds=5, seed=1, classes=classes)
    assert per_class.mean() == 1.0


def test_folds_partition_the_queries() -> None:
    folds = tuning.kfold_indices(23, 5, seed=3)
    flat = sorted(i for fold in folds for i in fold)
    assert flat == list(range(23)) and len(folds) == 5


def test_grid_and_variant_are_valid_service_configs() -> None:
    grid = tuning.candidate_grid()
    assert len(grid) > 500
    assert {c["method"] for c in grid} == {"rrf", "linear"}
    for config in grid[:: max(1, len(grid) // 50)]:
        assert isinstance(RankingConfig.from_dict(tuning.to_variant(config)), RankingConfig)


def test_config_ndcg_fuses_from_the_cache() -> None:
    judgments = [Judgment(qid="q", query="x", grades={"good": 2})]
    cache = {0: {"q": {"bm25": [("bad", 9.0), ("good", 1.0)], "text_text": [("good", 0.9)], "text_image": []}},
             1: {"q": {"bm25": [("good", 5.0), ("bad", 1.0)]}}}
    bm25_only = {"boost_index": 0, "legs": {"bm25": 1.0}, "method": "rrf", "rrf_k": 60}
    assert tuning.config_ndcg(bm25_only, cache, judgments)[0] == pytest.approx(1 / np.log2(3))
    assert tuning.config_ndcg({**bm25_only, "boost_index": 1}, cache, judgments)[0] == 1.0
    hybrid = {"boost_index": 0, "legs": {"bm25": 1.0, "text_text": 1.0}, "method": "rrf", "rrf_k": 60}
    assert tuning.config_ndcg(hybrid, cache, judgments)[0] == 1.0


def test_summary_compares_paired_against_the_baseline() -> None:
    per_query = {"base": {f"q{i}": {m: 0.2 for m in ("ndcg@10", "mrr@10", "map@100", "recall@100", "p@10")}
                          for i in range(30)},
                 "better": {f"q{i}": {m: 0.5 for m in ("ndcg@10", "mrr@10", "map@100", "recall@100", "p@10")}
                            for i in range(30)}}
    summary = evaluate.summarize(per_query)
    versus = summary["variants"]["better"]["vs_baseline_ndcg@10"]
    assert versus["diff"] == pytest.approx(0.3) and versus["p"] < 0.001 and versus["wins"] == 30
    assert "| better |" in evaluate.markdown_table(summary)

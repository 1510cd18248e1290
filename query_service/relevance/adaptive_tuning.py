"""Fit and check an adaptive fusion policy: learn on the tuning split, report on the test split.

Every leg of every query runs once through the engine (``SearchEngine.run_legs``, the
service's path, understanding included); every weight preset is then fused offline from
those runs with ``SearchEngine.fuse_run``, the same function the service fuses with. The
policy (``query_service.adaptive``) is fitted on the tuning split only. On the test split
the report compares, per query class, the policy with every single leg and with the best
fixed preset of the tuning split, with paired randomisation tests, so the guard "never
below the best single leg on any class" is checked on queries the fit never saw.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from query_service import adaptive
from query_service.attributes import ATTRIBUTE_LEG
from query_service.legs import LegRun
from query_service.ranking import RankingConfig
from query_service.relevance import metrics, stats
from query_service.relevance.evaluate import request_for
from query_service.relevance.judgments import Judgment

TEXT_LEGS = ("bm25", "text_text", "text_image")
WEIGHTS = (0.0, 0.5, 1.0, 2.0)
#: Each text leg alone, spelt as the grid spells its presets (every leg named, the others at 0).
SINGLE_LEGS = tuple({**{other: 0.0 for other in TEXT_LEGS}, leg: 1.0, ATTRIBUTE_LEG: 0.0} for leg in TEXT_LEGS)


def preset_grid() -> list[dict[str, float]]:
    """Every weight combination of the three text legs and the attribute leg (at least one text leg)."""
    grid = []
    for weights in itertools.product(WEIGHTS, repeat=len(TEXT_LEGS) + 1):
        if any(weights[:len(TEXT_LEGS)]):
            grid.append(dict(zip((*TEXT_LEGS, ATTRIBUTE_LEG), weights)))
    return grid


def collect_runs(engine: Any, judgments: Sequence[Judgment], ranking: RankingConfig,
                 catalog_dir: Path | None = None) -> dict[str, LegRun]:
    return {j.qid: engine.run_legs(request_for(j, catalog_dir, size=10), ranking) for j in judgments}


def preset_ranking(base: RankingConfig, preset: Mapping[str, float]) -> RankingConfig:
    legs = {leg: weight for leg, weight in preset.items() if leg != ATTRIBUTE_LEG and weight > 0}
    return base.with_overrides({"legs": legs, "attribute_weight": preset.get(ATTRIBUTE_LEG, 0.0), "adaptive": None})


def ndcg_matrix(engine: Any, runs: Mapping[str, LegRun], judgments: Sequence[Judgment],
                presets: Sequence[Mapping[str, float]], base: RankingConfig) -> np.ndarray:
    """NDCG@10 of every preset (rows) on every query (columns), fused offline from the runs."""
    out = np.zeros((len(presets), len(judgments)))
    for row, preset in enumerate(presets):
        ranking = preset_ranking(base, preset)
        for column, judgment in enumerate(judgments):
            run = runs[judgment.qid]
            kept = LegRun(legs={k: v for k, v in run.legs.items() if k in ranking.legs},
                          sources=run.sources, weights={k: w for k, w in ranking.legs.items() if k in run.legs},
                          understanding=run.understanding, text=run.text)
            ids = [hit.doc_id for hit in engine.fuse_run(kept, ranking)[:10]]
            out[row, column] = metrics.ndcg_at(ids, judgment.grades, 10)
    return out


def features_of(runs: Mapping[str, LegRun], judgments: Sequence[Judgment]) -> np.ndarray:
    return np.vstack([adaptive.query_features(runs[j.qid].legs, runs[j.qid].text, runs[j.qid].understanding)
                      for j in judgments])


def select_presets(matrix: np.ndarray, presets: Sequence[Mapping[str, float]], keep: int) -> list[int]:
    """The single legs plus the ``keep`` presets with the best mean tuning NDCG (a small policy generalises)."""
    singles = [presets.index(p) for p in SINGLE_LEGS if p in presets]
    best = [int(i) for i in np.argsort(-matrix.mean(axis=1)) if int(i) not in singles][:keep]
    return singles + best


def class_of(judgment: Judgment) -> list[str]:
    classes = list(getattr(judgment, "classes", ()) or ())
    return [c for c in classes if c in ("colour", "no_colour", "gender", "no_gender")] or ["all"]


def compare(per_query: Mapping[str, np.ndarray], judgments: Sequence[Judgment], candidate: str) -> dict[str, Any]:
    """Per class: mean NDCG@10 of every ranking, and the candidate vs each other with a paired test."""
    classes = sorted({c for j in judgments for c in class_of(j)} | {"all"})
    report: dict[str, Any] = {}
    for name in classes:
        idx = [i for i, j in enumerate(judgments) if name == "all" or name in class_of(j)]
        row: dict[str, Any] = {"queries": len(idx)}
        for ranking, values in per_query.items():
            low, high = stats.bootstrap_ci(list(values[idx]))
            row[ranking] = {"ndcg@10": float(values[idx].mean()), "ci95": [low, high]}
        for ranking, values in per_query.items():
            if ranking != candidate:
                row[f"{candidate} - {ranking}"] = {
                    "delta": float((per_query[candidate][idx] - values[idx]).mean()),
                    "p": stats.paired_randomization(list(per_query[candidate][idx]), list(values[idx]))}
        report[name] = row
    return report


def tune_and_test(engine: Any, tune: Sequence[Judgment], test: Sequence[Judgment], base: RankingConfig,
                  catalog_dir: Path | None = None, keep: int = 8, ridge: float = 3.0) -> dict[str, Any]:
    presets = preset_grid()
    tune_runs, test_runs = collect_runs(engine, tune, base, catalog_dir), collect_runs(engine, test, base, catalog_dir)
    tune_matrix = ndcg_matrix(engine, tune_runs, tune, presets, base)
    chosen = select_presets(tune_matrix, presets, keep)
    policy = adaptive.fit(features_of(tune_runs, tune), tune_matrix[chosen], [presets[i] for i in chosen], ridge)
    best_fixed = int(np.argmax(tune_matrix.mean(axis=1)))
    test_matrix = ndcg_matrix(engine, test_runs, test, [presets[i] for i in chosen] + [presets[best_fixed]], base)
    picks = adaptive.choices(policy, features_of(test_runs, test))
    per_query = {"adaptive": test_matrix[picks, np.arange(len(test))], "best_fixed": test_matrix[-1]}
    for leg, preset in zip(TEXT_LEGS, SINGLE_LEGS):
        per_query[f"{leg}_only"] = test_matrix[[presets[i] for i in chosen].index(preset)]
    return {"policy": policy.to_dict(), "best_fixed_preset": presets[best_fixed],
            "tune_best_fixed_ndcg": float(tune_matrix[best_fixed].mean()),
            "test": compare(per_query, test, "adaptive"),
            "test_choices": {str(k): int(v) for k, v in zip(*np.unique(picks, return_counts=True))}}

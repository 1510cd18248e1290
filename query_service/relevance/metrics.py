"""Ranking metrics over graded judgments: pure functions, checked against hand-computed values.

``grades`` maps doc id -> grade (0 = not relevant). A doc missing from the judgments
counts as grade 0. Gains are exponential (2**grade - 1), the usual NDCG choice that
rewards a grade-2 product over a grade-1 one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

METRIC_NAMES = ("ndcg@10", "mrr@10", "map@100", "recall@100", "p@10")


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranking: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    gains = [2 ** grades.get(doc, 0) - 1 for doc in ranking[:k]]
    ideal = sorted((2 ** g - 1 for g in grades.values() if g > 0), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def mrr_at(ranking: Sequence[str], grades: Mapping[str, int], k: int = 10, min_grade: int = 1) -> float:
    for position, doc in enumerate(ranking[:k], start=1):
        if grades.get(doc, 0) >= min_grade:
            return 1.0 / position
    return 0.0


def average_precision_at(ranking: Sequence[str], grades: Mapping[str, int], k: int = 100,
                         min_grade: int = 1) -> float:
    relevant_total = sum(1 for g in grades.values() if g >= min_grade)
    if relevant_total == 0:
        return 0.0
    hits, total = 0, 0.0
    for position, doc in enumerate(ranking[:k], start=1):
        if grades.get(doc, 0) >= min_grade:
            hits += 1
            total += hits / position
    return total / min(relevant_total, k)


def recall_at(ranking: Sequence[str], grades: Mapping[str, int], k: int = 100, min_grade: int = 1) -> float:
    relevant = {d for d, g in grades.items() if g >= min_grade}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def precision_at(ranking: Sequence[str], grades: Mapping[str, int], k: int = 10, min_grade: int = 1) -> float:
    return sum(1 for doc in ranking[:k] if grades.get(doc, 0) >= min_grade) / k


def all_metrics(ranking: Sequence[str], grades: Mapping[str, int]) -> dict[str, float]:
    return {"ndcg@10": ndcg_at(ranking, grades, 10), "mrr@10": mrr_at(ranking, grades, 10),
            "map@100": average_precision_at(ranking, grades, 100), "recall@100": recall_at(ranking, grades, 100),
            "p@10": precision_at(ranking, grades, 10)}

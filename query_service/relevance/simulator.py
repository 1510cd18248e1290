"""A position-biased cascade click model, for testing the experiment pipeline end to end.

The simulated shopper scans the list top-down. At each position she keeps
looking with probability ``patience`` (the position bias), clicks with a
probability set by the judged grade of the product, and after a click stops
with probability ``stop_after_click``. Deterministic per seed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClickModel:
    click_prob: Mapping[int, float] = field(default_factory=lambda: {0: 0.03, 1: 0.25, 2: 0.6})
    patience: float = 0.85
    stop_after_click: float = 0.5
    max_depth: int = 10

    def __post_init__(self) -> None:
        if not all(0 <= p <= 1 for p in self.click_prob.values()):
            raise ValueError("click probabilities must be in [0, 1]")
        if not 0 < self.patience <= 1 or not 0 <= self.stop_after_click <= 1 or self.max_depth < 1:
            raise ValueError("patience in (0, 1], stop_after_click in [0, 1], max_depth >= 1")


def simulate_clicks(ranking: Sequence[str], grades: Mapping[str, int], model: ClickModel,
                    rng: random.Random) -> list[int]:
    """1-based clicked positions for one impression."""
    clicks: list[int] = []
    top_grade = max(model.click_prob)
    for position, doc in enumerate(ranking[: model.max_depth], start=1):
        if position > 1 and rng.random() > model.patience:
            break
        if rng.random() < model.click_prob.get(min(grades.get(doc, 0), top_grade), 0.0):
            clicks.append(position)
            if rng.random() < model.stop_after_click:
                break
    return clicks

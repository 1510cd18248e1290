"""How much two rankings of the same query agree: Jaccard, rank-biased overlap, per-id moves. Pure.

Used by the ranking workbench (``/compare``). Jaccard ignores order; rank-biased
overlap (Webber, Moffat and Zobel 2010, "A similarity measure for indefinite
rankings") weighs agreement at the top more, by the persistence ``p``: with
p = 0.9 the first 10 ranks carry about 86% of the weight, which is what a shopper
sees. We report the extrapolated form (RBO_ext, their eq. 32), which handles lists
of different lengths and gives 1.0 for identical lists and 0.0 for disjoint ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_P = 0.9


def _dedupe(ids: Sequence[str]) -> list[str]:
    """First occurrence wins: a ranking lists a document once (as fusion does)."""
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ids:
        if doc_id not in seen:
            seen.add(doc_id)
            out.append(doc_id)
    return out


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    """|A ∩ B| / |A ∪ B|; two empty rankings agree completely."""
    left, right = set(a), set(b)
    union = left | right
    return 1.0 if not union else len(left & right) / len(union)


def rbo(a: Sequence[str], b: Sequence[str], p: float = DEFAULT_P) -> float:
    """Extrapolated rank-biased overlap of two rankings (best first), in [0, 1]."""
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    left, right = _dedupe(a), _dedupe(b)
    if not left and not right:
        return 1.0
    if not left or not right:
        return 0.0
    short, long_ = (left, right) if len(left) <= len(right) else (right, left)
    s, l = len(short), len(long_)
    seen_short: set[str] = set()
    seen_long: set[str] = set()
    overlap = 0  # X_d: items shared by the first d of each (the whole short list once d > s)
    total = 0.0
    x_s = 0
    for d in range(1, l + 1):
        item_long = long_[d - 1]
        if d <= s:
            item_short = short[d - 1]
            overlap += (item_short in seen_long) + (item_long in seen_short) + (item_short == item_long)
            seen_short.add(item_short)
        else:
            overlap += item_long in seen_short
        seen_long.add(item_long)
        if d == s:
            x_s = overlap
        total += overlap / d * p ** d
        if d > s:
            total += x_s * (d - s) / (s * d) * p ** d
    extrapolated = ((overlap - x_s) / l + x_s / s) * p ** l
    return min(1.0, (1 - p) / p * total + extrapolated)


@dataclass(frozen=True)
class Movement:
    """Where one document went from the left ranking to the right one (ranks from 1)."""

    doc_id: str
    left_rank: int | None
    right_rank: int | None

    @property
    def status(self) -> str:
        if self.left_rank is None:
            return "new"
        if self.right_rank is None:
            return "dropped"
        if self.right_rank < self.left_rank:
            return "up"
        return "down" if self.right_rank > self.left_rank else "same"

    def to_dict(self) -> dict[str, Any]:
        shift = None if self.left_rank is None or self.right_rank is None else self.left_rank - self.right_rank
        return {"id": self.doc_id, "left_rank": self.left_rank, "right_rank": self.right_rank,
                "status": self.status, "shift": shift}


def movements(left: Sequence[str], right: Sequence[str]) -> list[Movement]:
    """Every id of the right ranking in its order, then the ids the right ranking dropped (in left order)."""
    left_ids, right_ids = _dedupe(left), _dedupe(right)
    left_rank = {doc_id: rank for rank, doc_id in enumerate(left_ids, 1)}
    right_rank = {doc_id: rank for rank, doc_id in enumerate(right_ids, 1)}
    shown = [Movement(doc_id, left_rank.get(doc_id), rank) for doc_id, rank in right_rank.items()]
    dropped = [Movement(doc_id, rank, None) for doc_id, rank in left_rank.items() if doc_id not in right_rank]
    return shown + dropped


def compare_ids(left: Sequence[str], right: Sequence[str], p: float = DEFAULT_P) -> dict[str, Any]:
    """The workbench's overlap figures and per-id statuses for two id lists."""
    moves = movements(left, right)
    counts = {status: sum(m.status == status for m in moves) for status in ("same", "up", "down", "new", "dropped")}
    return {"jaccard": jaccard(left, right), "rbo": rbo(left, right, p), "p": p, "counts": counts,
            "movements": [m.to_dict() for m in moves]}

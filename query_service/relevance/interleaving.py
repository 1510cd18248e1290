"""Team-draft interleaving (Radlinski et al., 2008): pure functions.

Each round a coin decides which team picks first; each team then adds its
highest-ranked document not yet in the list. A click credits the team that
contributed the clicked document; per impression the team with more credited
clicks wins (equal counts, including none, are ties).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def team_draft(ids_a: Sequence[str], ids_b: Sequence[str], seed: int,
               length: int | None = None) -> tuple[list[str], list[str]]:
    """(merged ids, team "A"/"B" of each position). Deterministic for a seed."""
    rng = random.Random(seed)
    limit = length if length is not None else len(set(ids_a) | set(ids_b))
    merged: list[str] = []
    teams: list[str] = []
    seen: set[str] = set()
    pointer = {"A": 0, "B": 0}
    lists = {"A": list(ids_a), "B": list(ids_b)}

    def next_of(team: str) -> str | None:
        ranking = lists[team]
        while pointer[team] < len(ranking) and ranking[pointer[team]] in seen:
            pointer[team] += 1
        return ranking[pointer[team]] if pointer[team] < len(ranking) else None

    while len(merged) < limit:
        order = ["A", "B"] if rng.random() < 0.5 else ["B", "A"]
        added = False
        for team in order:
            if len(merged) >= limit:
                break
            doc = next_of(team)
            if doc is None:
                continue
            merged.append(doc)
            teams.append(team)
            seen.add(doc)
            added = True
        if not added:
            break
    return merged, teams


@dataclass(frozen=True)
class Outcome:
    wins_a: int
    wins_b: int
    ties: int

    @property
    def impressions(self) -> int:
        return self.wins_a + self.wins_b + self.ties


def credit(teams: Sequence[str], clicked_positions: Sequence[int]) -> str:
    """"A", "B" or "tie" for one impression; positions are 1-based."""
    score = {"A": 0, "B": 0}
    for position in clicked_positions:
        if 1 <= position <= len(teams):
            score[teams[position - 1]] += 1
    if score["A"] == score["B"]:
        return "tie"
    return "A" if score["A"] > score["B"] else "B"


def tally(results: Sequence[str]) -> Outcome:
    return Outcome(wins_a=sum(r == "A" for r in results), wins_b=sum(r == "B" for r in results),
                   ties=sum(r == "tie" for r in results))


def interleave_search(engine: Any, search_request: Any, assignment: Any, unit_id: str) -> dict[str, Any]:
    """One interleaved result: both teams' rankings from the engine, merged by team draft.

    Both rankings must cover the requested page; SearchRequest caps size, so deep pages
    of an interleaved list are limited to the first MAX_SIZE positions. The seed is the
    unit and the query, so a shopper sees the same merge when they repeat a search.
    """
    from query_service.ranking import MAX_SIZE, RankingConfig

    deep = dataclasses.replace(search_request, offset=0,
                               size=min(MAX_SIZE, search_request.offset + search_request.size))
    results = {team: engine.search(deep, RankingConfig.from_dict({"name": team, **raw}))
               for team, raw in assignment.rankings.items()}
    a, b = results["A"], results["B"]
    seed = int(hashlib.sha256(f"{unit_id}|{search_request.text}".encode()).hexdigest()[:8], 16)
    merged, teams = team_draft([h["_id"] for h in a["hits"]], [h["_id"] for h in b["hits"]], seed)
    by_id = {h["_id"]: h for h in b["hits"]} | {h["_id"]: h for h in a["hits"]}
    start, end = search_request.offset, search_request.offset + search_request.size
    return {**a, "variant": f"interleave:{assignment.experiment_id}", "hits": [by_id[i] for i in merged[start:end]],
            "teams": teams[start:end], "degraded": sorted(set(a["degraded"]) | set(b["degraded"]))}

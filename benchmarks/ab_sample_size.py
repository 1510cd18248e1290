"""How many sessions do A/B testing and team-draft interleaving need to detect a better ranker?

Both variants' rankings for every judged query come from the real engine on the
live index (one pass each). Sessions are then simulated with the cascade click
model: a random query, the variant's (or the interleaved) top 10, clicks by
judged grade. For a ladder of session counts we repeat each experiment with
different seeds and report the power (share of repetitions reaching p < 0.05):
A/B on CTR with a two-proportion z-test, interleaving with the sign test.

    ES_URL=... python benchmarks/ab_sample_size.py --alias relevance-products --model DIR \
        --judgments .state/relevance/dev_judgments.jsonl --a docs/relevance/variants/baselines.yaml:bm25 \
        --b docs/relevance/variants/tuned.yaml:tuned-hybrid --out docs/relevance/sample_size.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from mmsearch.capabilities import detect_capabilities
from mmsearch.config import Settings
from onnx_models.runtime import Encoder
from query_service.engine import SearchEngine
from query_service.relevance import stats
from query_service.relevance.evaluate import load_variants, run_variants
from query_service.relevance.interleaving import credit, team_draft
from query_service.relevance.judgments import read_jsonl
from query_service.relevance.simulator import ClickModel, simulate_clicks

LADDER = (25, 40, 60, 90, 135, 200, 300, 450, 700, 1000, 1500, 2250, 3400, 5000, 7500, 11000, 16000)


def pick(spec: str):
    path, name = spec.rsplit(":", 1)
    return next(v for v in load_variants(Path(path)) if v.name == name)


def ab_power(rank_a, rank_b, judgments, sessions, reps, model, alpha=0.05):
    hits = 0
    for rep in range(reps):
        rng = random.Random(1000 + rep)
        clicked = {"A": 0, "B": 0}
        shown = {"A": 0, "B": 0}
        for _ in range(sessions):
            j = rng.choice(judgments)
            arm = "A" if rng.random() < 0.5 else "B"
            ranking = (rank_a if arm == "A" else rank_b)[j.qid][:10]
            shown[arm] += 1
            clicked[arm] += bool(simulate_clicks(ranking, j.grades, model, rng))
        _, p = stats.two_proportion_z(clicked["A"], shown["A"], clicked["B"], shown["B"])
        hits += p < alpha and clicked["B"] / max(1, shown["B"]) > clicked["A"] / max(1, shown["A"])
    return hits / reps


def interleave_power(rank_a, rank_b, judgments, sessions, reps, model, alpha=0.05):
    hits = 0
    for rep in range(reps):
        rng = random.Random(2000 + rep)
        wins = {"A": 0, "B": 0, "tie": 0}
        for _ in range(sessions):
            j = rng.choice(judgments)
            merged, teams = team_draft(rank_a[j.qid], rank_b[j.qid], seed=rng.randrange(1 << 30), length=10)
            wins[credit(teams, simulate_clicks(merged, j.grades, model, rng))] += 1
        p = stats.binomial_two_sided(wins["B"], wins["A"])
        hits += p < alpha and wins["B"] > wins["A"]
    return hits / reps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alias", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--judgments", type=Path, required=True)
    parser.add_argument("--a", required=True, help="variants.yaml:name of the baseline")
    parser.add_argument("--b", required=True, help="variants.yaml:name of the candidate")
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    settings = Settings.load(products_alias=args.alias)
    es = settings.es_client()
    engine = SearchEngine(es, Encoder.load(args.model), settings, detect_capabilities(es))
    judgments = read_jsonl(args.judgments)
    a, b = pick(args.a), pick(args.b)
    started = time.time()
    rankings = run_variants(engine, judgments, [a, b])
    model = ClickModel()
    rows = []
    for sessions in LADDER:
        row = {"sessions": sessions,
               "ab_power": ab_power(rankings[a.name], rankings[b.name], judgments, sessions, args.reps, model),
               "interleaving_power": interleave_power(rankings[a.name], rankings[b.name], judgments, sessions,
                                                      args.reps, model)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if row["ab_power"] >= 0.8 and row["interleaving_power"] >= 0.8:
            break

    def needed(key: str):
        return next((r["sessions"] for r in rows if r[key] >= 0.8), None)

    result = {"a": a.name, "b": b.name, "queries": len(judgments), "reps_per_point": args.reps,
              "click_model": {"click_prob": ClickModel().click_prob, "patience": model.patience,
                              "stop_after_click": model.stop_after_click},
              "ladder": rows, "sessions_for_80pct_power": {"ab": needed("ab_power"),
                                                           "interleaving": needed("interleaving_power")},
              "seconds": round(time.time() - started, 1)}
    print(json.dumps(result["sessions_for_80pct_power"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""A/B and interleaving reports from exposure and click events: pure functions.

Per variant: units, impressions, CTR (impressions with at least one click),
MRR of clicks (1 / position of the first click, 0 without a click), zero-result
rate and p95 latency, each with a 95% interval; each variant against the first
(control) with a significance test; and the sample-ratio-mismatch guard. A
failed SRM check means the split itself is broken and the other numbers must
not be trusted, so the report says so first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from query_service.relevance import stats
from query_service.relevance.interleaving import credit, tally

SRM_ALPHA = 0.001  # strict on purpose: a real SRM is usually glaring, a false alarm stops a good test


def _clicks_by_query(events: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    clicks: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.get("type") == "click" and event.get("query_id") and event.get("position"):
            clicks[str(event["query_id"])].append(int(event["position"]))
    return clicks


def ab_report(exposures: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]],
              shares: Mapping[str, float], alpha: float = 0.05) -> dict[str, Any]:
    clicks = _clicks_by_query(events)
    per: dict[str, dict[str, Any]] = {name: {"units": set(), "impressions": 0, "clicked": 0, "rr": [],
                                             "zero": 0, "latency": []} for name in shares}
    for exposure in exposures:
        variant = exposure.get("variant")
        if variant not in per:
            continue
        row = per[variant]
        row["units"].add(exposure.get("unit_id"))
        row["impressions"] += 1
        positions = sorted(clicks.get(str(exposure.get("query_id")), []))
        row["clicked"] += bool(positions)
        row["rr"].append(1.0 / positions[0] if positions else 0.0)
        row["zero"] += int(exposure.get("total", len(exposure.get("ids") or [])) == 0)
        if exposure.get("took_ms") is not None:
            row["latency"].append(float(exposure["took_ms"]))
    names = list(shares)
    srm_stat, srm_p = stats.srm_chi_square([len(per[n]["units"]) for n in names], [shares[n] for n in names])
    variants: dict[str, Any] = {}
    control = names[0]
    for name in names:
        row = per[name]
        n = row["impressions"]
        entry = {
            "units": len(row["units"]), "impressions": n,
            "ctr": row["clicked"] / n if n else 0.0, "ctr_ci": stats.proportion_ci(row["clicked"], n),
            "mrr": stats.mean(row["rr"]), "mrr_ci": stats.bootstrap_ci(row["rr"], seed=1),
            "zero_result_rate": row["zero"] / n if n else 0.0, "zero_result_ci": stats.proportion_ci(row["zero"], n),
            "p95_latency_ms": stats.percentile(row["latency"], 95),
        }
        if name != control:
            base = per[control]
            diff, p_ctr = stats.two_proportion_z(base["clicked"], base["impressions"], row["clicked"], n)
            entry["vs_control"] = {"ctr_diff": diff, "ctr_p": p_ctr, "ctr_significant": p_ctr < alpha,
                                   "mrr_diff": entry["mrr"] - stats.mean(base["rr"]),
                                   "mrr_p": _unpaired_p(base["rr"], row["rr"])}
        variants[name] = entry
    return {"srm": {"chi_square": srm_stat, "p": srm_p, "ok": srm_p >= SRM_ALPHA}, "variants": variants,
            "control": control, "alpha": alpha}


def _unpaired_p(a: list[float], b: list[float]) -> float:
    """Welch z-test on two means (large-sample), two-sided."""
    if len(a) < 2 or len(b) < 2:
        return 1.0
    ma, mb = stats.mean(a), stats.mean(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = (va / len(a) + vb / len(b)) ** 0.5
    return 1.0 if se == 0 else 2 * stats.normal_sf(abs(mb - ma) / se)


def interleaving_report(exposures: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]],
                        alpha: float = 0.05) -> dict[str, Any]:
    clicks = _clicks_by_query(events)
    results = [credit(exposure.get("teams") or [], clicks.get(str(exposure.get("query_id")), []))
               for exposure in exposures if exposure.get("teams")]
    outcome = tally(results)
    p = stats.binomial_two_sided(outcome.wins_a, outcome.wins_b)
    decided = outcome.wins_a + outcome.wins_b
    return {"impressions": outcome.impressions, "wins_a": outcome.wins_a, "wins_b": outcome.wins_b,
            "ties": outcome.ties, "p": p, "significant": p < alpha,
            "preference_b": (outcome.wins_b - outcome.wins_a) / decided if decided else 0.0,
            "winner": ("B" if outcome.wins_b > outcome.wins_a else "A") if p < alpha else None}

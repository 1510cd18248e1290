"""Offline evaluation: run ranking variants through the real ``SearchEngine`` and compare them.

The I/O is one function (``run_variants``); scoring, summaries and paired
comparisons are pure, so they are unit-testable with hand-made rankings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmsearch.exceptions import ConfigError
from query_service.ranking import MAX_SIZE, RankingConfig, SearchRequest
from query_service.relevance import metrics, stats
from query_service.relevance.judgments import Judgment

Rankings = dict[str, list[str]]  # qid -> ranked doc ids


def load_variants(path: Path) -> list[RankingConfig]:
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    items = data.get("variants") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ConfigError("variants file must hold a list of ranking configs (or {variants: [...]})", path=str(path))
    variants = [RankingConfig.from_dict(item) for item in items]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError("variant names must be unique", names=names)
    return variants


def request_for(judgment: Judgment, catalog_dir: Path | None, size: int = MAX_SIZE) -> SearchRequest:
    image = None
    if judgment.image:
        if catalog_dir is None:
            raise ConfigError("image judgments need --catalog to find the image", qid=judgment.qid)
        image = (Path(catalog_dir) / judgment.image).read_bytes()
    return SearchRequest(text=judgment.query, image=image, size=size, explain=False)


def run_variants(engine: Any, judgments: Sequence[Judgment], variants: Sequence[RankingConfig],
                 catalog_dir: Path | None = None) -> dict[str, Rankings]:
    out: dict[str, Rankings] = {}
    for ranking in variants:
        out[ranking.name] = {}
        for judgment in judgments:
            response = engine.search(request_for(judgment, catalog_dir), ranking)
            out[ranking.name][judgment.qid] = [hit["_id"] for hit in response["hits"]]
    return out


def score(rankings: Mapping[str, Rankings], judgments: Sequence[Judgment]) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> qid -> metric -> value."""
    return {variant: {j.qid: metrics.all_metrics(per_query.get(j.qid, []), j.grades) for j in judgments}
            for variant, per_query in rankings.items()}


def summarize(per_query: Mapping[str, Mapping[str, Mapping[str, float]]], baseline: str | None = None,
              seed: int = 0, classes: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Means with 95% bootstrap CIs, and each variant vs the baseline (paired randomization test).

    With ``classes`` (qid -> query classes) that name any class, the summary also holds
    ``by_class`` (see :func:`summarize_by_class`); without, it is exactly as before.
    """
    variants = list(per_query)
    baseline = baseline or variants[0]
    qids = sorted(per_query[baseline])
    summary: dict[str, Any] = {"baseline": baseline, "queries": len(qids), "variants": {}}
    for variant in variants:
        entry: dict[str, Any] = {}
        for name in metrics.METRIC_NAMES:
            values = [per_query[variant][q][name] for q in qids]
            entry[name] = {"mean": stats.mean(values), "ci95": stats.bootstrap_ci(values, seed=seed)}
        if variant != baseline:
            a = [per_query[baseline][q]["ndcg@10"] for q in qids]
            b = [per_query[variant][q]["ndcg@10"] for q in qids]
            diffs = [y - x for x, y in zip(a, b)]
            entry["vs_baseline_ndcg@10"] = {"diff": stats.mean(diffs), "ci95": stats.bootstrap_ci(diffs, seed=seed),
                                            "p": stats.paired_randomization(a, b, seed=seed),
                                            "wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs)}
        summary["variants"][variant] = entry
    if classes and any(classes.get(q) for q in qids):
        summary["by_class"] = summarize_by_class(per_query, classes, seed=seed)
    return summary


#: Classes listed first in per-class reports (the rest follow alphabetically).
CLASS_ORDER = ("colour", "no_colour", "gender", "no_gender")


def summarize_by_class(per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
                       classes: Mapping[str, Sequence[str]], metric: str = "ndcg@10",
                       seed: int = 0) -> dict[str, Any]:
    """class -> {"queries": n, "variants": {variant: {"mean", "ci95"}}} of ``metric``.

    A query counts in every class it lists, so the classes overlap; a class's CI is
    the bootstrap of its own queries only (small classes get wide intervals, as they should).
    """
    variants = list(per_query)
    qids = sorted(per_query[variants[0]]) if variants else []
    members: dict[str, list[str]] = {}
    for qid in qids:
        for name in classes.get(qid, ()):
            members.setdefault(name, []).append(qid)
    order = sorted(members, key=lambda c: (CLASS_ORDER.index(c) if c in CLASS_ORDER else len(CLASS_ORDER), c))
    out: dict[str, Any] = {}
    for name in order:
        entry: dict[str, Any] = {"queries": len(members[name]), "variants": {}}
        for variant in variants:
            values = [per_query[variant][q][metric] for q in members[name]]
            entry["variants"][variant] = {"mean": stats.mean(values), "ci95": stats.bootstrap_ci(values, seed=seed)}
        out[name] = entry
    return out


def class_table(by_class: Mapping[str, Any], metric: str = "NDCG@10") -> str:
    """Markdown: one row per query class, one column per variant (mean [95% CI])."""
    variants = list(next(iter(by_class.values()))["variants"]) if by_class else []
    lines = [f"{metric} by query class (a query counts in every class it has)", "",
             "| class | queries | " + " | ".join(variants) + " |", "|---" * (len(variants) + 2) + "|"]
    for name, entry in by_class.items():
        cells = [f"{v['mean']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" for v in entry["variants"].values()]
        lines.append(f"| {name} | {entry['queries']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(summary: Mapping[str, Any]) -> str:
    lines = ["| variant | " + " | ".join(metrics.METRIC_NAMES) + f" | Δ NDCG@10 vs {summary['baseline']} (p) |",
             "|---" * (len(metrics.METRIC_NAMES) + 2) + "|"]
    for variant, entry in summary["variants"].items():
        cells = [f"{entry[m]['mean']:.3f} [{entry[m]['ci95'][0]:.3f}, {entry[m]['ci95'][1]:.3f}]"
                 for m in metrics.METRIC_NAMES]
        versus = entry.get("vs_baseline_ndcg@10")
        delta = f"{versus['diff']:+.3f} (p={versus['p']:.3g})" if versus else "—"
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {delta} |")
    if summary.get("by_class"):
        lines += ["", class_table(summary["by_class"])]
    return "\n".join(lines)


def plot_deltas(per_query: Mapping[str, Mapping[str, Mapping[str, float]]], baseline: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [v for v in per_query if v != baseline]
    qids = sorted(per_query[baseline])
    fig, axes = plt.subplots(len(others), 1, figsize=(10, 2.2 * max(1, len(others))), squeeze=False)
    for axis, variant in zip(axes[:, 0], others):
        deltas = sorted(per_query[variant][q]["ndcg@10"] - per_query[baseline][q]["ndcg@10"] for q in qids)
        axis.bar(range(len(deltas)), deltas, color=["#c0392b" if d < 0 else "#27ae60" for d in deltas], width=1.0)
        axis.axhline(0, color="black", linewidth=0.5)
        axis.set_ylabel("Δ NDCG@10")
        axis.set_title(f"{variant} vs {baseline}: per-query delta (sorted)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(per_query: Mapping[str, Any], summary: Mapping[str, Any], out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "per_query.json").write_text(json.dumps(per_query, indent=1))
    (out_dir / "table.md").write_text(markdown_table(summary) + "\n")
    plot_deltas(per_query, summary["baseline"], out_dir / "per_query_deltas.png")
    return {"summary": str(out_dir / "summary.json"), "table": str(out_dir / "table.md"),
            "plot": str(out_dir / "per_query_deltas.png")}

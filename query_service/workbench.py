"""The ranking workbench behind ``/compare`` and the search page's modes: no HTTP here.

- ``named_rankings``: the rankings a relevance engineer can pick by name: the deployment's
  default, the search page's modes, and each running experiment's variants;
- ``compare``: one query under two rankings (named or ad hoc), with ``overlap.compare_ids``;
- ``eval_deltas``: per-query deltas between two rankings of an ``mmsearch eval run``
  ``per_query.json``, with the query texts of its judgments file where given;
- ``parse_variants``: a variants file (the one ``eval run`` read), so eval rows open with
  exactly the rankings they were scored with.

The workbench searches with ``SearchEngine.search`` directly, not ``SearchService.search``:
an engineer's comparison is not a shopper's exposure, and logging it would pollute A/B data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mmsearch.exceptions import MMSearchError, RequestValidationError
from query_service import validation
from query_service.overlap import DEFAULT_P, compare_ids
from query_service.ranking import RankingConfig

#: The search page's mode selector; ``hybrid`` sends no ranking, so the deployment's default
#: (and any A/B assignment) applies.
MODES: dict[str, dict[str, Any] | None] = {
    "hybrid": None,
    "keyword": {"legs": {"bm25": 1.0}},
    "semantic": {"legs": {"text_text": 1.0, "text_image": 1.0, "image_image": 1.0, "image_text": 1.0}},
}
MAX_COMPARE_SIZE = 50


def named_rankings(service: Any) -> dict[str, dict[str, Any]]:
    """name -> ranking overrides of every ranking the workbench offers by name."""
    named: dict[str, dict[str, Any]] = {"default": {}}
    named.update({name: dict(overrides) for name, overrides in MODES.items() if overrides is not None})
    named["hybrid-linear"] = {"method": "linear", "normalization": "min_max"}
    config = getattr(getattr(service, "experiments", None), "config", None)
    for variant in getattr(config, "variants", ()):
        named[f"{config.id}:{variant.name}"] = {"name": variant.name, **dict(variant.ranking)}
    return named


def _side_overrides(side: Any, named: Mapping[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    if not isinstance(side, Mapping):
        raise RequestValidationError("each side is an object: {\"variant\": name} or {\"ranking\": {...}}")
    if "variant" in side:
        name = side["variant"]
        if name not in named:
            raise RequestValidationError("unknown variant", variant=str(name)[:100], known=sorted(named))
        return str(name), dict(named[name])
    ranking = side.get("ranking")
    if not isinstance(ranking, Mapping):
        raise RequestValidationError("each side needs a variant name or a ranking object")
    return str(ranking.get("name") or "ad hoc"), dict(ranking)


def compare(service: Any, body: Any, limits: validation.ServiceLimits) -> dict[str, Any]:
    """Both rankings of one text query, their overlap figures and every id's movement."""
    if not isinstance(body, Mapping):
        raise RequestValidationError("send a JSON object: {text, size, left, right}")
    size = body.get("size", 20)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_COMPARE_SIZE:
        raise RequestValidationError(f"size must be an integer in [1, {MAX_COMPARE_SIZE}]")
    p = body.get("p", DEFAULT_P)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p < 1:
        raise RequestValidationError("p must be a number in (0, 1)")
    named = named_rankings(service)
    sides: dict[str, Any] = {}
    for key in ("left", "right"):
        label, overrides = _side_overrides(body.get(key), named)
        request, _, _ = validation.from_json({"text": body.get("text") or "", "size": size}, limits)
        result = service.engine.search(request, service.ranking_for(overrides))
        sides[key] = {"label": label, "ranking": overrides, "result": result}
    ids = {key: [hit["_id"] for hit in side["result"]["hits"]] for key, side in sides.items()}
    return {**sides, "overlap": compare_ids(ids["left"], ids["right"], float(p))}


def _metric_table(per_query: Any) -> dict[str, dict[str, dict[str, float]]]:
    """``per_query.json`` checked: {ranking: {qid: {metric: number}}}."""
    if not isinstance(per_query, Mapping) or not per_query:
        raise RequestValidationError("per_query must be the object `mmsearch eval run` writes: "
                                     "{ranking: {qid: {metric: value}}}")
    for ranking, rows in per_query.items():
        if not isinstance(rows, Mapping) or not all(
                isinstance(m, Mapping) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in m.values()) for m in rows.values()):
            raise RequestValidationError("per_query rows must map qids to {metric: number}", ranking=str(ranking))
    return per_query  # type: ignore[return-value]


def queries_of_judgments(text: str | None) -> dict[str, str]:
    """qid -> query text from a judgments JSONL; lines that are not judgments are skipped (labels only)."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("qid"), str) and isinstance(row.get("query"), str):
            out[row["qid"]] = row["query"]
    return out


def eval_deltas(per_query: Any, baseline: str | None, candidate: str | None, metric: str | None,
                queries: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Per query: candidate − baseline on one metric, worst first (what a change breaks comes first)."""
    table = _metric_table(per_query)
    rankings = list(table)
    baseline = baseline or rankings[0]
    candidate = candidate or rankings[-1]
    for name in (baseline, candidate):
        if name not in table:
            raise RequestValidationError("unknown ranking in the eval file", ranking=str(name), known=rankings)
    metrics = sorted({m for rows in table.values() for row in rows.values() for m in row})
    metric = metric or ("ndcg@10" if "ndcg@10" in metrics else metrics[0])
    if metric not in metrics:
        raise RequestValidationError("unknown metric in the eval file", metric=str(metric), known=metrics)
    rows = []
    for qid, base_row in table[baseline].items():
        cand_row = table[candidate].get(qid)
        if cand_row is None or metric not in base_row or metric not in cand_row:
            continue
        rows.append({"qid": qid, "query": (queries or {}).get(qid), "baseline": float(base_row[metric]),
                     "candidate": float(cand_row[metric]), "delta": float(cand_row[metric]) - float(base_row[metric])})
    rows.sort(key=lambda r: (r["delta"], r["qid"]))
    deltas = [r["delta"] for r in rows]
    summary = {"queries": len(rows), "mean_delta": sum(deltas) / len(deltas) if deltas else 0.0,
               "improved": sum(d > 0 for d in deltas), "worse": sum(d < 0 for d in deltas),
               "same": sum(d == 0 for d in deltas)}
    return {"rankings": rankings, "metrics": metrics, "baseline": baseline, "candidate": candidate,
            "metric": metric, "rows": rows, "summary": summary}


def parse_variants(text: str | None) -> list[dict[str, Any]]:
    """A variants file's text (YAML or JSON, a list or {variants: [...]}) -> [{name, ranking}], validated."""
    if not text:
        return []
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RequestValidationError(f"the variants file is not valid YAML/JSON: {str(exc)[:200]}") from None
    items = data.get("variants") if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(item, dict) and item.get("name") for item in items):
        raise RequestValidationError("a variants file holds a list of named ranking configs (or {variants: [...]})")
    out = []
    for item in items:
        try:
            RankingConfig.from_dict(item)
        except MMSearchError as exc:
            raise RequestValidationError(f"variant {item['name']!r}: {exc.message}") from None
        out.append({"name": str(item["name"]), "ranking": item})
    return out

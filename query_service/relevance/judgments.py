"""Judgments: a JSONL format, the catalog-attribute generator, and CSV import of human labels.

One JSONL line per query::

    {"qid": "d000", "query": "women's purple sweaters", "image": null,
     "grades": {"15970": 2, "15971": 1}}

``image`` is an optional path (relative to the catalog) for image queries. Only
grades > 0 are stored; every unlisted product is grade 0. Optional ``classes`` (query
classes for per-class reports, e.g. ``["colour", "no_gender", "misspelling"]``) and
``source_id`` (the product whose photo a composed query shows) are written only when
set, so judgments without them keep their old form.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch.exceptions import ConfigError


@dataclass(frozen=True)
class Judgment:
    qid: str
    query: str | None
    grades: Mapping[str, int]
    image: str | None = None
    intent: Mapping[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    source_id: str | None = None

    def __post_init__(self) -> None:
        if not self.qid:
            raise ConfigError("a judgment needs a qid")
        if not self.query and not self.image:
            raise ConfigError("a judgment needs a query text or an image", qid=self.qid)
        for doc, grade in self.grades.items():
            if not isinstance(grade, int) or grade < 0:
                raise ConfigError("grades must be non-negative integers", qid=self.qid, doc=doc, grade=grade)
        if isinstance(self.classes, str) or not all(isinstance(c, str) and c for c in self.classes):
            raise ConfigError("classes must be a list of non-empty strings", qid=self.qid)

    def to_dict(self) -> dict[str, Any]:
        out = {"qid": self.qid, "query": self.query, "image": self.image, "intent": dict(self.intent)}
        if self.source_id is not None:
            out["source_id"] = self.source_id
        if self.classes:
            out["classes"] = list(self.classes)
        out["grades"] = dict(self.grades)
        return out


def grade(product: Mapping[str, Any], intent: Mapping[str, Any]) -> int:
    """The rule in the catalog README: type must match, gender compatible, colour decides 2 vs 1."""
    if product.get("article_type") != intent.get("type"):
        return 0
    gender = intent.get("gender")
    if gender is not None and product.get("gender") not in (gender, "Unisex"):
        return 0
    colour = intent.get("colour")
    return 2 if colour is None or product.get("base_colour") == colour else 1


def _optional_id(value: Any) -> str | None:
    return None if value is None else str(value)


def generate(products: Iterable[Mapping[str, Any]], queries: Iterable[Mapping[str, Any]]) -> list[Judgment]:
    """Grade every product for every query's intent; the query's image, classes and source_id carry over."""
    by_type: dict[Any, list[Mapping[str, Any]]] = {}
    for product in products:  # grade() is 0 unless the type matches: only look at that type's products
        by_type.setdefault(product.get("article_type"), []).append(product)
    out = []
    for query in queries:
        intent = query["intent"]
        grades = {str(p["id"]): g for p in by_type.get(intent.get("type"), ()) if (g := grade(p, intent)) > 0}
        out.append(Judgment(qid=str(query["qid"]), query=query.get("query"), grades=grades, intent=intent,
                            image=query.get("image"), classes=tuple(query.get("classes") or ()),
                            source_id=_optional_id(query.get("source_id"))))
    return out


def write_jsonl(judgments: Iterable[Judgment], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as sink:
        for judgment in judgments:
            sink.write(json.dumps(judgment.to_dict()) + "\n")


def read_jsonl(path: Path) -> list[Judgment]:
    out = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                out.append(Judgment(qid=str(data["qid"]), query=data.get("query"), image=data.get("image"),
                                    grades={str(k): int(v) for k, v in (data.get("grades") or {}).items()},
                                    intent=data.get("intent") or {}, classes=tuple(data.get("classes") or ()),
                                    source_id=_optional_id(data.get("source_id"))))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError("bad judgments line", path=str(path), line=number, error=str(exc)) from exc
    return out


def import_csv(path: Path) -> list[Judgment]:
    """Human labels: columns ``qid,query,doc_id,grade`` (optional ``image``), one row per (query, doc)."""
    by_qid: dict[str, dict[str, Any]] = {}
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"qid", "doc_id", "grade"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError("judgment CSV lacks columns", path=str(path), missing=sorted(missing))
        for number, row in enumerate(reader, start=2):
            try:
                value = int(row["grade"])
            except (TypeError, ValueError):
                raise ConfigError("grade must be an integer", path=str(path), line=number) from None
            entry = by_qid.setdefault(row["qid"], {"query": row.get("query") or None, "image": row.get("image") or None,
                                                   "grades": {}})
            if value > 0:
                entry["grades"][row["doc_id"]] = value
    return [Judgment(qid=qid, query=e["query"], image=e["image"], grades=e["grades"]) for qid, e in by_qid.items()]

"""Photo and text->image retrieval through the engine: the alignment targets of issue 13, measured on the stack.

The queries are the model's held-out products (the training split's ``test`` part: their
photos and titles were never trained on), split again in two halves by a hash of the id:
``tune`` (where the photo-attribute settings of ``query_service.understanding`` were chosen)
and ``test`` (reported, never tuned on). Every query goes through ``SearchEngine.search``
against the whole index (every photo of the catalog is in the gallery):

- ``image->image``: the product's photo on the image->image leg alone, the photo itself
  left out of the top 10; P@10 of the same article type, and of the same type and colour.
- ``text->image``: the product's title on the text->image leg alone; exact-item R@10 (is
  the product itself in the top 10) and P@10 of the same type and colour.

Each runs with query understanding off (the leg as it was) and on (with a package whose image
graph has classifiers, the photo's type and colour re-rank and, when sure, pre-filter).

    ES_URL=... MMSEARCH_ALIAS=relevance-products MMSEARCH_MODEL_DIR=<package> \\
    python benchmarks/photo_queries.py --half test --out docs/relevance/photo_queries_test.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from indexer.catalog import catalog_or_default
from mmsearch.config import Settings
from onnx_models.catalog import SplitConfig, image_records, split_records
from onnx_models.runtime import Encoder
from query_service import understanding
from query_service.engine import SearchEngine
from query_service.ranking import RankingConfig, SearchRequest
from query_service.relevance import stats

UNDERSTANDING = {"off": {"understanding": False}, "on": {}}


def half_of(product_id: str) -> str:
    """A stable half of the held-out products: "tune" or "test" (sha256 of the id, not its order)."""
    return "tune" if hashlib.sha256(f"photo-half:{product_id}".encode()).digest()[0] % 2 == 0 else "test"


def package_split(encoder: Encoder) -> SplitConfig:
    """The train/val/test split the package was trained with (its manifest's ``training.data.split``)."""
    return SplitConfig(**{k: v for k, v in encoder.manifest["training"]["data"]["split"].items() if k != "by"})


def held_out(location: Any, split: SplitConfig, half: str) -> list[dict[str, Any]]:
    return [r for r in split_records(image_records(location), split)["test"] if half_of(str(r["id"])) == half]


def precision(ids: Sequence[str], wanted: Callable[[str], bool], k: int = 10) -> float:
    return sum(wanted(i) for i in ids[:k]) / k


def run_task(engine: SearchEngine, queries: list[dict[str, Any]], labels: dict[str, tuple[str, str]],
             request_of: Callable[[dict[str, Any]], SearchRequest], legs: dict[str, float],
             exclude_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for setting, overrides in UNDERSTANDING.items():
        ranking = RankingConfig().with_overrides({**overrides, "legs": legs})
        per: dict[str, list[float]] = {"p@10_type": [], "p@10_type_colour": [], "r@10_exact": []}
        for record in queries:
            own = str(record["id"])
            hits = [h["_id"] for h in engine.search(request_of(record), ranking)["hits"]]
            ids = [i for i in hits if not (exclude_self and i == own)][:10]
            kind, colour = labels[own]
            per["p@10_type"].append(precision(ids, lambda i: labels.get(i, ("", ""))[0] == kind))
            per["p@10_type_colour"].append(precision(ids, lambda i: labels.get(i, ("", "")) == (kind, colour)))
            per["r@10_exact"].append(float(own in ids))
        out[setting] = {name: {"mean": statistics.mean(values), "ci95": list(stats.bootstrap_ci(values))}
                        for name, values in per.items() if not (exclude_self and name == "r@10_exact")}
        out[setting]["p@10_type_colour_per_query"] = [round(v, 3) for v in per["p@10_type_colour"]]
        print(setting, json.dumps({k: v for k, v in out[setting].items() if not k.endswith("per_query")}), flush=True)
    on, off = out["on"]["p@10_type_colour_per_query"], out["off"]["p@10_type_colour_per_query"]
    out["on - off p@10_type_colour"] = {"delta": statistics.mean(on) - statistics.mean(off),
                                        "p": stats.paired_randomization(on, off)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, help="catalog directory or file (default: the shared catalog)")
    parser.add_argument("--half", choices=("tune", "test"), required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N queries of the half (a quick look)")
    parser.add_argument("--photo-mass", type=float, default=None,
                        help="override understanding.PHOTO_MASS (the sweep that chose it, on --half tune only)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.photo_mass is not None:
        understanding.PHOTO_MASS = args.photo_mass  # read at parse time
    location = catalog_or_default(args.catalog)
    settings = Settings.load()
    encoder = Encoder.load(settings.model_dir)
    split = package_split(encoder)
    engine = SearchEngine(settings.es_client(), encoder, settings)
    records = image_records(location)
    labels = {str(r["id"]): (str(r.get("article_type") or ""), str(r.get("base_colour") or "")) for r in records}
    queries = held_out(location, split, args.half)[:args.limit]
    root = location.root_dir
    report: dict[str, Any] = {"model": encoder.name, "identity": encoder.identity, "photo_classifiers":
                              sorted(encoder.photo_labels), "half": args.half, "queries": len(queries),
                              "photo_mass": understanding.PHOTO_MASS,
                              "gallery_photos": len(records)}
    print("image->image", flush=True)
    report["image->image"] = run_task(
        engine, queries, labels, lambda r: SearchRequest(image=(root / str(r["image"])).read_bytes(), size=11,
                                                          explain=False),
        {"image_image": 1.0}, exclude_self=True)
    print("text->image", flush=True)
    report["text->image"] = run_task(
        engine, queries, labels, lambda r: SearchRequest(text=str(r.get("title") or ""), size=10, explain=False),
        {"text_image": 1.0}, exclude_self=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

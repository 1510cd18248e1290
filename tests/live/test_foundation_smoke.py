"""Issue 2 acceptance: an index from mappings/, a handful of real products, a BM25 match, delete."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from elasticsearch import helpers

from indexer.catalog import CatalogConfig
from indexer.documents import normalise_record
from mappings import AnalysisConfig, IndexSpec, ModelFacts, build_index_body
from mmsearch.capabilities import detect_capabilities


def test_mapping_bulk_bm25_delete(es, index_name: str, catalog_dir: Path) -> None:
    catalog = CatalogConfig(path=catalog_dir / "products.jsonl")
    with catalog.path.open() as lines:
        records = [json.loads(line) for line in itertools.islice(lines, 3000)]
    shirts = [r for r in records if r.get("article_type") == "Shirts"]
    others = [r for r in records if r.get("article_type") not in ("Shirts",)][:40]
    chosen = shirts[:10] + others
    assert len(shirts) >= 3, "the first 3000 catalog rows should hold a few shirts"

    spec = IndexSpec(model=ModelFacts(identity="bm25-smoke", name="none", dim=8),
                     analysis=AnalysisConfig.for_cluster(detect_capabilities(es)))
    es.indices.create(index=index_name, **build_index_body(spec))
    ok, errors = helpers.bulk(
        es, ({"_index": index_name, "_id": doc["id"], "_source": doc}
             for doc in (normalise_record(r, catalog) for r in chosen)),
        refresh="wait_for", raise_on_error=False)
    assert (ok, errors) == (len(chosen), [])
    assert es.count(index=index_name)["count"] == len(chosen)

    result = es.search(index=index_name, query={"multi_match": {"query": "shirts",
                                                               "fields": ["title^3", "category_path^2", "search_text"]}},
                       size=len(chosen))
    hit_ids = [hit["_id"] for hit in result["hits"]["hits"]]
    shirt_ids = {r["id"] for r in shirts[:10]}
    # Every shirt matches (its category path says Shirts) and they rank above the rest.
    assert shirt_ids <= set(hit_ids)
    assert set(hit_ids[: len(shirt_ids)]) == shirt_ids
    assert es.get(index=index_name, id=hit_ids[0])["_source"]["article_type"] == "Shirts"

    es.indices.delete(index=index_name)
    assert not es.indices.exists(index=index_name)

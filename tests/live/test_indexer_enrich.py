"""Drop-in enrichment of a legacy keyword index, created the way a plain keyword-search app would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from elasticsearch.helpers import bulk

from indexer.enrich import EnrichConfig, enrich
from indexer.lifecycle import alias_targets, count, index_meta
from indexer.pipeline import PipelineConfig
from mmsearch.exceptions import ConfigError

QUIET = PipelineConfig(progress=False)
LEGACY_MAPPING = {
    "dynamic": "strict",
    "properties": {
        "name": {"type": "text", "analyzer": "shop_text", "fields": {"raw": {"type": "keyword"}}},
        "kind": {"type": "keyword"},
        "colour": {"type": "keyword"},
        "gender": {"type": "keyword"},
        "price": {"type": "float"},
        "photo": {"type": "keyword", "index": False},
    },
}
# Analysis the legacy app defined itself with core-only components (works on any distribution).
LEGACY_SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0,
                   "analysis": {"analyzer": {"shop_text": {"type": "custom", "tokenizer": "standard",
                                                           "filter": ["lowercase"]}}}}


def _legacy_index(es: Any, name: str, catalog_dir: Path, n_text: int = 40, n_image: int = 20) -> list[dict]:
    docs, text, image = [], 0, 0
    for line in open(catalog_dir / "products.jsonl", encoding="utf-8"):
        record = json.loads(line)
        has = bool(record.get("image"))
        if (has and image >= n_image) or (not has and text >= n_text):
            continue
        image, text = image + has, text + (not has)
        doc = {"name": record["title"], "kind": record["article_type"], "colour": record["base_colour"],
               "gender": record["gender"], "price": 10.5}
        if has:
            doc["photo"] = record["image"]
        docs.append({"_id": f"sku-{record['id']}", **doc})
        if text >= n_text and image >= n_image:
            break
    es.indices.create(index=name, settings=LEGACY_SETTINGS, mappings=LEGACY_MAPPING)
    bulk(es, ({"_index": name, "_id": d["_id"], "_source": {k: v for k, v in d.items() if k != "_id"}} for d in docs),
         refresh=True)
    return docs


def _app_query(es: Any, name: str) -> list[str]:
    """What the legacy application sends, unchanged before and after the upgrade."""
    response = es.search(index=name, query={"bool": {"must": {"match": {"name": "shirt"}},
                                                      "filter": {"term": {"gender": "Men"}}}}, size=100)
    return sorted(hit["_id"] for hit in response["hits"]["hits"])


def test_enrich_legacy_index_queried_by_name(es, encoder, catalog_dir, index_name, tmp_path):
    legacy = f"{index_name}-shop"
    docs = _legacy_index(es, legacy, catalog_dir)
    before = _app_query(es, legacy)
    assert before
    config = EnrichConfig(source_index=legacy, text_fields=("name", "kind", "colour"), image_field="photo",
                          image_root=catalog_dir, replace_legacy=True)
    result = enrich(es, encoder, config, state_dir=tmp_path, pipeline=QUIET, loaded_identity=encoder.identity)
    target = result["index"]
    assert result["switched"] and result["validation"]["ok"]
    assert result["summary"]["indexed"] == len(docs) == 60 and result["summary"]["with_image_vector"] == 20
    # The legacy name is now an alias of the hybrid index; the old app's query is unchanged.
    assert alias_targets(es, legacy) == [target]
    assert _app_query(es, legacy) == before
    source = es.get(index=legacy, id=docs[0]["_id"])["_source"]
    for key, value in docs[0].items():
        if key != "_id":
            assert source[key] == value  # every original field kept
    assert count(es, legacy, {"exists": {"field": "text_vector"}}) == 60
    assert count(es, legacy, {"exists": {"field": "image_vector"}}) == 20
    mapping = es.indices.get_mapping(index=target)[target]["mappings"]
    assert mapping["properties"]["name"]["analyzer"] == "shop_text" and mapping["dynamic"] == "strict"
    assert mapping["properties"]["text_vector"]["dims"] == encoder.dim
    assert index_meta(es, target)["source"] == f"enrich:{legacy}"
    knn = es.search(index=legacy, knn={"field": "text_vector", "k": 1, "num_candidates": 20,
                                       "query_vector": encoder.encode_texts(["blue shirt"])[0].tolist()})
    assert knn["hits"]["hits"]
    # The enriched index accepts writes again (the block was on the deleted legacy index only).
    es.index(index=legacy, id="new-1", document={"name": "New Shirt", "gender": "Men"}, refresh=True)


def test_enrich_legacy_index_behind_an_alias_swaps_it(es, encoder, catalog_dir, index_name, tmp_path):
    legacy = f"{index_name}-shop-2019"
    _legacy_index(es, legacy, catalog_dir, n_text=15, n_image=5)
    es.indices.update_aliases(actions=[{"add": {"index": legacy, "alias": index_name}}])
    before = _app_query(es, index_name)
    result = enrich(es, encoder, EnrichConfig(source_index=legacy, image_field="photo", image_root=catalog_dir),
                    state_dir=tmp_path, pipeline=QUIET, loaded_identity=encoder.identity)
    assert result["app_name"] == index_name and result["switched"]
    assert alias_targets(es, index_name) == [result["index"]]
    assert es.indices.exists(index=legacy)  # kept for rollback
    assert not es.indices.get_settings(index=legacy)[legacy]["settings"]["index"].get("blocks")
    assert _app_query(es, index_name) == before


def test_enrich_refuses_direct_name_without_explicit_flag(es, encoder, catalog_dir, index_name, tmp_path):
    legacy = f"{index_name}-shop"
    _legacy_index(es, legacy, catalog_dir, n_text=3, n_image=0)
    with pytest.raises(ConfigError, match="--replace-legacy"):
        enrich(es, encoder, EnrichConfig(source_index=legacy), state_dir=tmp_path, pipeline=QUIET)
    assert es.indices.get(index=f"{legacy}*").body.keys() == {legacy}  # nothing created, legacy untouched
    result = enrich(es, encoder, EnrichConfig(source_index=legacy, switch=False), state_dir=tmp_path, pipeline=QUIET)
    assert not result["switched"] and "--replace-legacy" in result["next_step"]
    assert es.indices.exists(index=legacy) and not alias_targets(es, legacy)

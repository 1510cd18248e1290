"""Index templates and the pure loader: fields, vectors, analyzers per capability, enrichment mapping."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mappings import (
    SCHEMA_VERSION, AnalysisConfig, IndexSettings, IndexSpec, ModelFacts, VectorConfig, analysis_settings, build_enriched_body,
    build_index_body, check_mapping_against_model, load_synonyms, load_template,
)
from mmsearch.capabilities import capabilities_from_responses
from mmsearch.exceptions import ConfigError

MODEL = ModelFacts(identity="a" * 64, name="test-model", dim=256)


@dataclass(frozen=True)
class FakeCapabilities:
    english_analyzer_available: bool


def _spec(**kwargs) -> IndexSpec:
    defaults = {"model": MODEL, "analysis": AnalysisConfig(english=False), "source": "unit"}
    defaults.update(kwargs)
    return IndexSpec(**defaults)


def test_template_has_the_architecture_schema_fields():
    props = load_template()["mappings"]["properties"]
    assert props["id"]["type"] == "keyword"
    assert props["title"]["type"] == "text" and props["title"]["fields"]["keyword"]["type"] == "keyword"
    assert props["category_path"]["fields"]["keyword"]["type"] == "keyword"
    for facet in ("gender", "master_category", "sub_category", "article_type", "base_colour", "season", "usage",
                  "brand", "content_hash"):
        assert props[facet]["type"] == "keyword", facet
    assert props["year"]["type"] == "integer"
    assert props["image"]["index"] is False
    assert props["has_image"]["type"] == "boolean"
    copied = {name for name, p in props.items() if p.get("copy_to") == "search_text"}
    assert copied == {"title", "category_path", "gender", "base_colour", "usage", "season", "brand"}


def test_vectors_take_dims_from_model_and_default_to_int8_hnsw():
    body = build_index_body(_spec())
    for name in ("text_vector", "image_vector"):
        field = body["mappings"]["properties"][name]
        assert field["type"] == "dense_vector" and field["dims"] == 256
        assert field["similarity"] == "cosine"
        assert field["index_options"] == {"type": "int8_hnsw", "m": 16, "ef_construction": 100}


@pytest.mark.parametrize("index_type,expected", [
    ("bbq_hnsw", {"type": "bbq_hnsw", "m": 32, "ef_construction": 200}),
    ("hnsw", {"type": "hnsw", "m": 32, "ef_construction": 200}),
    ("flat", {"type": "flat"}),
    ("int8_flat", {"type": "int8_flat"}),
])
def test_index_options_choices(index_type, expected):
    vectors = VectorConfig(index_type=index_type, m=32, ef_construction=200, similarity="dot_product")
    field = build_index_body(_spec(vectors=vectors))["mappings"]["properties"]["text_vector"]
    assert field["index_options"] == expected
    assert field["similarity"] == "dot_product"


@pytest.mark.parametrize("kwargs", [{"index_type": "ivf"}, {"similarity": "l2_norm"}, {"m": 1},
                                    {"m": 64, "ef_construction": 32}])
def test_vector_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        VectorConfig(**kwargs)


def test_bbq_needs_64_dims():
    with pytest.raises(ConfigError, match="64 dims"):
        _spec(model=ModelFacts(identity="x", name="n", dim=32), vectors=VectorConfig(index_type="bbq_hnsw"))


def test_meta_records_model_schema_and_creation():
    meta = build_index_body(_spec())["mappings"]["_meta"]
    assert meta["model_identity"] == "a" * 64 and meta["model_name"] == "test-model" and meta["model_dim"] == 256
    assert meta["schema_version"] == SCHEMA_VERSION and meta["source"] == "unit"
    assert meta["created_at"].endswith("+00:00")
    # Catalog builds write _id = id, so the query engine may read ids from doc values.
    assert meta["doc_id_field"] == "id" and build_index_body(_spec())["mappings"]["properties"]["id"]["type"] == \
        "keyword"
    # An enriched legacy index keeps its own _ids: no such promise.
    assert "doc_id_field" not in build_enriched_body({"properties": {"sku": {"type": "keyword"}}}, {}, _spec())[
        "mappings"]["_meta"]


def test_standard_branch_without_analysis_common():
    analysis = AnalysisConfig.for_cluster(FakeCapabilities(english_analyzer_available=False), load_synonyms())
    assert analysis.name == "standard" and analysis.synonyms == ()
    block = build_index_body(_spec(analysis=analysis))["settings"]["index"]["analysis"]
    assert block["analyzer"]["product_text"] == {"type": "standard"}
    assert "filter" not in block  # nothing that needs analysis-common


def test_english_branch_with_analysis_common_and_synonyms():
    analysis = AnalysisConfig.for_cluster(FakeCapabilities(english_analyzer_available=True), ["tee, tshirt"])
    assert analysis.name == "english+synonyms"
    block = analysis_settings(analysis)
    index_filters = block["analyzer"]["product_text"]["filter"]
    search_filters = block["analyzer"]["product_text_search"]["filter"]
    assert "product_english_stemmer" in index_filters and "product_synonyms" not in index_filters
    # synonyms only at search time, before stemming
    assert search_filters.index("product_synonyms") < search_filters.index("product_english_stemmer")
    assert block["filter"]["product_synonyms"]["synonyms"] == ["tee, tshirt"]
    assert block["filter"]["product_english_stemmer"]["language"] == "light_english"


def test_capability_parsing_drives_the_branch():
    def caps(modules):
        nodes = {"nodes": {"n1": {"version": "9.2.8", "modules": [{"name": m} for m in modules], "plugins": []}}}
        return capabilities_from_responses(nodes, {"license": {"type": "basic"}})

    assert AnalysisConfig.for_cluster(caps(["analysis-common"])).english is True
    assert AnalysisConfig.for_cluster(caps(["x-pack-core"])).english is False


def test_synonyms_without_analysis_common_is_a_config_error():
    with pytest.raises(ConfigError, match="analysis-common"):
        AnalysisConfig(english=False, synonyms=("a, b",))


def test_load_synonyms_default_and_files(tmp_path):
    assert any("tshirt" in rule for rule in load_synonyms())
    text = tmp_path / "syn.txt"
    text.write_text("# comment\njeans, denim\n\n")
    assert load_synonyms(text) == ("jeans, denim",)
    bad = tmp_path / "syn.json"
    bad.write_text('["no wrapper"]')
    with pytest.raises(ConfigError):
        load_synonyms(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_synonyms(tmp_path / "missing.txt")


def test_enriched_body_keeps_legacy_mapping_and_analysis():
    legacy_mappings = {"dynamic": "strict", "properties": {"name": {"type": "text", "analyzer": "legacy"},
                                                           "sku": {"type": "keyword"}},
                       "_meta": {"owner": "shop"}}
    legacy_settings = {"index": {"number_of_shards": "2", "analysis": {"analyzer": {"legacy": {"type": "simple"}}},
                                 "uuid": "x", "creation_date": "1", "provided_name": "shop"}}
    body = build_enriched_body(legacy_mappings, legacy_settings, _spec())
    props = body["mappings"]["properties"]
    assert props["name"] == {"type": "text", "analyzer": "legacy"} and props["sku"] == {"type": "keyword"}
    assert props["text_vector"]["dims"] == 256 and props["content_hash"] == {"type": "keyword"}
    assert body["mappings"]["dynamic"] == "strict"
    assert body["mappings"]["_meta"]["owner"] == "shop" and body["mappings"]["_meta"]["model_dim"] == 256
    assert body["settings"]["index"]["analysis"] == legacy_settings["index"]["analysis"]
    assert body["settings"]["index"]["number_of_shards"] == 2
    assert "uuid" not in body["settings"]["index"]  # private settings cannot be copied
    assert legacy_mappings["properties"].keys() == {"name", "sku"}  # input not mutated


def test_enriched_body_refuses_field_clash():
    with pytest.raises(ConfigError, match="already has"):
        build_enriched_body({"properties": {"text_vector": {"type": "float"}}}, {}, _spec())


def test_check_mapping_against_model():
    mapping = build_index_body(_spec())["mappings"]
    assert check_mapping_against_model(mapping, MODEL) == []
    other = ModelFacts(identity="b" * 64, name="other", dim=128)
    problems = check_mapping_against_model(mapping, other)
    assert any("dims 256" in p for p in problems) and any("model_identity" in p for p in problems)


def test_client_lexical_analysis_without_analysis_common():
    analysis = AnalysisConfig.for_cluster(FakeCapabilities(english_analyzer_available=False))
    body = build_index_body(_spec(analysis=analysis))
    # A pre-analysed field with the core whitespace analyzer (no module needed), declared in _meta.
    assert body["mappings"]["properties"]["search_text_analyzed"] == {"type": "text", "analyzer": "whitespace",
                                                                      "similarity": "BM25"}
    assert body["mappings"]["_meta"]["lexical_analysis"] == "client"
    assert "search_text_analyzed" not in load_template()["mappings"]["properties"]


def test_full_clusters_keep_server_analysis_and_no_extra_field():
    analysis = AnalysisConfig.for_cluster(FakeCapabilities(english_analyzer_available=True), ["tee, tshirt"])
    body = build_index_body(_spec(analysis=analysis))
    assert "search_text_analyzed" not in body["mappings"]["properties"]
    assert body["mappings"]["_meta"]["lexical_analysis"] == "server"
    assert body["settings"]["index"]["analysis"] == analysis_settings(analysis)
    # An enriched legacy index declares nothing: the query side reads that as server analysis.
    assert "lexical_analysis" not in build_enriched_body({"properties": {}}, {}, _spec())["mappings"]["_meta"]


def test_packaged_synonyms_name_the_gender_words():
    rules = load_synonyms()
    assert any("ladies" in rule and "women" in rule for rule in rules)
    assert any(rule.startswith("men,") for rule in rules)


def test_default_shards_and_replicas_come_from_the_template():
    index = build_index_body(_spec())["settings"]["index"]
    template = load_template()["settings"]["index"]
    assert index["number_of_shards"] == template["number_of_shards"] == 1
    assert index["auto_expand_replicas"] == template["auto_expand_replicas"]
    assert "number_of_replicas" not in index
    assert build_index_body(_spec())["mappings"]["_meta"]["index_settings"] == {
        "shards": 1, "replicas": template["auto_expand_replicas"]}


def test_explicit_shards_and_replicas_reach_the_body_and_meta():
    body = build_index_body(_spec(settings=IndexSettings(shards=3, replicas=2)))
    index = body["settings"]["index"]
    assert index["number_of_shards"] == 3 and index["number_of_replicas"] == 2
    # ES lets auto_expand_replicas override number_of_replicas: an explicit count must drop it.
    assert "auto_expand_replicas" not in index
    assert body["mappings"]["_meta"]["index_settings"] == {"shards": 3, "replicas": 2}
    only_shards = build_index_body(_spec(settings=IndexSettings(shards=5)))["settings"]["index"]
    assert only_shards["number_of_shards"] == 5 and only_shards["auto_expand_replicas"] == "0-1"


@pytest.mark.parametrize("kwargs", [{"shards": 0}, {"shards": 1025}, {"shards": -1}, {"replicas": -1},
                                    {"replicas": 17}, {"shards": 2.5}, {"replicas": "1"}, {"shards": True}])
def test_index_settings_reject_out_of_range_values(kwargs):
    with pytest.raises(ConfigError):
        IndexSettings(**kwargs)


def test_index_settings_bounds_are_inclusive():
    assert IndexSettings(shards=1024, replicas=16).to_dict() == {"shards": 1024, "replicas": 16}
    assert IndexSettings(shards=1, replicas=0).to_dict() == {"shards": 1, "replicas": 0}

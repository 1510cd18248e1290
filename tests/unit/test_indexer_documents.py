"""Pure document logic: normalisation, brand heuristic, content hash, bulk actions and results."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.catalog import CatalogConfig
from indexer.documents import LEXICAL_SOURCES, BuildSummary, build_source, content_hash, derive_brand, \
    index_action, lexical_text, normalise_record, parse_bulk_item, source_builder_for
from mappings import load_template
from mmsearch.exceptions import BadRecordError


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("")
    return CatalogConfig(path=path)


@pytest.mark.parametrize("title,colour,article,expected", [
    ("Turtle Check Men Navy Blue Shirt", "Navy Blue", "Shirts", "Turtle Check"),
    ("United Colors of Benetton Men Solid Grey Jacket", "Grey", "Jackets", "United Colors of Benetton"),
    ("Puma Deck Navy Blue Backpack", "Navy Blue", "Backpacks", "Puma Deck"),
    ("Nike Sahara Team India Fanwear Round Neck Jersey", "Blue", "Tshirts", "Nike"),
    ("Ferrari Tee", None, None, "Ferrari"),
    ("Men Black Shirt", "Black", "Shirts", None),
    ("UCB Women's Pleat At Back Yellow T-shirt", "Yellow", "Tshirts", "UCB"),
    ("", None, None, None),
])
def test_brand_heuristic(title, colour, article, expected):
    assert derive_brand(title, colour, article) == expected


def test_normalise_full_record(config):
    doc = normalise_record({"id": 15970, "title": " Turtle Check Men Navy Blue Shirt ", "gender": "Men",
                            "master_category": "Apparel", "sub_category": "Topwear", "article_type": "Shirts",
                            "base_colour": "Navy Blue", "season": "", "year": "2011", "usage": "Casual",
                            "image": "images/15970.jpg", "extra": "ignored"}, config)
    assert doc == {"id": "15970", "title": "Turtle Check Men Navy Blue Shirt", "gender": "Men",
                   "master_category": "Apparel", "sub_category": "Topwear", "article_type": "Shirts",
                   "base_colour": "Navy Blue", "usage": "Casual", "year": 2011,
                   "category_path": "Apparel > Topwear > Shirts", "brand": "Turtle Check",
                   "image": "images/15970.jpg"}


@pytest.mark.parametrize("record", [{}, {"id": None}, {"id": "  "}, {"id": float("nan")}, {"id": "x" * 600}])
def test_missing_or_invalid_id_is_a_bad_record(config, record):
    with pytest.raises(BadRecordError):
        normalise_record(record, config)


def test_numeric_float_ids_and_bad_years(config):
    assert normalise_record({"id": 12.0, "year": "n/a"}, config) == {"id": "12"}
    assert normalise_record({"id": "a", "year": 2011.0}, config)["year"] == 2011
    assert "year" not in normalise_record({"id": "a", "year": 99999}, config)


def test_field_mapping_and_explicit_category_path(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("sku\n")
    config = CatalogConfig(path=path, fields={"id": "sku", "title": "name", "category_path": "cat",
                                              "brand": "maker"}, derive_brand=True)
    doc = normalise_record({"sku": "9", "name": "Acme Men Shirt", "cat": "A > B", "maker": "Acme Corp"}, config)
    assert doc["category_path"] == "A > B" and doc["brand"] == "Acme Corp" and doc["title"] == "Acme Men Shirt"


def test_content_hash_depends_on_fields_image_and_model():
    doc = {"id": "1", "title": "A"}
    base = content_hash(doc, "img1", "model1")
    assert base == content_hash(dict(doc), "img1", "model1")
    assert base != content_hash({"id": "1", "title": "B"}, "img1", "model1")
    assert base != content_hash(doc, "img2", "model1")
    assert base != content_hash(doc, "img1", "model2")
    assert base == content_hash({**doc, "_image_bytes": b"x", "has_image": True}, "img1", "model1")


def test_build_source_and_action():
    vec = np.array([0.6, 0.8], dtype=np.float32)
    source = build_source({"id": "1", "title": "A", "image": "data:image/png;base64,AAAA"}, vec, None, "h")
    assert source["has_image"] is False and "image_vector" not in source
    assert source["text_vector"] == pytest.approx([0.6, 0.8]) and source["content_hash"] == "h"
    assert source["image"].startswith("<inline image")  # payloads are not stored
    with_image = build_source({"id": "1"}, vec, vec, "h")
    assert with_image["has_image"] is True and len(with_image["image_vector"]) == 2
    assert index_action("idx", "1", source) == {"_op_type": "index", "_index": "idx", "_id": "1", "_source": source}


def test_build_source_fills_the_analysed_field_only_for_client_analysis():
    doc = {"id": "7", "title": "Nike Men's Running Shoes", "category_path": "Footwear > Shoes > Sports Shoes",
           "gender": "Men", "base_colour": "Black", "usage": "Sports", "season": "Summer", "brand": "Nike",
           "article_type": "Sports Shoes", "year": 2012}
    plain = build_source(doc, None, None, "h")
    assert "search_text_analyzed" not in plain  # strict mappings without the field must not get it
    client = build_source(doc, None, None, "h", client_analysis=True)
    # title, category path, gender, colour, usage, season, brand; not article_type (not in search_text)
    assert client["search_text_analyzed"] == ("nike men run shoe footwear shoe sport shoe men black sport summer "
                                              "nike")
    assert {k: v for k, v in client.items() if k != "search_text_analyzed"} == plain
    assert lexical_text({"id": "1"}) == ""
    assert source_builder_for({"lexical_analysis": "client"})(doc, None, None, "h") == client
    assert source_builder_for({}) is build_source and source_builder_for(None) is build_source


def test_lexical_sources_are_the_search_text_sources():
    properties = load_template()["mappings"]["properties"]
    assert set(LEXICAL_SOURCES) == {name for name, p in properties.items() if p.get("copy_to") == "search_text"}


def test_parse_bulk_items():
    ok = parse_bulk_item(True, {"index": {"_id": "1", "status": 201}})
    assert ok.ok and ok.doc_id == "1" and ok.status == 201 and ok.reason is None
    bad = parse_bulk_item(False, {"index": {"_id": "2", "status": 400, "error": {
        "type": "document_parsing_exception", "reason": "failed to parse",
        "caused_by": {"type": "illegal_argument_exception", "reason": "dims"}}}})
    assert not bad.ok and bad.status == 400 and "document_parsing_exception" in bad.reason and "dims" in bad.reason
    exc = parse_bulk_item(False, {"index": {"_id": "3", "status": 503, "error": "ConnectionError(...)"}})
    assert exc.reason == "ConnectionError(...)" and exc.status == 503


def test_summary_rates():
    summary = BuildSummary(indexed=100, seconds=4.0)
    assert summary.to_dict()["docs_per_second"] == 25.0
    assert BuildSummary().docs_per_second == 0.0

"""Client-side lexical analysis (mmsearch.text_analysis) and the BM25 leg that uses it."""

from __future__ import annotations

import json

import pytest

from indexer.documents import lexical_text
from mmsearch.text_analysis import (
    ANALYZED_FIELD, SynonymTable, analyze, analyze_units, analyzed_text, default_synonyms, expand_query, fold,
    lexical_analysis_of, query_groups, stem,
)
from query_service import queries
from query_service.ranking import RankingConfig


@pytest.mark.parametrize("forms", [
    ("mens", "Men", "men's", "MEN"),
    ("shoes", "Shoe", "SHOES"),
    ("t-shirts", "Tshirt", "T-Shirt", "t shirt", "tshirts", "T Shirts"),
    ("women's", "Womens", "Women"),
    ("sneakers", "sneaker"),
])
def test_stemming_equivalences(forms):
    assert len({analyze(form) for form in forms}) == 1, {form: analyze(form) for form in forms}


def test_tokens_of_a_real_title():
    assert analyze("Nike Men Blue T20 Indian Cricket Jersey") == ("nike", "men", "blue", "t20", "indian", "cricket",
                                                                  "jersey")
    # A lone-letter compound is one word: "shirt" must not match every T-shirt.
    assert analyze("Men V Neck T-Shirt") == ("men", "vneck", "tshirt")
    # Other compounds keep their pieces too, so "round neck" still meets "Round-Neck".
    assert analyze("Round-Neck 2-in-1") == ("round", "neck", "roundneck", "2", "1", "2in1")


def test_folding_stopwords_and_empty_input():
    assert fold("Café CRÈME Ñandú") == "cafe creme nandu"
    assert analyze("Café Crème") == analyze("cafe creme") == ("cafe", "creme")
    assert analyze("shoes for the men with a bag") == ("shoe", "men", "bag")
    for empty in ("", None, "   ", "the of and", "--- !!"):
        assert analyze(empty) == () and analyze_units(empty) == () and query_groups(empty) == ()
        assert expand_query(empty) == "" and analyzed_text([empty]) == ""
    assert stem("2011") == "2011" and stem("watches") == "watch"


def test_the_same_analysis_at_index_and_query_time():
    doc = {"title": "Roadster Men Navy T-Shirt", "category_path": "Apparel > Topwear > Tshirts", "gender": "Men",
           "base_colour": "Navy Blue", "usage": "Casual", "season": "Summer", "brand": "Roadster"}
    indexed = lexical_text(doc).split()
    assert lexical_text(doc) == analyzed_text(doc.values())  # the indexer's text is analyze() of its sources
    for query in ("mens tshirts", "navy t shirt", "Men's T-Shirts"):
        keys = [unit.key for unit in analyze_units(query)]
        assert keys and all(key in indexed for key in keys), (query, keys, indexed)
        # every concept of the expanded query has an alternative the document holds
        assert all(any(alt in indexed for alt in group if " " not in alt) for group in query_groups(query))


def test_synonyms_from_the_packaged_file():
    groups = query_groups("sneakers for ladies")
    assert groups[0] == ("sneaker", "sport shoe", "trainer")
    assert groups[1][0] == "ladi" and "women" in groups[1]
    assert "tshirt" in expand_query("tees") and "tee" in expand_query("t-shirts")
    assert query_groups("gray jeans") == (("gray", "grey"), ("jean", "denim"))
    # A compound query meets a rule written as two words ("flip flops").
    assert "slipper" in query_groups("flip-flops")[0] and "flip flop" in query_groups("flip-flops")[0]
    # Multi-word synonyms stay phrases; the flat form lists each token once.
    assert expand_query("sneakers").split() == ["sneaker", "sport", "shoe", "trainer"]
    assert default_synonyms() is default_synonyms()  # parsed once


def test_solr_rule_forms():
    table = SynonymTable(["pants, slacks => trouser", "jean, denim", "  ", "a, the"])
    assert query_groups("pants", table) == (("trouser",),)  # "=>" replaces, as in Solr
    assert query_groups("slacks", table) == (("trouser",),)
    assert query_groups("denim blue", table) == (("denim", "jean"), ("blue",))  # equivalence keeps the own word
    assert query_groups("trouser", table) == (("trouser",),)  # the right side does not map back
    assert query_groups("the", table) == ()


def test_deterministic_and_cached():
    assert query_groups("Womens Sports Shoes") is query_groups("Womens Sports Shoes")
    assert query_groups("womens sports shoes") == query_groups("Womens Sports Shoes")


def test_lexical_analysis_of_meta():
    assert lexical_analysis_of({"lexical_analysis": "client"}) == "client"
    for meta in ({"lexical_analysis": "server"}, {}, None, {"lexical_analysis": "CLIENT"}):
        assert lexical_analysis_of(meta) == "server"
    assert queries.lexical_analysis_of is lexical_analysis_of  # the engine's import path


RANKING = RankingConfig()


def _places(node, path=()):
    """Every (path, value) of a JSON-like body."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _places(value, path + (i,))
    else:
        yield path, node


def test_bm25_body_with_client_analysis():
    body = queries.bm25_body("sneakers for ladies", RANKING, {"gender": ["Women"]}, client_analysis=True)
    should = body["query"]["bool"]["must"][0]["bool"]
    surface, analyzed = should["should"]
    assert should["minimum_should_match"] == 1
    assert surface["multi_match"]["query"] == "sneakers for ladies" and surface["multi_match"]["boost"] < 1
    assert surface["multi_match"]["fields"] == ["title^3", "category_path^2", "search_text^1"]
    sneaker, ladies = analyzed["bool"]["should"]
    assert sneaker == {"dis_max": {"queries": [{"term": {ANALYZED_FIELD: "sneaker"}},
                                               {"match_phrase": {ANALYZED_FIELD: "sport shoe"}},
                                               {"term": {ANALYZED_FIELD: "trainer"}}]}}
    assert {"term": {ANALYZED_FIELD: "women"}} in ladies["dis_max"]["queries"]
    assert body["query"]["bool"]["filter"] == [{"terms": {"gender": ["Women"]}}]
    assert "query_string" not in json.dumps(body)
    # the raw user text reaches only the multi_match; the rest are analysed tokens
    raw = [path for path, value in _places(body) if value == "sneakers for ladies"]
    assert raw == [("query", "bool", "must", 0, "bool", "should", 0, "multi_match", "query")]


def test_bm25_body_client_analysis_negative_and_fallbacks():
    body = queries.bm25_body("mens shoes", RANKING, {}, negative_text="leather boots", client_analysis=True)
    must_not = body["query"]["bool"]["must_not"]
    assert must_not[0] == {"multi_match": {"query": "leather boots",
                                           "fields": ["title^3", "category_path^2", "search_text^1"]}}
    assert must_not[1] == {"bool": {"should": [{"term": {ANALYZED_FIELD: "leather"}},
                                               {"term": {ANALYZED_FIELD: "boot"}}]}}
    # Nothing left after analysis (stopwords only), or client analysis off: the plain body, unchanged.
    plain = queries.bm25_body("the", RANKING, {"gender": ["Men"]}, negative_text="of")
    assert queries.bm25_body("the", RANKING, {"gender": ["Men"]}, negative_text="of", client_analysis=True) == plain
    assert queries.bm25_body("mens shoes", RANKING, {}) == queries.bm25_body("mens shoes", RANKING, {},
                                                                             client_analysis=False)
    assert "multi_match" in queries.bm25_body("mens shoes", RANKING, {})["query"]["bool"]["must"][0]

"""Query understanding (parser) and how a parse shapes legs and fusion: pure, no server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from query_service import attributes
from query_service.fusion import fuse
from query_service.understanding import PHOTO_MASS, Attribute, QueryParser, Understanding, matches, normalise_token

VOCABULARY = {
    "article_type": ["Tshirts", "Shirts", "Casual Shoes", "Sports Shoes", "Formal Shoes", "Dresses", "Shorts",
                     "Watches", "Handbags", "Sweaters", "Jeans"],
    "base_colour": ["Black", "Navy Blue", "Red", "Grey", "Off White", "White", "Purple", "NA"],
    "gender": ["Men", "Women", "Boys", "Girls", "Unisex"],
    "usage": ["Casual", "Formal", "Sports"],
    "season": ["Summer", "Winter"],
    "brand": ["Puma", "Red Tape", "Basics"],
}


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    return QueryParser(VOCABULARY)


def _read(parser: QueryParser, text: str) -> dict[str, tuple[tuple[str, ...], str]]:
    return {name: (a.values, a.source) for name, a in parser.parse(text).attributes.items()}


@pytest.mark.parametrize(("word", "expected"), [("shoes", "shoe"), ("mens", "men"), ("dresses", "dress"),
                                                ("watches", "watch"), ("accessories", "accessory"),
                                                ("dress", "dress"), ("capris", "capris"), ("men", "men")])
def test_normalise_token_strips_plural_and_keeps_short_words(word: str, expected: str) -> None:
    assert normalise_token(word) == expected


def test_catalog_values_are_read_verbatim_through_plurals_and_possessives(parser: QueryParser) -> None:
    parsed = parser.parse("Women's purple sweater")
    assert {n: a.values for n, a in parsed.attributes.items()} == {
        "gender": ("Women",), "base_colour": ("Purple",), "article_type": ("Sweaters",)}
    assert all(a.source == "vocabulary" and a.confidence == 0.95 for a in parsed.attributes.values())
    assert _read(parser, "navy blue jeans")["base_colour"] == (("Navy Blue",), "vocabulary")  # two-word value


def test_shopper_words_map_to_catalog_values_through_the_synonym_table(parser: QueryParser) -> None:
    assert _read(parser, "tee for my son") == {"article_type": (("Tshirts",), "synonym"),
                                               "gender": (("Boys",), "synonym")}
    assert _read(parser, "crimson sneakers for ladies") == {
        "base_colour": (("Red",), "synonym"), "article_type": (("Casual Shoes", "Sports Shoes"), "synonym"),
        "gender": (("Women",), "synonym")}
    assert _read(parser, "gym wear")["usage"] == (("Sports",), "synonym")


def test_ambiguous_heads_keep_every_value_at_low_confidence(parser: QueryParser) -> None:
    shoes = parser.parse("black shoes").attributes["article_type"]
    assert set(shoes.values) == {"Casual Shoes", "Sports Shoes", "Formal Shoes"} and shoes.confidence < 0.85
    assert "article_type" not in parser.parse("black shoes").confident()


def test_longest_span_wins_and_two_type_words_merge_head_first(parser: QueryParser) -> None:
    assert _read(parser, "red tape shoes")["brand"] == (("Red Tape",), "vocabulary")
    assert "base_colour" not in _read(parser, "red tape shoes")  # "red" belongs to the brand here
    # Two confident type words: one reading of both, head noun first, below the filter threshold.
    short_dress = parser.parse("short dress").attributes["article_type"]
    assert short_dress.values == ("Dresses", "Shorts") and short_dress.source == "merged"
    assert "article_type" not in parser.parse("short dress").confident()
    assert _read(parser, "casual shoes")["article_type"] == (("Casual Shoes",), "vocabulary")


def test_values_missing_from_the_catalog_and_stopwords_are_never_read(parser: QueryParser) -> None:
    assert parser.parse("best cheap stuff online").attributes == {}
    assert "brand" not in _read(parser, "basic tee")  # no partial brand matches
    assert "base_colour" not in _read(parser, "na")  # "NA" is not a colour a shopper asks for
    assert QueryParser({"article_type": ["Shirts"]}).parse("crimson tee").attributes == {}  # not in this catalog


def test_the_embedding_fallback_reads_a_type_only_with_a_clear_margin() -> None:
    vectors = {"Watches": np.array([1.0, 0.0, 0.0]), "Handbags": np.array([0.0, 1.0, 0.0]),
               "Jeans": np.array([0.0, 0.0, 1.0])}
    parser = QueryParser(VOCABULARY, type_vectors=vectors)
    guess = parser.parse("horologe", np.array([0.9, 0.1, 0.0])).attributes["article_type"]
    assert guess.values == ("Watches",) and guess.source == "embedding" and guess.confidence <= 0.6
    assert "article_type" not in parser.parse("thing", np.array([0.5, 0.5, 0.0])).attributes  # a tie: no guess
    assert parser.parse("jeans", np.array([1.0, 0.0, 0.0])).attributes["article_type"].values == ("Jeans",)


def test_gender_matching_keeps_unisex_products() -> None:
    men = Attribute("gender", ("Men",), 0.95, "mens", "vocabulary")
    assert matches({"gender": "Unisex"}, men) and matches({"gender": ["Men"]}, men)
    assert not matches({"gender": "Women"}, men)
    assert attributes.values_for_filter(men) == ["Men", "Unisex"]
    boys = Attribute("gender", ("Boys",), 0.9, "son", "synonym")
    assert attributes.values_for_filter(boys) == ["Boys", "Unisex"] and matches({"gender": "Unisex"}, boys)


def _parse(**fields: tuple[tuple[str, ...], float]) -> Understanding:
    return Understanding("q", {name: Attribute(name, values, confidence, name, "vocabulary")
                               for name, (values, confidence) in fields.items()})


def test_only_confident_type_gender_colour_prefilter_the_vector_legs() -> None:
    parse = _parse(article_type=(("Shirts",), 0.95), gender=(("Men",), 0.9), base_colour=(("Red",), 0.6),
                   usage=(("Formal",), 0.95))
    assert attributes.prefilter_clauses(parse) == [{"terms": {"article_type": ["Shirts"]}},
                                                   {"terms": {"gender": ["Men", "Unisex"]}}]
    assert attributes.prefilter_clauses(None) == []


def test_lexical_boosts_are_should_clauses_that_never_change_what_matches() -> None:
    parse = _parse(article_type=(("Shirts",), 0.9))
    body = {"query": {"bool": {"must": [{"multi_match": {"query": "shirt"}}], "filter": []}}, "size": 10}
    boosted = attributes.with_lexical_boosts(body, attributes.lexical_boosts(parse, 1.0))
    assert boosted["query"]["bool"]["must"] == body["query"]["bool"]["must"]
    assert boosted["query"]["bool"]["should"] == [{"terms": {"article_type": ["Shirts"], "boost": 1.8}}]
    assert "should" not in body["query"]["bool"]  # the original is not modified
    assert attributes.lexical_boosts(parse, 0.0) == [] and attributes.with_lexical_boosts(body, []) == body


def test_the_attribute_leg_ranks_candidates_by_agreement_then_by_fused_order() -> None:
    parse = _parse(article_type=(("Shirts",), 0.95), base_colour=(("Red",), 0.9))
    sources = {"a": {"article_type": ["Shirts"], "base_colour": ["Blue"]},
               "b": {"article_type": ["Shirts"], "base_colour": ["Red"]},
               "c": {"article_type": ["Jeans"], "base_colour": ["Red"]},
               "d": {"article_type": ["Jeans"], "base_colour": ["Blue"]},
               "e": {"article_type": ["Shirts"], "base_colour": ["Red"]}}
    leg = attributes.attribute_leg(parse, ["a", "b", "c", "d", "e"], sources)
    assert [doc for doc, _ in leg] == ["b", "e", "a", "c"]  # full matches first (fused order kept), no "d"
    assert leg[0][1] == pytest.approx(3.0 * 0.95 + 2.0 * 0.9)
    # Fused as one more leg it lifts the full match above a lexical-only favourite.
    legs = {"bm25": [("d", 9.0), ("a", 5.0), ("b", 4.0)], attributes.ATTRIBUTE_LEG: leg}
    fused = fuse(legs, "rrf", {"bm25": 1.0, attributes.ATTRIBUTE_LEG: 1.0}, 60, "min_max", "arithmetic", {})
    assert fused[0].doc_id == "b"


def test_summary_says_what_was_read_and_applied() -> None:
    parse = _parse(gender=(("Women",), 0.95))
    assert attributes.summary(parse, ["gender"], True, ["text_image"]) == {
        "attributes": {"gender": {"values": ["Women"], "confidence": 0.95, "span": "gender", "source": "vocabulary"}},
        "filtered": ["gender"], "boosted": True, "filter_dropped": ["text_image"]}
    assert attributes.summary(None, [], False) is None


def test_with_a_photo_the_type_comes_from_the_photo_and_the_words_set_the_rest() -> None:
    vectors = {"Watches": np.array([1.0, 0.0, 0.0]), "Handbags": np.array([0.0, 1.0, 0.0]),
               "Jeans": np.array([0.0, 0.0, 1.0])}
    parser = QueryParser(VOCABULARY, type_vectors=vectors)
    text_vector = np.array([0.0, 0.0, 1.0])  # the words "in black" lean towards jeans: must not decide the type
    parsed = parser.parse("but in black", text_vector, image_vector=np.array([0.2, 0.9, 0.1]))
    assert parsed.attributes["article_type"].values == ("Handbags",)
    assert parsed.attributes["article_type"].source == "photo-embedding"
    assert parsed.attributes["base_colour"].values == ("Black",)
    named = parser.parse("jeans in black", text_vector, image_vector=np.array([0.2, 0.9, 0.1]))
    assert named.attributes["article_type"].values == ("Jeans",)  # the words override the photo


def test_a_misspelt_word_is_read_as_the_one_known_word_within_its_edit_budget(parser: QueryParser) -> None:
    assert parser.correct("walet") is None  # "wallet" is not in this vocabulary
    assert parser.correct("shrit") == "shirt" and parser.correct("sweatr") == "sweater"
    assert parser.correct("shrts") is None  # "shirt" and "short" are both one edit away: no guess
    assert parser.correct("red") is None  # short words are never corrected
    parsed = parser.parse("black shrits for men")
    assert parsed.attributes["article_type"].values == ("Shirts",)
    assert parsed.attributes["article_type"].source == "vocabulary+fuzzy"
    assert parsed.attributes["article_type"].confidence == pytest.approx(0.95 * 0.9)


def test_the_legs_search_the_type_words_the_parse_corrected(parser: QueryParser) -> None:
    parsed = parser.parse("Black SHRITS for men")
    assert parsed.corrections == {"shrits": "shirt"} and parsed.corrected_text() == "black shirt for men"
    assert parser.parse("black shirts for men").corrected_text() is None  # nothing to correct
    # Only type words: a corrected colour is kept as typed (its synonyms are rarely catalog words).
    assert parser.parse("blakc shirts").corrections == {}
    assert parser.parse("zzyzx shirts").corrected_text() is None  # an unknown word no attribute used stays


def test_the_photo_classifiers_supply_type_and_colour_and_the_words_override_them(parser: QueryParser) -> None:
    photo = {"article_type": [("Casual Shoes", 0.3), ("Sports Shoes", 0.25), ("Formal Shoes", 0.2)],
             "base_colour": [("Navy Blue", 0.97), ("Black", 0.02), ("Grey", 0.01)]}
    assert PHOTO_MASS == 0.5  # the figures below assume it
    alone = parser.parse("", photo=photo)
    shoes = alone.attributes["article_type"]
    # Labels are taken until their mass reaches PHOTO_MASS: the two shoe types, confidence 0.55.
    assert shoes.values == ("Casual Shoes", "Sports Shoes") and shoes.confidence == pytest.approx(0.55)
    assert shoes.source == "photo" and alone.attributes["base_colour"].values == ("Navy Blue",)
    composed = parser.parse("but in red for women", photo=photo)
    assert composed.attributes["base_colour"].values == ("Red",)  # the words win
    assert composed.attributes["base_colour"].source == "vocabulary"
    assert composed.attributes["article_type"].values == ("Casual Shoes", "Sports Shoes")
    assert composed.attributes["gender"].values == ("Women",)
    named = parser.parse("black dress", photo=photo)
    assert named.attributes["article_type"].values == ("Dresses",)


def test_an_unsure_photo_or_labels_the_index_lacks_say_nothing(parser: QueryParser) -> None:
    unsure = {"article_type": [("Tshirts", 0.2), ("Shirts", 0.15), ("Sweaters", 0.04)]}
    assert "article_type" not in parser.parse("", photo=unsure).attributes
    unknown = {"article_type": [("Kurtas", 0.9), ("Shirts", 0.08)]}  # not in this index's vocabulary
    assert "article_type" not in parser.parse("", photo=unknown).attributes
    capped = {"base_colour": [("Black", 0.15), ("Grey", 0.15), ("White", 0.15), ("Red", 0.15)]}
    assert parser.parse("", photo=capped).attributes["base_colour"].values == ("Black", "Grey", "White")


def test_the_deletion_index_finds_what_comparing_with_every_known_word_finds(parser: QueryParser) -> None:
    """``correct`` only compares the candidates its deletion index names: it must lose none."""
    from query_service.understanding import LONG_WORD, SHORTEST_FUZZY, edit_distance
    from query_service.understanding_synonyms import STOPWORDS

    known = sorted({word for words in parser.known_by_deletion.values() for word in words})

    def brute_force(token: str) -> str | None:
        if len(token) < SHORTEST_FUZZY or token.isdigit() or token in STOPWORDS:
            return None
        budget = 1 if len(token) < LONG_WORD else 2
        distances = {word: edit_distance(token, word, budget + 1) for word in known}
        best = min(distances.values())
        winners = [word for word, d in distances.items() if d == best]
        return winners[0] if best <= budget and len(winners) == 1 else None

    rng = np.random.default_rng(5)
    typos = []
    for word in known:
        for _ in range(3):
            letters = list(word)
            for _ in range(int(rng.integers(1, 3))):
                i = int(rng.integers(0, len(letters)))
                edit = rng.integers(0, 4)
                if edit == 0 and len(letters) > 1:
                    del letters[i]
                elif edit == 1:
                    letters.insert(i, chr(97 + int(rng.integers(0, 26))))
                elif edit == 2:
                    letters[i] = chr(97 + int(rng.integers(0, 26)))
                elif i + 1 < len(letters):
                    letters[i], letters[i + 1] = letters[i + 1], letters[i]
            typos.append("".join(letters))
    typos = [t for t in typos if t not in parser.known_words]
    assert len(typos) > 50
    assert [parser.correct(t) for t in typos] == [brute_force(t) for t in typos]
    assert any(parser.correct(t) for t in typos)  # some are corrected, so the comparison means something


def test_the_attribute_leg_scores_exactly_what_matches_says() -> None:
    """The leg's unrolled checks agree with ``matches`` (lists, Unisex, missing fields) on random candidates."""
    rng = np.random.default_rng(3)
    values = {"article_type": ["Shirts", "Tshirts", "Jeans"], "base_colour": ["Black", "Red", "Navy Blue"],
              "gender": ["Men", "Women", "Unisex"]}
    parse = Understanding("q", {
        "article_type": Attribute("article_type", ("Shirts", "Tshirts"), 0.7, "", "merged"),
        "base_colour": Attribute("base_colour", ("Black",), 0.95, "", "vocabulary"),
        "gender": Attribute("gender", ("Women",), 0.9, "", "synonym")})
    sources: dict[str, dict[str, object]] = {}
    for i in range(300):
        doc: dict[str, object] = {}
        for name, options in values.items():
            pick = int(rng.integers(0, len(options) + 2))
            if pick == len(options):
                doc[name] = [options[int(rng.integers(0, len(options)))], options[int(rng.integers(0, len(options)))]]
            elif pick < len(options):
                doc[name] = options[pick]  # else: the field is missing
        sources[str(i)] = doc
    candidates = [str(i) for i in range(300)] + ["unknown"]
    expected = sorted(((-sum(attributes.FIELD_WEIGHTS[a.field] * a.confidence for a in parse.attributes.values()
                              if matches(sources.get(d, {}), a)), position, d)
                       for position, d in enumerate(candidates)), key=lambda t: (t[0], t[1]))
    reference = [(d, -score) for score, _, d in expected if score < 0]
    got = attributes.attribute_leg(parse, candidates, sources)
    assert [d for d, _ in got] == [d for d, _ in reference]
    assert np.allclose([s for _, s in got], [s for _, s in reference])


def test_boosts_in_a_window_add_what_the_should_clauses_would_and_cut_to_depth() -> None:
    parse = _parse(article_type=(("Shirts",), 0.9), base_colour=(("Red", "Maroon"), 0.9))
    boosts = attributes.lexical_boosts(parse, 1.0)  # 1.8 per matching clause
    ranked = [("a", 5.0), ("b", 4.0), ("c", 3.5), ("d", 1.0), ("e", 0.5)]
    sources = {"a": {"article_type": ["Jeans"], "base_colour": ["Blue"]},
               "b": {"article_type": "Shirts", "base_colour": "Blue"},          # _source form: scalars
               "c": {"article_type": ["Shirts"], "base_colour": ["Maroon"]},   # doc-values form: lists
               "d": {"article_type": ["Shirts"], "base_colour": ["Red"]},
               "e": {}}
    window = attributes.boosted_window(ranked, sources, boosts, depth=4)
    assert window == [("c", 7.1), ("b", 5.8), ("a", 5.0), ("d", 4.6)]
    # The same order as the boosted query itself would give these five documents.
    assert [doc for doc, _ in attributes.boosted_window(ranked, sources, boosts, depth=5)] == ["c", "b", "a", "d", "e"]
    tied = attributes.boosted_window([("z", 2.0), ("y", 0.2)], {"y": {"article_type": ["Shirts"]}}, boosts, 2)
    assert tied == [("y", 2.0), ("z", 2.0)]  # equal scores in id order, like every leg


def test_boosts_in_a_window_never_reorder_a_leg_that_is_not_by_score() -> None:
    parse = _parse(article_type=(("Shirts",), 0.9))
    by_price = [("a", 1.0), ("b", 3.0), ("c", 2.0)]  # an app's own sort
    sources = {"c": {"article_type": ["Shirts"]}}
    assert attributes.boosted_window(by_price, sources, attributes.lexical_boosts(parse, 1.0), 2) == by_price[:2]


def _engine_with_parse(parse: Understanding, response: dict) -> tuple:
    from mmsearch.config import Settings
    from query_service.engine import SearchEngine
    from tests.unit.fakes import FakeGateway

    es = FakeGateway([response])
    engine = SearchEngine(es, None, Settings(products_alias="products"))

    class Parsed:  # stands in for the index-backed parser: the parse is what is under test here
        def parse(self, *args, **kwargs) -> Understanding:
            return parse

        def filter_combinations(self) -> None:  # not known: every pre-filter is tried
            return None

    engine.understander = Parsed()
    return engine, es


def test_the_engine_applies_the_boosts_in_the_window_instead_of_the_query() -> None:
    from query_service.ranking import RankingConfig, SearchRequest

    parse = _parse(article_type=(("Shirts",), 0.9))
    response = {"took": 1, "timed_out": False, "hits": {"hits": [
        {"_index": "products-v1", "_id": doc, "_score": score, "_source": {"id": doc, "article_type": kind}}
        for doc, score, kind in (("a", 3.0, "Jeans"), ("b", 2.5, "Jeans"), ("c", 2.0, "Shirts"))]}}
    windowed = RankingConfig(legs={"bm25": 1.0}, depth=2, num_candidates=2, boost_window=3, attribute_weight=0)
    engine, es = _engine_with_parse(parse, response)
    run = engine.run_legs(SearchRequest(text="shirt"), windowed)
    body = es.msearch_calls[0][1]
    assert body["size"] == 3 and "should" not in body["query"]["bool"]
    assert run.legs["bm25"] == [("c", 2.0 + 3 * 2.0 * 0.9), ("a", 3.0)]
    engine, es = _engine_with_parse(parse, response)
    in_query = engine.run_legs(SearchRequest(text="shirt"), windowed.with_overrides({"boost_window": 0}))
    body = es.msearch_calls[0][1]
    assert body["size"] == 2 and body["query"]["bool"]["should"] == [{"terms": {"article_type": ["Shirts"],
                                                                               "boost": 5.4}}]
    # ES applies the boosts (the fake does not): the service leaves the leg as it came back.
    assert in_query.legs["bm25"] == [("a", 3.0), ("b", 2.5), ("c", 2.0)]


class _TextEncoder:
    """Encodes any text to one fixed vector, but first waits (up to a second) for a search to be sent:
    ``saw_a_search`` says whether one was sent while it was encoding."""

    def __init__(self, es: Any) -> None:
        import threading

        self.sent, self.saw_a_search = threading.Event(), None
        es.before_msearch = lambda searches: self.sent.set()

    def encode_texts(self, texts: list[str]) -> Any:
        import numpy as np

        self.saw_a_search = self.sent.wait(timeout=1.0)
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))


class _RecordingEncoder(_TextEncoder):
    """A ``_TextEncoder`` that keeps every batch of texts it was asked to encode."""

    def __init__(self, es: Any) -> None:
        super().__init__(es)
        self.encoded: list[list[str]] = []

    def encode_texts(self, texts: list[str]) -> Any:
        self.encoded.append(list(texts))
        return super().encode_texts(texts)


def test_a_text_query_sends_its_lexical_leg_while_the_text_is_encoded() -> None:
    from query_service.ranking import RankingConfig, SearchRequest

    words = _parse(base_colour=(("Red",), 0.9))  # the words name a colour and no type
    typed = _parse(base_colour=(("Red",), 0.9), article_type=(("Shirts",), 0.5))  # the vector adds a type
    response = {"took": 1, "timed_out": False, "hits": {"hits": [
        {"_index": "products-v1", "_id": "a", "_score": 1.0, "_source": {"id": "a"}}]}}
    engine, es = _engine_with_parse(words, response)

    class ByVector:  # the parse with the query vector has the type; without it, only the words' colour
        def parse(self, text: str, vector: Any = None, *args: Any) -> Understanding:
            return typed if vector is not None else words

        def filter_combinations(self) -> None:
            return None

    engine.understander = ByVector()
    encoder = engine.encoder = _TextEncoder(es)
    run = engine.run_legs(SearchRequest(text="red"), RankingConfig(legs={"bm25": 1.0, "text_text": 1.0}))
    lexical_call, vector_call = es.msearch_calls
    assert [len(lexical_call) // 2, len(vector_call) // 2] == [1, 1]
    assert "knn" not in lexical_call[1]["query"] and "knn" in vector_call[1]["query"]
    assert encoder.saw_a_search  # the lexical leg was sent while the encoder worked, not after it
    # Its boosts come from the words alone; it fetches the type too, which the attribute leg reads.
    assert lexical_call[1]["query"]["bool"]["should"] == [{"terms": {"base_colour": ["Red"], "boost": 5.4}}]
    assert "article_type" in lexical_call[1]["docvalue_fields"]
    assert run.understanding is typed and set(run.legs) == {"bm25", "text_text"}


def test_the_legs_search_the_corrected_words_and_the_parse_keeps_the_shopper_s() -> None:
    from query_service.ranking import RankingConfig, SearchRequest

    response = {"took": 1, "timed_out": False, "hits": {"hits": [
        {"_index": "products-v1", "_id": "a", "_score": 1.0, "_source": {"id": "a"}}]}}
    engine, es = _engine_with_parse(_parse(), response)
    engine.understander = _RealParser()
    engine.encoder = encoder = _RecordingEncoder(es)
    run = engine.run_legs(SearchRequest(text="black shrits"), RankingConfig(legs={"bm25": 1.0, "text_text": 1.0}))
    assert encoder.encoded == [["black shirt"]]
    lexical = es.msearch_calls[0][1]["query"]["bool"]["must"][0]
    assert lexical["multi_match"]["query"] == "black shirt"
    assert run.text == "black shrits" and run.understanding.text == "black shrits"
    assert run.understanding.attributes["article_type"].source == "vocabulary+fuzzy"  # the discount stays


class _RealParser:
    """The pure parser over this module's vocabulary, as the engine's understander."""

    def __init__(self) -> None:
        self.parser = QueryParser(VOCABULARY)

    def parse(self, text: str, *args: Any) -> Understanding:
        return self.parser.parse(text, *args)

    def filter_combinations(self) -> None:
        return None


def test_without_vector_legs_or_with_a_photo_the_legs_go_together() -> None:
    from query_service.ranking import RankingConfig, SearchRequest

    parse = _parse(base_colour=(("Red",), 0.9))
    response = {"took": 1, "timed_out": False, "hits": {"hits": [
        {"_index": "products-v1", "_id": "a", "_score": 1.0, "_source": {"id": "a"}}]}}
    engine, es = _engine_with_parse(parse, response)
    engine.encoder = _TextEncoder(es)
    engine.run_legs(SearchRequest(text="red"), RankingConfig(legs={"bm25": 1.0}))
    assert len(es.msearch_calls) == 1  # a lexical leg alone has nothing to wait for
    es.msearch_calls.clear()
    engine.encoder = None  # no model: no vector legs can run, the lexical leg goes alone and answers
    run = engine.run_legs(SearchRequest(text="red"), RankingConfig(legs={"bm25": 1.0, "text_text": 1.0}))
    assert len(es.msearch_calls) == 1 and set(run.legs) == {"bm25"}
    es.msearch_calls.clear()
    from dataclasses import replace

    engine.encoder, engine.options = _TextEncoder(es), replace(engine.options, lexical_ahead=False)  # turned off
    run = engine.run_legs(SearchRequest(text="red"), RankingConfig(legs={"bm25": 1.0, "text_text": 1.0}))
    assert [len(call) // 2 for call in es.msearch_calls] == [2] and set(run.legs) == {"bm25", "text_text"}


def test_filter_combinations_say_which_prefilters_can_match_a_leg_s_vector() -> None:
    buckets = [  # composite buckets: (type, colour, gender) and how many have each vector
        {"key": {"article_type": "Shirts", "base_colour": "Red", "gender": "Men"},
         "text_vector": {"doc_count": 3}, "image_vector": {"doc_count": 1}},
        {"key": {"article_type": "Shirts", "base_colour": "Blue", "gender": "Women"},
         "text_vector": {"doc_count": 2}, "image_vector": {"doc_count": 0}},
        {"key": {"article_type": "Jeans", "base_colour": None, "gender": "Unisex"},
         "text_vector": {"doc_count": 1}, "image_vector": {"doc_count": 1}}]
    table = attributes.FilterCombinations(buckets, ("text_vector", "image_vector"))
    red_shirts = [{"terms": {"article_type": ["Shirts"]}}, {"terms": {"base_colour": ["Red"]}}]
    assert table.can_match(red_shirts, "text_vector") and table.can_match(red_shirts, "image_vector")
    blue_shirts = [{"terms": {"article_type": ["Shirts"]}}, {"terms": {"base_colour": ["Blue"]}}]
    assert table.can_match(blue_shirts, "text_vector") and not table.can_match(blue_shirts, "image_vector")
    # Any value of a list matches (a gender filter keeps Unisex); a field the filter does not name is free.
    jeans_for_men = [{"terms": {"article_type": ["Jeans"]}}, {"terms": {"gender": ["Men", "Unisex"]}}]
    assert table.can_match(jeans_for_men, "image_vector")
    assert not table.can_match([{"terms": {"article_type": ["Jeans"]}}, {"terms": {"base_colour": ["Red"]}}],
                               "text_vector")
    assert table.can_match([], "image_vector")  # nothing to filter on
    assert table.can_match(red_shirts, "another_vector")  # not covered: assume it can
    aggregation = attributes.FilterCombinations.aggregation(("text_vector",), 100)
    assert [next(iter(source)) for source in aggregation["composite"]["sources"]] == list(attributes.FILTER_FIELDS)


def test_a_leg_whose_prefilter_cannot_match_goes_unfiltered_at_once() -> None:
    from query_service.ranking import RankingConfig, SearchRequest

    parse = _parse(article_type=(("Shirts",), 0.95), base_colour=(("Blue",), 0.95))
    response = {"took": 1, "timed_out": False, "hits": {"hits": [
        {"_index": "products-v1", "_id": "a", "_score": 1.0, "_source": {"id": "a"}}]}}
    engine, es = _engine_with_parse(parse, response)
    blue_shirt_photos = attributes.FilterCombinations([
        {"key": {"article_type": "Shirts", "base_colour": "Blue", "gender": "Men"},
         "text_vector": {"doc_count": 4}, "image_vector": {"doc_count": 0}}], ("text_vector", "image_vector"))
    engine.understander.filter_combinations = lambda: blue_shirt_photos
    engine.encoder = _TextEncoder(es)
    run = engine.run_legs(SearchRequest(text="blue shirt"),
                          RankingConfig(legs={"bm25": 1.0, "text_text": 1.0, "text_image": 1.0}))
    vector_legs = dict(zip(("text_text", "text_image"), es.msearch_calls[1][1::2]))
    assert vector_legs["text_text"]["query"]["knn"]["filter"]  # blue shirts with text vectors exist
    assert "filter" not in vector_legs["text_image"]["query"]["knn"]  # none has a photo: no filter
    assert len(es.msearch_calls) == 2 and run.filter_dropped == ["text_image"]  # and no second run


def test_the_proxy_drops_a_prefilter_that_cannot_match_and_searches_corrected_words() -> None:
    from query_service.dsl import AppQuery
    from query_service.ranking import RankingConfig

    response = {"took": 1, "timed_out": False, "hits": {"hits": [
        {"_index": "products-v1", "_id": "a", "_score": 1.0, "_source": {"id": "a"}}]}}
    engine, es = _engine_with_parse(_parse(), response)
    engine.understander = _RealParser()
    no_photos = attributes.FilterCombinations([
        {"key": {"article_type": "Shirts", "base_colour": "Black", "gender": None},
         "text_vector": {"doc_count": 2}, "image_vector": {"doc_count": 0}}], ("text_vector", "image_vector"))
    engine.understander.filter_combinations = lambda: no_photos
    engine.encoder = encoder = _RecordingEncoder(es)
    query = AppQuery(index="products", text="black shrits", body={"query": {"match": {"title": "black shrits"}}})
    [result] = engine.search_app([query], RankingConfig(legs={"bm25": 1.0, "text_text": 1.0, "text_image": 1.0}))
    assert encoder.encoded == [["black shirt"]]  # the vector legs search the corrected word
    legs_sent = dict(zip(("bm25", "text_text", "text_image"), es.msearch_calls[0][1::2]))
    assert legs_sent["bm25"]["query"]["bool"]["must"][0] == {"match": {"title": "black shrits"}}  # the app's words
    assert legs_sent["text_text"]["query"]["knn"]["filter"]  # black shirts with a text vector exist
    assert "filter" not in legs_sent["text_image"]["query"]["knn"]  # none with a photo: no filter, no re-run
    assert result.understood["filter_dropped"] == ["text_image"]


def test_words_that_also_name_other_things_boost_but_never_filter() -> None:
    from query_service.understanding import FILTER_CONFIDENCE

    vocabulary = {**VOCABULARY, "base_colour": [*VOCABULARY["base_colour"], "Blue", "Beige"]}
    parser = QueryParser(vocabulary)
    lads = parser.parse("sapphire shirts for the lads")
    assert lads.attributes["gender"].values == ("Men",) and lads.attributes["base_colour"].values == ("Blue",)
    assert lads.attributes["base_colour"].confidence >= FILTER_CONFIDENCE  # a colour word and nothing else
    stone = parser.parse("stone shirts").attributes["base_colour"]  # also "stone studded"
    assert stone.values == ("Beige", "Grey") and stone.confidence < FILTER_CONFIDENCE
    assert "base_colour" not in parser.parse("stone shirts").confident()

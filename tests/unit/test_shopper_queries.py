"""Shopper-phrased query sets: determinism, grading, held-out vocabulary, classes, composed items,
judgments that keep classes, and the per-class summary. A synthetic in-memory catalog; no server."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mmsearch.cli import build_parser
from query_service.relevance import evaluate, shopper_words
from query_service.relevance import shopper_queries as sq
from query_service.relevance.judgments import Judgment, generate, grade, read_jsonl, write_jsonl

SEED = 7
TYPES = ("Tshirts", "Shirts", "Jeans", "Casual Shoes", "Handbags", "Watches", "Kurtas", "Flip Flops", "Trousers",
         "Track Pants", "Tops", "Sweaters", "Dresses", "Sunglasses")
COLOURS = ("Black", "White", "Blue", "Navy Blue", "Grey", "Charcoal", "Red", "Maroon", "Off White", "Cream")
GENDERS = ("Men", "Women", "Boys", "Girls", "Unisex")


def _catalog() -> list[dict[str, Any]]:
    """Six products per (type, colour, gender), every third with a photo; one type too small to query."""
    products: list[dict[str, Any]] = []
    for article_type in TYPES:
        for colour in COLOURS:
            for gender in GENDERS:
                for n in range(6):
                    pid = str(len(products) + 1)
                    product = {"id": pid, "title": f"{gender} {colour} {article_type} {n}", "gender": gender,
                               "article_type": article_type, "base_colour": colour}
                    if len(products) % 3 == 0:
                        product["image"] = f"images/{pid}.jpg"
                    products.append(product)
    products += [{"id": f"r{i}", "article_type": "Blazers", "gender": "Men", "base_colour": "Black"}
                 for i in range(3)]
    return products


CATALOG = _catalog()


@pytest.fixture(scope="module")
def sets() -> dict[str, list[dict[str, Any]]]:
    return sq.generate_sets(CATALOG, SEED, text_per_split=150, composed_per_split=40)


def _phrase_in(query_tokens: Sequence[str], phrase: str) -> list[int]:
    inner = sq.tokens(phrase)
    return [i for i in range(len(query_tokens) - len(inner) + 1) if list(query_tokens[i:i + len(inner)]) == inner]


def _covered(query_tokens: Sequence[str], start: int, length: int, phrases: Sequence[str]) -> bool:
    """Is tokens[start:start+length] inside an occurrence of one of ``phrases`` (longer than it)?"""
    for phrase in phrases:
        size = len(sq.tokens(phrase))
        if size > length and any(s <= start and start + length <= s + size for s in _phrase_in(query_tokens, phrase)):
            return True
    return False


def test_same_seed_same_sets_other_seed_other_sets(sets) -> None:
    again = sq.generate_sets(list(CATALOG), SEED, text_per_split=150, composed_per_split=40)
    assert again == sets
    other = sq.generate_sets(CATALOG, SEED + 1, text_per_split=150, composed_per_split=40)
    assert [q["query"] for q in other["test"]] != [q["query"] for q in sets["test"]]
    assert {name: len(items) for name, items in sets.items()} == {"tune": 150, "test": 150, "composed_tune": 40,
                                                                  "composed_test": 40}


def test_every_intent_has_enough_relevant_products(sets) -> None:
    for items in sets.values():
        for item in items:
            grades = [grade(p, item["intent"]) for p in CATALOG]
            assert sum(g == 2 for g in grades) >= sq.MIN_RELEVANT, item
            assert item["intent"]["type"] != "Blazers"  # 3 products: below the threshold
            assert set(item["intent"]) == {"type", "colour", "gender"}


def test_queries_are_unique_across_splits(sets) -> None:
    texts = [q["query"] for name in ("tune", "test") for q in sets[name]]
    assert len(texts) == len(set(texts))
    photos = [q["source_id"] for name in ("composed_tune", "composed_test") for q in sets[name]]
    assert len(photos) == len(set(photos))


def test_word_list_halves_are_disjoint_and_balanced() -> None:
    for name, (tune, test) in sq.partition(SEED).items():
        assert not set(tune) & set(test), name
        assert sorted(tune + test) == sorted(sq.word_lists()[name]), name
    halves = sq.partition(SEED)
    assert sum(len(t) for t, _ in halves.values()) == pytest.approx(sum(len(t) for _, t in halves.values()),
                                                                    rel=0.15)
    assert sq.split_words(SEED, "test")["type:Tshirts"] == halves["type:Tshirts"][1]


def test_no_query_uses_the_other_splits_words(sets) -> None:
    shared = sorted(sq.shared_phrases(TYPES, COLOURS))
    shared_tokens = {t for phrase in shared for t in sq.tokens(phrase)}
    halves = sq.partition(SEED)
    own = {split: {t for pair in halves.values() for p in pair[i] for t in sq.tokens(p)}
           for i, split in enumerate(sq.SPLITS)}
    for i, split in enumerate(sq.SPLITS):
        other = sq.SPLITS[1 - i]
        other_only = own[other] - own[split] - shared_tokens
        other_phrases = [p for name, pair in halves.items() if not name.startswith("modifier:")
                         for p in pair[1 - i]]
        own_phrases = [p for pair in halves.values() for p in pair[i]]
        for item in sets[split] + sets[f"composed_{split}"]:
            query_tokens = sq.tokens(item["query"])
            assert not set(query_tokens) & other_only, (split, item["query"])
            for phrase in other_phrases:  # as words, unless inside a shared or own-half phrase ("navy blue")
                for start in _phrase_in(query_tokens, phrase):
                    assert _covered(query_tokens, start, len(sq.tokens(phrase)), shared + own_phrases), \
                        (split, item["query"], "uses another split's phrase")


def _all_colour_phrases() -> list[str]:
    return [c.lower() for c in COLOURS] + [v for vs in shopper_words.COLOUR_VARIANTS.values() for v in vs]


def _all_gender_phrases() -> list[str]:
    return list(shopper_words.GENDER_BASE.values()) + [w for ws in shopper_words.GENDER_WORDS.values() for w in ws]


def test_class_labels_match_intent_and_text(sets) -> None:
    for split in sq.SPLITS:
        vocab = sq.split_words(SEED, split)
        for item in sets[split]:
            intent, classes, query = item["intent"], item["classes"], item["query"]
            query_tokens = sq.tokens(query)
            assert ("colour" in classes) == (intent["colour"] is not None) != ("no_colour" in classes)
            assert ("gender" in classes) == (intent["gender"] is not None) != ("no_gender" in classes)
            assert set(classes) <= {"colour", "no_colour", "gender", "no_gender", *sq.FEATURES}
            if "no_colour" in classes:
                assert not any(_phrase_in(query_tokens, p) for p in _all_colour_phrases()), query
            if "no_gender" in classes:
                assert not any(_phrase_in(query_tokens, p) for p in _all_gender_phrases()), query
            if "gender_word" in classes:  # gender words are never misspelled
                assert any(_phrase_in(query_tokens, w) for w in vocab[f"gender:{intent['gender']}"]), query
            if "colour_variant" in classes and "misspelling" not in classes:
                assert any(_phrase_in(query_tokens, v) for v in vocab[f"colour:{intent['colour']}"]), query
            if "synonym_type" in classes and "misspelling" not in classes:
                forms = [f for s in vocab[f"type:{intent['type']}"] for f in (s, sq.flip_number(s)) if f]
                assert any(_phrase_in(query_tokens, f) for f in forms), query
    every = sq.class_counts(sets["tune"] + sets["test"])
    assert all(every[c] > 0 for c in ("colour", "no_colour", "gender", "no_gender", *sq.FEATURES)), every


def test_misspelling_changes_the_word() -> None:
    rng = random.Random(0)
    for word in ("sneakers", "trousers", "jeans", "black", "kurta", "tee"):
        for _ in range(20):
            typo = sq.misspell(word, rng, avoid={"sneaker"})
            assert typo != word and typo != "sneaker"
    assert sq.typo("shirt", "swap", 1) == "sihrt"
    assert sq.typo("shirt", "drop", 2) == "shrt"
    assert sq.typo("shirt", "double", 3) == "shirrt"
    with pytest.raises(ValueError):
        sq.typo("shirt", "rot13", 0)


def test_flip_number() -> None:
    assert sq.flip_number("tshirts") == "tshirt"
    assert sq.flip_number("wrist watch") == "wrist watches"
    assert sq.flip_number("dresses") == "dress"
    assert sq.flip_number("bra") == "bras"
    assert sq.flip_number("nighty") == "nighties"
    assert sq.flip_number("jeans") is None
    assert sq.base_forms("Kurtis") == ("kurtis", "kurti")


def test_composed_items_reference_a_photo_and_take_the_modifiers_colour(sets) -> None:
    by_id = {p["id"]: p for p in CATALOG}
    for split in sq.SPLITS:
        vocab = sq.split_words(SEED, split)
        items = sets[f"composed_{split}"]
        assert sum("colour_change" in i["classes"] for i in items) > len(items) // 2
        for item in items:
            photo = by_id[item["source_id"]]
            assert item["image"] == photo["image"] and item["intent"]["type"] == photo["article_type"]
            intent, query_tokens = item["intent"], sq.tokens(item["query"])
            if "colour_change" in item["classes"]:
                assert intent["colour"] != photo["base_colour"]
                said = [intent["colour"].lower(), *vocab[f"colour:{intent['colour']}"]]
                assert any(_phrase_in(query_tokens, p) for p in said), item
                assert grade(photo, intent) < 2  # the photo's own product is not a full match
            else:
                assert intent["colour"] == photo["base_colour"]
            if "gender_change" in item["classes"]:
                assert intent["gender"] != photo["gender"]
            else:
                assert intent["gender"] == photo["gender"]
            assert "colour_change" in item["classes"] or "gender_change" in item["classes"]


def test_word_lists_follow_their_rules() -> None:
    every = [p for listed in sq.word_lists().values() for p in listed]
    assert len(every) == len(set(every)), "a phrase in two lists"
    shared = sq.shared_phrases(shopper_words.TYPE_SYNONYMS, shopper_words.COLOUR_VARIANTS)
    assert not shared & set(every), shared & set(every)
    colour_or_gender = _all_colour_phrases() + list(shopper_words.COLOUR_VARIANTS) + _all_gender_phrases()
    for phrase in [s for ss in shopper_words.TYPE_SYNONYMS.values() for s in ss] + \
            list(shopper_words.FILLERS_BEFORE + shopper_words.FILLERS_AFTER):
        assert not any(_phrase_in(sq.tokens(phrase), p.lower()) for p in colour_or_gender), phrase


def test_judgments_keep_classes_and_source_id(sets, tmp_path: Path) -> None:
    queries = sets["test"][:3] + sets["composed_test"][:2]
    judged = generate(CATALOG, queries)
    assert [j.classes for j in judged] == [tuple(q["classes"]) for q in queries]
    assert judged[3].source_id == queries[3]["source_id"] and judged[3].image == queries[3]["image"]
    write_jsonl(judged, tmp_path / "j.jsonl")
    assert read_jsonl(tmp_path / "j.jsonl") == judged
    # A judgment without classes keeps the old line (no new keys) and reads back with none.
    plain = Judgment(qid="q", query="shirts", grades={"1": 2})
    assert set(plain.to_dict()) == {"qid", "query", "image", "intent", "grades"}
    (tmp_path / "old.jsonl").write_text(json.dumps(plain.to_dict()) + "\n")
    assert read_jsonl(tmp_path / "old.jsonl")[0].classes == ()


def test_summary_by_class_by_hand() -> None:
    per_query = {"a": {"q1": {"ndcg@10": 1.0}, "q2": {"ndcg@10": 0.0}, "q3": {"ndcg@10": 0.5}},
                 "b": {"q1": {"ndcg@10": 0.5}, "q2": {"ndcg@10": 0.5}, "q3": {"ndcg@10": 1.0}}}
    classes = {"q1": ["colour", "synonym_type"], "q2": ["colour"], "q3": ["no_colour", "synonym_type"]}
    by_class = evaluate.summarize_by_class(per_query, classes)
    assert list(by_class) == ["colour", "no_colour", "synonym_type"]
    assert by_class["colour"]["queries"] == 2
    assert by_class["colour"]["variants"]["a"]["mean"] == pytest.approx(0.5)
    assert by_class["synonym_type"]["variants"]["b"]["mean"] == pytest.approx(0.75)
    assert by_class["no_colour"]["variants"]["a"]["ci95"] == (0.5, 0.5)  # one query: a point
    low, high = by_class["colour"]["variants"]["a"]["ci95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0


def test_summarize_adds_a_class_table_only_when_judgments_have_classes() -> None:
    per_query = {v: {q: {m: s for m in ("ndcg@10", "mrr@10", "map@100", "recall@100", "p@10")}
                     for q, s in (("q1", x), ("q2", y))} for v, x, y in (("base", 0.2, 0.4), ("new", 0.6, 0.4))}
    plain = evaluate.summarize(per_query)
    assert "by_class" not in plain and evaluate.summarize(per_query, classes={"q1": (), "q2": ()}) == plain
    table = evaluate.markdown_table(plain)
    assert "by query class" not in table
    classed = evaluate.summarize(per_query, classes={"q1": ("colour",), "q2": ("no_colour",)})
    assert {k: v for k, v in classed.items() if k != "by_class"} == plain
    rendered = evaluate.markdown_table(classed)
    assert rendered.startswith(table) and "| colour | 1 | 0.200 [0.200, 0.200] | 0.600 [0.600, 0.600] |" in rendered


def _write_catalog(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    with (root / "products.jsonl").open("w") as sink:
        for product in CATALOG:
            sink.write(json.dumps(product) + "\n")
            if product.get("image"):
                (root / product["image"]).write_bytes(b"jpeg")


def test_cli_writes_the_sets_and_judgments_keep_classes(tmp_path: Path, capsys) -> None:
    _write_catalog(tmp_path / "cat")
    out = tmp_path / "shopper"
    args = build_parser().parse_args(["eval", "shopper-set", "--catalog", str(tmp_path / "cat"), "--out", str(out),
                                      "--seed", str(SEED)])
    assert args.handler(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["seed"] == SEED and result["counts"]["tune"] == sq.TEXT_PER_SPLIT
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "composed_test.jsonl", "composed_tune.jsonl",
                                                     "test.jsonl", "tune.jsonl"]
    readme = (out / "README.md").read_text()
    assert f"--seed {SEED}" in readme and "| synonym_type |" in readme
    first = json.loads((out / "composed_test.jsonl").read_text().splitlines()[0])
    assert set(first) == {"qid", "query", "image", "source_id", "intent", "classes"}
    args = build_parser().parse_args(["eval", "judgments", "--catalog", str(tmp_path / "cat"), "--queries",
                                      str(out / "composed_test.jsonl"), "--out", str(tmp_path / "j.jsonl")])
    assert args.handler(args) == 0
    judged = read_jsonl(tmp_path / "j.jsonl")
    assert judged[0].classes == tuple(first["classes"]) and judged[0].source_id == first["source_id"]
    assert judged[0].image == first["image"]

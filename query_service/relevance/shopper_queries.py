"""Shopper-phrased query sets: relevance judged on queries as shoppers type them.

``dev_queries.jsonl`` speaks catalog vocabulary ("women's purple sweaters"); shoppers
write "ladies violet jumper", "sneekers for my son", "cheap navy slacks online". This
module generates such queries, seeded and deterministic, from the word lists in
``shopper_words``, each with its intent in CATALOG values (so the README grade rule
judges it) and the classes it belongs to, plus a composed set (a product photo and a
modifier: "but in red", "in navy for men").

Tune and test never share held-out vocabulary: every word list is split in two by a
seeded hash, the tune set uses only the first half, the test set only the second. The
catalog's own words (type names and their other number, colour and gender values) are
shared. Intents may repeat across splits; query texts do not.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from query_service.relevance import shopper_words as words

SPLITS = ("tune", "test")
DEFAULT_SEED = 13
#: An intent is generated only if the catalog has this many grade-2 products for it.
MIN_RELEVANT = 5
TEXT_PER_SPLIT = 300
COMPOSED_PER_SPLIT = 100
GENDERS = ("Men", "Women", "Boys", "Girls", "Unisex")
#: The phrasing features a query's ``classes`` may list (after colour/no_colour, gender/no_gender).
FEATURES = ("synonym_type", "gender_word", "colour_variant", "plural", "misspelling", "word_order", "filler")
COMPOSED_FEATURES = ("composed", "colour_change", "gender_change", "colour_variant", "gender_word")
#: How often each phrasing feature is tried: high enough that every class has tens of queries.
P_COLOUR, P_GENDER, P_SYNONYM, P_GENDER_WORD, P_VARIANT = 0.6, 0.6, 0.6, 0.6, 0.5
P_PLURAL, P_MISSPELL, P_ORDER, P_FILLER = 0.3, 0.2, 0.2, 0.3
#: Colour values that name no colour (never an intent).
NOT_COLOURS = frozenset({"", "NA"})
TOKEN = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]*)*")
#: Typos that would turn a product word into a rude one are not generated.
_RUDE = frozenset({"shit", "shits", "tits", "ass", "arse", "cum", "fuck", "butt", "piss"})

Item = dict[str, Any]


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; apostrophes and hyphens stay inside a word ("men's", "off-white")."""
    return TOKEN.findall(text.lower())


# ---------------------------------------------------------------- vocabulary and its halves

def word_lists() -> dict[str, tuple[str, ...]]:
    """Every held-out list by name; each list is partitioned on its own."""
    lists: dict[str, tuple[str, ...]] = {}
    lists.update({f"type:{k}": v for k, v in words.TYPE_SYNONYMS.items()})
    lists.update({f"gender:{k}": v for k, v in words.GENDER_WORDS.items()})
    lists.update({f"colour:{k}": v for k, v in words.COLOUR_VARIANTS.items()})
    lists.update({f"misspelling:{k}": v for k, v in words.MISSPELLINGS.items()})
    lists["filler:before"] = words.FILLERS_BEFORE
    lists["filler:after"] = words.FILLERS_AFTER
    lists["modifier:colour"] = words.MODIFIER_COLOUR
    lists["modifier:gender"] = words.MODIFIER_GENDER
    return lists


def _rank(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join((str(seed),) + parts).encode("utf-8")).hexdigest()


def _contains(outer: Sequence[str], inner: Sequence[str]) -> bool:
    return any(list(outer[i:i + len(inner)]) == list(inner) for i in range(len(outer) - len(inner) + 1))


def _phrase_groups(lists: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """phrase -> its group's representative: phrases where one contains the other as words
    ("gray" / "charcoal gray", "pants" / "yoga pants") must share a half, or a tune query
    would teach the test word. Modifier templates are left out: they share "in", "this"
    by design and differ in their other words."""
    phrases = sorted({p for name, listed in lists.items() if not name.startswith("modifier:") for p in listed})
    parent = {p: p for p in phrases}

    def root(p: str) -> str:
        while parent[p] != p:
            p = parent[p]
        return p

    split = {p: tokens(p) for p in phrases}
    for a in phrases:
        for b in phrases:
            if a != b and _contains(split[b], split[a]):
                parent[root(b)] = root(a)
    return {p: root(p) for p in phrases}


@functools.lru_cache(maxsize=8)  # pure in the seed, and called once per split and for the README
def partition(seed: int) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """list name -> (tune half, test half).

    Each list is sorted by a seeded hash and dealt to the half that has fewer of its
    phrases so far (a seeded coin on ties), so the halves stay within about one phrase
    of each other (a pure hash coin would leave short lists one-sided). A phrase whose
    group (see :func:`_phrase_groups`) was dealt already follows its group instead.
    """
    lists = word_lists()
    groups = _phrase_groups(lists)
    group_half: dict[str, int] = {}
    out = {}
    for name, phrases in lists.items():
        halves: tuple[list[str], list[str]] = ([], [])
        for phrase in sorted(phrases, key=lambda phrase: _rank(seed, name, phrase)):
            group = groups.get(phrase)
            if group is not None and group in group_half:
                half = group_half[group]
            elif len(halves[0]) != len(halves[1]):
                half = 0 if len(halves[0]) < len(halves[1]) else 1
            else:
                half = int(_rank(seed, name, phrase, "coin"), 16) % 2
            halves[half].append(phrase)
            if group is not None:
                group_half.setdefault(group, half)
        out[name] = (tuple(halves[0]), tuple(halves[1]))
    return out


def split_words(seed: int, split: str) -> dict[str, tuple[str, ...]]:
    """The half of every list that ``split`` may use."""
    index = SPLITS.index(split)
    return {name: halves[index] for name, halves in partition(seed).items()}


def flip_number(phrase: str) -> str | None:
    """The phrase with its last word in the other grammatical number, or None when that makes no sense."""
    head, _, last = phrase.rpartition(" ")
    if last in words.NO_FLIP or not last.isalpha():
        return None
    if last.endswith(("sses", "shes", "ches", "xes")):
        other = last[:-2]
    elif last.endswith("s") and not last.endswith("ss"):
        other = last[:-1]
    elif last.endswith(("ss", "sh", "ch", "x", "z")):
        other = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        other = last[:-1] + "ies"
    else:
        other = last + "s"
    return f"{head} {other}" if head else other


def base_forms(article_type: str) -> tuple[str, str | None]:
    """The shared, catalog-vocabulary way to write a type: (listed form, other number or None)."""
    if article_type in words.BASE_FORMS:
        return words.BASE_FORMS[article_type]
    base = article_type.lower()
    return base, flip_number(base)


def shared_phrases(types: Iterable[str], colours: Iterable[str]) -> set[str]:
    """Catalog vocabulary both splits may use: type names (both numbers), colour and gender values."""
    out = {g for g in words.GENDER_BASE.values()}
    out.update(c.lower() for c in colours if c not in NOT_COLOURS)
    for article_type in types:
        out.update(form for form in (article_type.lower(), *base_forms(article_type)) if form)
    return out


# ---------------------------------------------------------------- misspellings

def typo(word: str, op: str, position: int) -> str:
    """One keyboard slip at ``position``: swap it with the next letter, drop it, or double it."""
    if op == "swap":
        return word[:position] + word[position + 1] + word[position] + word[position + 2:]
    if op == "drop":
        return word[:position] + word[position + 1:]
    if op == "double":
        return word[:position] + word[position] + word[position:]
    raise ValueError(f"unknown typo op {op!r}")


def misspell(word: str, rng: random.Random, avoid: frozenset[str] | set[str] = frozenset()) -> str:
    """A typo of ``word`` that differs from it and is no known word (``avoid``): never the first letter,
    which people rarely get wrong, and never the last (dropping a final "s" is a plural, not a typo)."""
    candidates = []
    for position in range(1, len(word) - 1):
        for op in ("swap", "drop", "double"):
            if op == "swap" and (word[position] == word[position + 1] or position + 1 >= len(word) - 1):
                continue
            candidate = typo(word, op, position)
            if candidate != word and candidate not in avoid and candidate not in _RUDE:
                candidates.append(candidate)
    if not candidates:
        return word + word[-1]  # short words: a doubled last letter is still a visible slip
    return rng.choice(candidates)


# ---------------------------------------------------------------- catalog statistics

@dataclass(frozen=True)
class CatalogStats:
    """Product counts by (type, colour, gender): how many grade-2 products an intent has."""

    exact: Mapping[tuple[str, str, str], int]
    by_type_gender: Mapping[tuple[str, str], int]
    colours: tuple[str, ...]
    genders: tuple[str, ...]
    types: tuple[str, ...]

    @classmethod
    def of(cls, products: Iterable[Mapping[str, Any]]) -> CatalogStats:
        exact: Counter[tuple[str, str, str]] = Counter()
        for product in products:
            exact[(str(product.get("article_type") or ""), str(product.get("base_colour") or ""),
                   str(product.get("gender") or ""))] += 1
        by_type_gender: Counter[tuple[str, str]] = Counter()
        for (article_type, _, gender), count in exact.items():
            by_type_gender[(article_type, gender)] += count
        colours = tuple(sorted({c for _, c, _ in exact if c not in NOT_COLOURS}))
        genders = tuple(sorted({g for _, g in by_type_gender}))
        types = tuple(sorted({t for t, _ in by_type_gender if t}))
        return cls(exact=dict(exact), by_type_gender=dict(by_type_gender), colours=colours, genders=genders,
                   types=types)

    def relevant(self, article_type: str, colour: str | None, gender: str | None) -> int:
        """Grade-2 products of an intent, by the README rule (Unisex fits every gender)."""
        genders = self.genders if gender is None else tuple(sorted({gender, "Unisex"}))
        if colour is None:
            return sum(self.by_type_gender.get((article_type, g), 0) for g in genders)
        return sum(self.exact.get((article_type, colour, g), 0) for g in genders)

    def eligible_types(self) -> list[str]:
        return sorted(t for t in words.TYPE_SYNONYMS if self.relevant(t, None, None) >= MIN_RELEVANT)


def _weighted(rng: random.Random, options: Sequence[str], weights: Sequence[float]) -> str | None:
    return rng.choices(list(options), weights=list(weights))[0] if options else None


def _pick_gender(rng: random.Random, stats: CatalogStats, article_type: str, colour: str | None,
                 allowed: Sequence[str] = GENDERS) -> str | None:
    # sqrt weights: Men/Women dominate the catalog, but Boys/Girls/Unisex queries must exist too.
    options = [g for g in allowed if stats.relevant(article_type, colour, g) >= MIN_RELEVANT]
    return _weighted(rng, options, [math.sqrt(stats.relevant(article_type, colour, g)) for g in options])


def _pick_colour(rng: random.Random, stats: CatalogStats, article_type: str, gender: str | None,
                 exclude: str | None = None) -> str | None:
    options = [c for c in stats.colours
               if c != exclude and stats.relevant(article_type, c, gender) >= MIN_RELEVANT]
    return _weighted(rng, options, [math.sqrt(stats.relevant(article_type, c, gender)) for c in options])


def _pick_intent(rng: random.Random, stats: CatalogStats, types: Sequence[str]) -> dict[str, Any]:
    article_type = _weighted(rng, types, [math.sqrt(stats.relevant(t, None, None)) for t in types])
    assert article_type is not None
    gender = _pick_gender(rng, stats, article_type, None) if rng.random() < P_GENDER else None
    colour = _pick_colour(rng, stats, article_type, gender) if rng.random() < P_COLOUR else None
    return {"type": article_type, "colour": colour, "gender": gender}


# ---------------------------------------------------------------- text queries

@dataclass
class _Phrasing:
    """The chunks of one query as they are built, and the features used ("" = absent)."""

    product: str
    colour: str = ""
    gender_before: str = ""  # "ladies", "mens", "boys'"
    gender_after: str = ""  # "for her", "for my son"
    filler_before: str = ""
    filler_after: str = ""
    features: set[str] = field(default_factory=set)


def _type_phrase(rng: random.Random, article_type: str, vocab: Mapping[str, tuple[str, ...]],
                 features: set[str]) -> str:
    synonyms = vocab.get(f"type:{article_type}", ())
    base, other = base_forms(article_type)
    if synonyms and rng.random() < P_SYNONYM:
        phrase: str = rng.choice(synonyms)
        features.add("synonym_type")
        flipped = flip_number(phrase)
    else:
        phrase, flipped = base, other
    if flipped and rng.random() < P_PLURAL:
        features.add("plural")
        return flipped
    return phrase


def _gender_phrase(rng: random.Random, gender: str, vocab: Mapping[str, tuple[str, ...]],
                   features: set[str]) -> str:
    options = vocab.get(f"gender:{gender}", ())
    if options and rng.random() < P_GENDER_WORD:
        features.add("gender_word")
        return rng.choice(options)
    return words.GENDER_BASE[gender]


def _colour_phrase(rng: random.Random, colour: str, vocab: Mapping[str, tuple[str, ...]],
                   features: set[str], p_variant: float = P_VARIANT) -> str:
    options = vocab.get(f"colour:{colour}", ())
    if options and rng.random() < p_variant:
        features.add("colour_variant")
        return rng.choice(options)
    return colour.lower()


def _misspell_phrase(rng: random.Random, phrasing: _Phrasing, vocab: Mapping[str, tuple[str, ...]],
                     known: frozenset[str]) -> None:
    """Misspell one word of the product or colour phrase: a listed real misspelling when the
    split's half has one for that word, else a keyboard typo."""
    slots = [("product", phrasing.product), ("colour", phrasing.colour)]
    choices = [(slot, i) for slot, text in slots if text for i, w in enumerate(text.split(" "))
               if len(w) >= 4 and w.isalpha()]
    if not choices:
        return
    slot, index = rng.choice(choices)
    parts = getattr(phrasing, slot).split(" ")
    listed = vocab.get(f"misspelling:{parts[index]}", ())
    parts[index] = rng.choice(listed) if listed else misspell(parts[index], rng, known)
    setattr(phrasing, slot, " ".join(parts))
    phrasing.features.add("misspelling")


def _add_filler(rng: random.Random, phrasing: _Phrasing, vocab: Mapping[str, tuple[str, ...]]) -> None:
    at_start = rng.random() < 0.5
    options = vocab["filler:before" if at_start else "filler:after"]
    if not options:
        return
    if at_start:
        phrasing.filler_before = rng.choice(options)
    else:
        phrasing.filler_after = rng.choice(options)
    phrasing.features.add("filler")


def _assemble(rng: random.Random, phrasing: _Phrasing) -> str:
    """Shopper order is [filler] [gender] [colour] product ["for ..." gender] [filler]; word_order
    shuffles the gender/colour/product chunks into another order ("shirt blue men")."""
    chunks = [c for c in (phrasing.gender_before, phrasing.colour, phrasing.product, phrasing.gender_after) if c]
    if len(chunks) >= 2 and rng.random() < P_ORDER:
        canonical = list(chunks)
        for _ in range(10):
            rng.shuffle(chunks)
            if chunks != canonical:
                phrasing.features.add("word_order")
                break
    return " ".join(c for c in (phrasing.filler_before, *chunks, phrasing.filler_after) if c)


def _text_query(rng: random.Random, intent: Mapping[str, Any], vocab: Mapping[str, tuple[str, ...]],
                known: frozenset[str]) -> tuple[str, list[str]]:
    phrasing = _Phrasing(product="")
    phrasing.product = _type_phrase(rng, intent["type"], vocab, phrasing.features)
    if intent["colour"]:
        phrasing.colour = _colour_phrase(rng, intent["colour"], vocab, phrasing.features)
    if intent["gender"]:
        gender = _gender_phrase(rng, intent["gender"], vocab, phrasing.features)
        if gender.startswith("for "):  # "for her" follows the product words, "ladies" precedes them
            phrasing.gender_after = gender
        else:
            phrasing.gender_before = gender
    if rng.random() < P_MISSPELL:
        _misspell_phrase(rng, phrasing, vocab, known)
    if rng.random() < P_FILLER:
        _add_filler(rng, phrasing, vocab)
    text = " ".join(_assemble(rng, phrasing).split())
    return text, classes_for(intent, phrasing.features, FEATURES)


def classes_for(intent: Mapping[str, Any], features: Iterable[str], order: Sequence[str]) -> list[str]:
    present = set(features)
    return ["colour" if intent.get("colour") else "no_colour", "gender" if intent.get("gender") else "no_gender",
            *[f for f in order if f in present]]


def known_words(types: Iterable[str], colours: Iterable[str]) -> frozenset[str]:
    """Every token of every list and of the shared vocabulary: a typo must be none of them."""
    phrases = set(shared_phrases(types, colours))
    for listed in word_lists().values():
        phrases.update(listed)
    return frozenset(t for phrase in phrases for t in tokens(phrase))


class LeakCheck:
    """Does a query use the other split's words? An occurrence of an other-half phrase counts
    unless it lies inside a shared or own-half phrase ("navy" inside catalog "navy blue").
    A typo can expose one ("navy bllue" leaves a bare "navy"), so every query is checked."""

    def __init__(self, seed: int, split: str, shared: Iterable[str]) -> None:
        index = SPLITS.index(split)
        halves = partition(seed)
        self.other = [tokens(p) for name, pair in halves.items() if not name.startswith("modifier:")
                      for p in pair[1 - index]]
        self.cover = [tokens(p) for p in [*shared, *(p for pair in halves.values() for p in pair[index])]]

    @staticmethod
    def _starts(outer: Sequence[str], inner: Sequence[str]) -> list[int]:
        return [i for i in range(len(outer) - len(inner) + 1) if list(outer[i:i + len(inner)]) == list(inner)]

    def leaks(self, text: str) -> bool:
        words_ = tokens(text)
        for phrase in self.other:
            for start in self._starts(words_, phrase):
                end = start + len(phrase)
                if not any(len(c) > len(phrase) and any(s <= start and end <= s + len(c)
                                                        for s in self._starts(words_, c)) for c in self.cover):
                    return True
        return False


def text_queries(stats: CatalogStats, seed: int, split: str, count: int, seen: set[str]) -> list[Item]:
    """``count`` text queries of one split; ``seen`` (shared by the splits) keeps query texts unique."""
    rng = random.Random(f"shopper-text:{seed}:{split}")
    vocab = split_words(seed, split)
    types = stats.eligible_types()
    known = known_words(stats.eligible_types(), stats.colours)
    check = LeakCheck(seed, split, shared_phrases(stats.types, stats.colours))
    out: list[Item] = []
    for _ in range(count * 50):  # bounded: a tiny catalog may not have ``count`` distinct queries
        if len(out) >= count or not types:
            break
        intent = _pick_intent(rng, stats, types)
        text, classes = _text_query(rng, intent, vocab, known)
        if text in seen or check.leaks(text):
            continue
        seen.add(text)
        out.append({"qid": f"shop-{split}-{len(out) + 1:03d}", "query": text, "intent": intent,
                    "classes": classes})
    return out


# ---------------------------------------------------------------- composed queries

def photo_pool(products: Iterable[Mapping[str, Any]], stats: CatalogStats,
               image_ok: Callable[[str], bool] | None = None) -> list[Mapping[str, Any]]:
    """Products that can be the photo of a composed query: an image, an eligible type, a colour, a gender."""
    types = set(stats.eligible_types())
    return [p for p in products
            if p.get("image") and p.get("article_type") in types and p.get("gender") in GENDERS
            and p.get("base_colour") not in (None, *NOT_COLOURS) and (image_ok is None or image_ok(str(p["image"])))]


def _adjective(word: str) -> bool:
    return word.endswith(("'", "'s")) or word in ("mens", "womens")


def _modifier_gender(rng: random.Random, gender: str, vocab: Mapping[str, tuple[str, ...]],
                     features: set[str], joined: bool) -> str:
    """A "for ..." / "in ..." phrase naming ``gender``: "for women", "for her", "in mens". After a
    colour phrase only "for ..." reads naturally, so possessive words ("girls'") are left out there."""
    options = [w for w in vocab.get(f"gender:{gender}", ()) if not (joined and _adjective(w))]
    if options and rng.random() < P_GENDER_WORD:
        features.add("gender_word")
        word = rng.choice(options)
    else:
        word = words.GENDER_BASE[gender]
    if word.startswith("for "):
        return word
    return f"in {word}" if _adjective(word) else f"for {word}"


def _composed_intent(rng: random.Random, photo: Mapping[str, Any],
                     stats: CatalogStats) -> tuple[dict[str, Any], bool, bool] | None:
    """(intent, colour changed, gender changed): mostly a colour change, some gender, some both."""
    article_type, colour, gender = photo["article_type"], photo["base_colour"], photo["gender"]
    roll = rng.random()
    change_colour, change_gender = roll < 0.85, roll >= 0.7
    new_gender = gender
    if change_gender:
        new_gender = _pick_gender(rng, stats, article_type, None,
                                  [g for g in GENDERS[:4] if g != gender]) or gender
        change_gender = new_gender != gender
    new_colour = _pick_colour(rng, stats, article_type, new_gender, exclude=colour) if change_colour else colour
    change_colour = bool(new_colour) and new_colour != colour
    intent = {"type": article_type, "colour": new_colour or colour, "gender": new_gender}
    if not (change_colour or change_gender) or stats.relevant(**_as_args(intent)) < MIN_RELEVANT:
        return None
    return intent, change_colour, change_gender


def _as_args(intent: Mapping[str, Any]) -> dict[str, Any]:
    return {"article_type": intent["type"], "colour": intent["colour"], "gender": intent["gender"]}


def _composed_item(rng: random.Random, photo: Mapping[str, Any], stats: CatalogStats,
                   vocab: Mapping[str, tuple[str, ...]]) -> tuple[str, dict[str, Any], list[str]] | None:
    chosen = _composed_intent(rng, photo, stats)
    if chosen is None:
        return None
    intent, colour_changed, gender_changed = chosen
    features = {"composed"}
    parts = []
    if colour_changed and vocab["modifier:colour"]:
        colour = _colour_phrase(rng, intent["colour"], vocab, features, p_variant=0.4)
        parts.append(rng.choice(vocab["modifier:colour"]).format(colour=colour))
        features.add("colour_change")
    if gender_changed:
        gender = _modifier_gender(rng, intent["gender"], vocab, features, joined=bool(parts))
        parts.append(gender if parts or not vocab["modifier:gender"]
                     else rng.choice(vocab["modifier:gender"]).format(gender=gender))
        features.add("gender_change")
    if not parts:
        return None
    return " ".join(parts), intent, classes_for(intent, features, COMPOSED_FEATURES)


def composed_queries(products: Sequence[Mapping[str, Any]], stats: CatalogStats, seed: int, split: str,
                     count: int, used: set[str], image_ok: Callable[[str], bool] | None = None) -> list[Item]:
    """``count`` photo + modifier items of one split; ``used`` (shared) keeps each photo in one item."""
    rng = random.Random(f"shopper-composed:{seed}:{split}")
    vocab = split_words(seed, split)
    check = LeakCheck(seed, split, shared_phrases(stats.types, stats.colours))
    pool = [p for p in photo_pool(products, stats, image_ok) if str(p["id"]) not in used]
    rng.shuffle(pool)
    out: list[Item] = []
    for photo in pool:
        if len(out) >= count:
            break
        made = _composed_item(rng, photo, stats, vocab)
        if made is None or check.leaks(made[0]):
            continue
        text, intent, classes = made
        used.add(str(photo["id"]))
        out.append({"qid": f"comp-{split}-{len(out) + 1:03d}", "query": text, "image": str(photo["image"]),
                    "source_id": str(photo["id"]), "intent": intent, "classes": classes})
    return out


# ---------------------------------------------------------------- the sets, on disk

def generate_sets(products: Iterable[Mapping[str, Any]], seed: int = DEFAULT_SEED,
                  text_per_split: int = TEXT_PER_SPLIT, composed_per_split: int = COMPOSED_PER_SPLIT,
                  image_ok: Callable[[str], bool] | None = None) -> dict[str, list[Item]]:
    """{"tune", "test", "composed_tune", "composed_test"} -> items. Same products and seed, same sets."""
    catalog = list(products)
    stats = CatalogStats.of(catalog)
    seen: set[str] = set()
    used: set[str] = set()
    sets: dict[str, list[Item]] = {}
    for split in SPLITS:
        sets[split] = text_queries(stats, seed, split, text_per_split, seen)
    for split in SPLITS:
        sets[f"composed_{split}"] = composed_queries(catalog, stats, seed, split, composed_per_split, used,
                                                     image_ok)
    return sets


def class_counts(items: Iterable[Mapping[str, Any]]) -> Counter[str]:
    return Counter(c for item in items for c in item.get("classes", ()))


def class_table_rows(sets: Mapping[str, Sequence[Item]]) -> list[str]:
    """Markdown rows: one per class, one column per set (the README's counts)."""
    names = list(sets)
    known = ("colour", "no_colour", "gender", "no_gender", *FEATURES, *COMPOSED_FEATURES)
    counts = {name: class_counts(items) for name, items in sets.items()}
    classes = sorted({c for found in counts.values() for c in found},
                     key=lambda c: (known.index(c) if c in known else len(known), c))
    return ["| class | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
            "| **queries** | " + " | ".join(str(len(sets[n])) for n in names) + " |",
            *[f"| {c} | " + " | ".join(str(counts[n].get(c, 0)) for n in names) + " |" for c in classes]]


def write_sets(sets: Mapping[str, Sequence[Item]], out_dir: Path) -> dict[str, str]:
    """One JSONL file per set, ``<name>.jsonl``; returns name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, items in sets.items():
        path = out_dir / f"{name}.jsonl"
        path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
        paths[name] = str(path)
    return paths

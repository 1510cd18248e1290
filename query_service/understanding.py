"""Query understanding: a shopper's text parsed into catalog attributes, each with a confidence. Pure.

``QueryParser(vocabulary)`` is built from the index's facet vocabulary (the values of
article type, colour, gender, usage, season and brand that the catalog really has) and
the synonym table (``understanding_synonyms``). ``parse(text, query_vector)`` reads:

1. spans of 1-4 words, longest first, that equal a catalog value or a synonym after
   normalisation (lowercase, accents folded, plural and possessive endings stripped);
   a catalog value read verbatim is most confident, a synonym less, an ambiguous head
   ("shoes": three shoe types) least;
2. when no article type was read, the encoder's similarity between the query vector and
   each article type's vector (``type_vectors``): a clear winner (margin over the
   runner-up) becomes the type, with a confidence from that margin. This is how a word
   the table does not know ("trainers", a misspelling) still finds its type.

Each field gets at most one reading. Two spans naming the same field: the more confident
wins, and on a tie the rightmost (English puts the head noun last: "shirt dress" is a
dress). The engine uses a parse as a soft signal in every leg and as a kNN pre-filter only
above ``FILTER_CONFIDENCE`` (``SearchEngine``, docs/query_service.md "Query understanding").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch import text_analysis
from query_service.understanding_synonyms import STOPWORDS, SYNONYMS

#: Fields the parser reads, in the order they are reported.
FIELDS = ("article_type", "base_colour", "gender", "usage", "season", "brand")
#: Confidence of a catalog value read verbatim (a synonym carries its own, lower).
VOCABULARY_CONFIDENCE = 0.95
BRAND_CONFIDENCE = 0.8
#: Above this, an attribute may narrow the vector legs (with the lexical leg left unfiltered).
FILTER_CONFIDENCE = 0.85
#: Embedding fallback for the type: the best type's cosine must beat the runner-up by this.
EMBEDDING_MARGIN = 0.03
EMBEDDING_MAX_CONFIDENCE = 0.6
#: The same for a query photo against the type names (cross-modal cosines are lower and closer together).
IMAGE_MARGIN = 0.01
#: A query photo's classifier guesses (the image graph's outputs): labels are taken, most probable
#: first, until their probabilities add up to ``PHOTO_MASS`` (at most ``PHOTO_MAX_LABELS``); the
#: attribute's confidence is the mass taken, and below ``PHOTO_MIN_CONFIDENCE`` the photo says nothing.
PHOTO_FIELDS = ("article_type", "base_colour")
PHOTO_MASS = 0.5
PHOTO_MAX_LABELS = 3
PHOTO_MIN_CONFIDENCE = 0.4
MAX_SPAN = 4
#: A word the lexicon does not know is read as its closest known word within this many edits
#: (1; 2 from ``LONG_WORD`` letters), when that word is the only one so close: "shrits", "walet".
SHORTEST_FUZZY = 4
LONG_WORD = 7
MAX_EDITS = 2
#: Confidence of a reading through a corrected word, relative to the reading itself.
FUZZY_DISCOUNT = 0.9
#: Two different type spans ("kurti tops") become one reading of both, below the filter threshold.
MERGED_CONFIDENCE = 0.7
#: Vocabulary values that are not attributes a shopper asks for.
_IGNORED_VALUES = frozenset({"na", "multi", "free gifts", "free items"})


@dataclass(frozen=True)
class Attribute:
    field: str
    values: tuple[str, ...]
    confidence: float
    span: str
    source: str  # "vocabulary", "synonym", "embedding" (the query's vector), "photo" (the photo's classifiers)
    #             or "photo-embedding" (the photo's vector against the type names)

    def to_dict(self) -> dict[str, Any]:
        return {"values": list(self.values), "confidence": round(self.confidence, 3), "span": self.span,
                "source": self.source}


@dataclass(frozen=True)
class Understanding:
    text: str
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    #: Misspelt words the parse read as known ones (folded word -> the known word), e.g. "shrits" ->
    #: "shirt": only corrections that named the type, so a word the lexicon does not cover is kept.
    corrections: Mapping[str, str] = field(default_factory=dict)

    def corrected_text(self) -> str | None:
        """The words with the parse's corrections, for the legs to search with (BM25 matches
        "shirt", and the encoder reads a word it knows), or None when nothing was corrected."""
        if not self.corrections:
            return None
        return " ".join(self.corrections.get(word, word) for word in tokens(self.text))

    def confident(self, threshold: float = FILTER_CONFIDENCE) -> dict[str, Attribute]:
        return {name: attr for name, attr in self.attributes.items() if attr.confidence >= threshold}

    def to_dict(self) -> dict[str, Any]:
        return {name: self.attributes[name].to_dict() for name in FIELDS if name in self.attributes}


def normalise_token(token: str) -> str:
    """One word as the parser compares it: possessive and plural endings stripped (shoes/shoe, men's/men)."""
    if token.endswith("s") and len(token) > 3 and not token.endswith(("ss", "us", "is")):
        if token.endswith("ies") and len(token) > 4:
            return token[:-3] + "y"
        if token.endswith(("shes", "ches", "xes", "sses")):
            return token[:-2]
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """The words as the lexical analysis splits them (``text_analysis.words``): one folding for both.
    The parser then strips plurals itself (``normalise_token``) instead of stemming: it compares
    words with catalog values and their synonyms, and needs them readable in ``understood.span``."""
    return text_analysis.words(text)


def phrase_key(text: str) -> tuple[str, ...]:
    return tuple(normalise_token(t) for t in tokens(text))


class QueryParser:
    """Parses text against one catalog's vocabulary; build once per index, share across requests."""

    def __init__(self, vocabulary: Mapping[str, Iterable[str]], type_vectors: Mapping[str, np.ndarray] | None = None,
                 synonyms: Mapping[str, tuple[str, tuple[str, ...], float]] = SYNONYMS) -> None:
        self.vocabulary = {name: frozenset(v for v in values if v and v.lower() not in _IGNORED_VALUES)
                           for name, values in vocabulary.items()}
        self.lexicon = self._lexicon(synonyms)
        self.known_words = frozenset(token for key in self.lexicon for token in key)
        self.known_by_deletion = self._known_tokens()
        names = sorted((type_vectors or {}).keys())
        self.type_names = names
        self.type_matrix = np.stack([np.asarray(type_vectors[n], dtype=np.float32) for n in names]) if names else None

    def _lexicon(self, synonyms: Mapping[str, tuple[str, tuple[str, ...], float]]) -> dict[tuple[str, ...], Attribute]:
        """Normalised words -> the attribute they read as (span left empty: a parse fills it in)."""
        lexicon: dict[tuple[str, ...], Attribute] = {}
        for phrase, (name, values, confidence) in synonyms.items():
            known = tuple(v for v in values if v in self.vocabulary.get(name, ()))
            if known:
                lexicon[phrase_key(phrase)] = Attribute(name, known, confidence, "", "synonym")
        for name in FIELDS:  # verbatim catalog values win over a synonym of the same words, brands over nothing
            confidence = BRAND_CONFIDENCE if name == "brand" else VOCABULARY_CONFIDENCE
            for value in sorted(self.vocabulary.get(name, ())):
                # Brands are names: matched word for word, never through plural stripping ("Basics" is not "basic").
                key = tuple(tokens(value)) if name == "brand" else phrase_key(value)
                if not key or (len(key) == 1 and key[0] in STOPWORDS):
                    continue
                existing = lexicon.get(key)
                if existing is not None and (existing.source == "vocabulary" or name == "brand"):
                    if existing.field == name and existing.source == "vocabulary":  # "Tshirt" and "Tshirts"
                        lexicon[key] = Attribute(name, existing.values + (value,), confidence, "", "vocabulary")
                    continue  # an earlier field (FIELDS order) keeps the words
                lexicon[key] = Attribute(name, (value,), confidence, "", "vocabulary")
        return lexicon

    def _known_tokens(self) -> dict[str, tuple[str, ...]]:
        """Every word of a non-brand lexicon entry, indexed by each string it becomes with up to
        ``MAX_EDITS`` letters deleted (SymSpell): the candidates of a fuzzy correction.

        Why an index: comparing an unknown word with every known word of a similar length cost
        ~5 ms per word in Python (measured with benchmarks/understanding_cost.py); two words within
        OSA distance d share a string reachable by at most d deletions from each, so looking up the
        unknown word's own deletions finds every candidate, and only those are compared."""
        index: dict[str, set[str]] = {}
        for key, reading in self.lexicon.items():
            if reading.field != "brand":
                for token in key:
                    for variant in deletions(token, MAX_EDITS):
                        index.setdefault(variant, set()).add(token)
        return {variant: tuple(sorted(words)) for variant, words in index.items()}

    def correct(self, token: str) -> str | None:
        """The one known word within the edit budget of an unknown ``token``, or None."""
        if len(token) < SHORTEST_FUZZY or token.isdigit() or token in STOPWORDS:
            return None
        budget = 1 if len(token) < LONG_WORD else 2
        candidates = {known for variant in deletions(token, budget) for known in self.known_by_deletion.get(variant, ())}
        best: list[str] = []
        best_distance = budget + 1
        for known in sorted(candidates):
            distance = edit_distance(token, known, budget + 1)  # budget + 1 means "too far"
            if distance > budget:
                continue
            if distance < best_distance:
                best, best_distance = [known], distance
            elif distance == best_distance:
                best.append(known)
        return best[0] if len(best) == 1 else None

    def parse(self, text: str, query_vector: Sequence[float] | None = None,
              image_vector: Sequence[float] | None = None,
              photo: Mapping[str, Sequence[tuple[str, float]]] | None = None) -> Understanding:
        """``photo``: the query photo's classifier guesses per field (``Encoder.encode_image_with_attributes``);
        ``image_vector``: its embedding. For a photo query the words' attributes override the photo's
        ("in black"), and the photo supplies the rest: its classifiers' type and colour, or without
        classifiers the type closest to its vector (zero-shot against the type vectors)."""
        attributes, corrections = self.read_words_and_corrections(text)
        for name in PHOTO_FIELDS:
            if name in attributes:
                continue  # the words named it
            guess = photo_attribute(name, (photo or {}).get(name, ()), self.vocabulary.get(name, frozenset()))
            if guess is not None:
                attributes[name] = guess
        if "article_type" not in attributes:
            guess = self.type_by_embedding(image_vector, IMAGE_MARGIN, "photo-embedding") \
                if image_vector is not None else self.type_by_embedding(query_vector) \
                if query_vector is not None else None
            if guess is not None:
                attributes["article_type"] = guess
        return Understanding(text, attributes, corrections)

    def read_words(self, text: str) -> dict[str, Attribute]:
        """The attributes the words name: lexicon spans, longest first, misspellings corrected."""
        return self.read_words_and_corrections(text)[0]

    def read_words_and_corrections(self, text: str) -> tuple[dict[str, Attribute], dict[str, str]]:
        """``read_words``, and the corrections the attributes it found were read with (word -> known word)."""
        words = tokens(text)
        keys = [normalise_token(word) for word in words]
        corrected = [False] * len(keys)
        for i, key in enumerate(keys):
            if key not in self.known_words and words[i] not in self.known_words:
                fixed = self.correct(key)
                if fixed is not None:
                    keys[i], corrected[i] = fixed, True
        found: dict[str, tuple[Attribute, int]] = {}
        corrections: dict[str, str] = {}
        used = [False] * len(keys)
        for size in range(min(MAX_SPAN, len(keys)), 0, -1):
            for start in range(0, len(keys) - size + 1):
                if any(used[start:start + size]):
                    continue
                reading = self.lexicon.get(tuple(keys[start:start + size]))
                if reading is None or reading.field == "brand":  # brands: the words as typed
                    raw = self.lexicon.get(tuple(words[start:start + size]))
                    reading = raw if raw is not None and raw.field == "brand" else \
                        (reading if reading is not None and reading.field != "brand" else None)
                if reading is None or (size == 1 and keys[start] in STOPWORDS):
                    continue
                fuzzy = any(corrected[start:start + size])
                attribute = Attribute(reading.field, reading.values,
                                      reading.confidence * (FUZZY_DISCOUNT if fuzzy else 1.0),
                                      " ".join(words[start:start + size]), reading.source + ("+fuzzy" if fuzzy else ""))
                found[reading.field] = (_combine(attribute, start, found.get(reading.field)))
                used[start:start + size] = [True] * size
                if reading.field == "article_type":
                    corrections.update({words[i]: keys[i] for i in range(start, start + size) if corrected[i]})
        return {name: attribute for name, (attribute, _) in found.items()}, corrections

    def type_by_embedding(self, query_vector: Sequence[float], margin_needed: float = EMBEDDING_MARGIN,
                          source: str = "embedding") -> Attribute | None:
        """The article type whose vector is clearly closest to the query's (text or photo), or None."""
        if self.type_matrix is None or len(self.type_names) < 2:
            return None
        vector = np.asarray(query_vector, dtype=np.float32)
        scores = self.type_matrix @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
        order = np.argsort(-scores)
        margin = float(scores[order[0]] - scores[order[1]])
        if margin < margin_needed:
            return None
        confidence = min(EMBEDDING_MAX_CONFIDENCE, 0.5 + margin * 5)
        return Attribute("article_type", (self.type_names[int(order[0])],), confidence, "", source)


def photo_attribute(name: str, guesses: Sequence[tuple[str, float]], known: frozenset[str]) -> Attribute | None:
    """The photo's reading of one field: its likeliest catalog labels up to ``PHOTO_MASS``, or None."""
    values: list[str] = []
    mass = 0.0
    for label, probability in guesses:
        if label not in known:
            continue  # a class of the training split the index does not have
        values.append(label)
        mass += probability
        if mass >= PHOTO_MASS or len(values) == PHOTO_MAX_LABELS:
            break
    if not values or mass < PHOTO_MIN_CONFIDENCE:
        return None
    return Attribute(name, tuple(values), min(mass, 1.0), "", "photo")


def _combine(candidate: Attribute, start: int, current: tuple[Attribute, int] | None) -> tuple[Attribute, int]:
    """Two readings of one field: two confident types merge (a kurti top is a kurti or a top); else the
    more confident wins, and on a tie the rightmost (English puts the head noun last)."""
    if current is None:
        return candidate, start
    attribute, position = current
    if candidate.field == "article_type" and set(candidate.values) != set(attribute.values) \
            and min(candidate.confidence, attribute.confidence) >= FILTER_CONFIDENCE:
        first, second = (attribute, candidate) if position < start else (candidate, attribute)
        values = tuple(dict.fromkeys(second.values + first.values))  # the head noun's values first
        return Attribute("article_type", values, MERGED_CONFIDENCE, f"{first.span} {second.span}", "merged"), \
            max(start, position)
    if candidate.confidence != attribute.confidence:
        return (candidate, start) if candidate.confidence > attribute.confidence else current
    return (candidate, start) if start > position else current


def deletions(word: str, depth: int) -> set[str]:
    """``word`` and every string made from it by deleting up to ``depth`` letters."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))} - found
        found |= frontier
    return found


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a transposition counts once), or ``limit`` once it is reached."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = 0 if char_a == char_b else 1
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row  # no early exit: a transposition can lower a later row
    return min(previous[-1], limit)


def accepted_values(attribute: Attribute) -> frozenset[str]:
    """The document values that agree with an attribute: its own, and Unisex for a gender (it fits every one)."""
    return frozenset(attribute.values) | ({"Unisex"} if attribute.field == "gender" else frozenset())


def value_agrees(value: Any, accepted: frozenset[str]) -> bool:
    """A document's field value (one value or a list of them) agrees when any of its values is accepted."""
    if isinstance(value, list):
        return not accepted.isdisjoint(value)
    return value in accepted


def matches(source: Mapping[str, Any], attribute: Attribute) -> bool:
    """Does a document's value (``_source`` or doc values) agree with the attribute? Unisex fits every gender."""
    return value_agrees(source.get(attribute.field), accepted_values(attribute))

"""Client-side lexical analysis for clusters without the analysis-common module.

The integ-test distribution has no stemmer, no synonym filter and no asciifolding
(measured: ``_analyze`` with ``asciifolding`` or the ``whitespace`` tokenizer fails;
the prebuilt ``whitespace`` analyzer and ``lowercase`` work), so BM25 there misses
"mens" vs "Men" and "shoes" vs "Shoe". Instead we analyse in Python: the indexer
writes :func:`analyzed_text` of the product's text into ``search_text_analyzed``
(mapped with the core ``whitespace`` analyzer) and the query side sends the same
analysis of the user's words, expanded with the packaged synonyms.

One function does the analysis for both sides (:func:`analyze_units`, flattened by
:func:`analyze`), so index and query tokens cannot drift apart. Everything is pure,
deterministic and cached; analyse + expand of a typical query costs tens of
microseconds (measured in docs/indexing.md "Lexical analysis without analysis-common").
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import NamedTuple

import snowballstemmer

#: The pre-analysed field (whitespace analyzer); mappings, indexer and queries share the name.
ANALYZED_FIELD = "search_text_analyzed"
#: ``_meta.lexical_analysis`` values: "client" = this module fills ``ANALYZED_FIELD``.
CLIENT = "client"
SERVER = "server"

# Words that carry no product meaning in shopper queries or titles. Kept small on
# purpose: "no"/"not"/"without" are meaning (the negative text handles them), and
# "t"/"v"/"a" as compound prefixes are joined before stopwords are dropped.
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of", "on", "or",
    "s", "the", "to", "with", "me", "my", "show", "some", "any", "that", "this",
})
# Letters-and-digits runs (``[^\W_]`` = word characters without the underscore).
_WORD = re.compile(r"[^\W_]+")
# Separators that make one compound: "t-shirt", "co-ord", "2-in-1".
_HYPHENS = frozenset({"-", "\u2010", "\u2011", "\u2012", "\u2013"})
# "women's" -> "women": the possessive is not a word of its own.
_POSSESSIVE = re.compile(r"['\u2019]s\b")
_APOSTROPHES = re.compile(r"['\u2019]")
_STEMMER = snowballstemmer.stemmer("english")
# A synonym rule can name phrases; longer spans are not looked up (bounded work per query).
MAX_SYNONYM_WORDS = 4


class Unit(NamedTuple):
    """One word of analysed text: ``key`` is its stem, or for a compound ("t-shirt") the
    stem of the joined word ("tshirt") with ``parts`` the stems of its pieces ("t", "shirt")."""

    key: str
    parts: tuple[str, ...] = ()

    def tokens(self) -> tuple[str, ...]:
        return (*self.parts, self.key) if self.parts else (self.key,)


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Porter2 (Snowball "english") stem of one lowercase word; numbers stay as they are."""
    if not word.isalpha():
        return word
    return _STEMMER.stemWord(word)


def fold(text: str) -> str:
    """Lowercase and strip accents ("Café" -> "cafe"): NFKD, then drop the combining marks."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _joins(previous: str, gap: str, word: str) -> bool:
    """Whether ``previous`` and ``word`` form one compound: hyphenated, or a lone letter before a word ("t shirt")."""
    if gap in _HYPHENS:
        return True
    return gap.isspace() and len(previous) == 1 and previous.isalpha() and previous not in STOPWORDS \
        and word.isalpha() and len(word) > 1


def _cleaned(text: str) -> str:
    return _APOSTROPHES.sub("", _POSSESSIVE.sub("", fold(text)))


def words(text: str | None) -> list[str]:
    """The words of ``text`` before any stemming: folded, possessives dropped, split on non-alphanumerics
    (the query parser reads these; ``analyze_units`` goes on to join and stem them)."""
    return _WORD.findall(_cleaned(text or ""))


def _chains(text: str) -> list[list[str]]:
    """Words of ``text`` (folded, split on non-alphanumerics), grouped into compound chains."""
    cleaned = _cleaned(text)
    chains: list[list[str]] = []
    end = -1
    for match in _WORD.finditer(cleaned):
        word = match.group()
        if chains and _joins(chains[-1][-1], cleaned[end:match.start()], word):
            chains[-1].append(word)
        else:
            chains.append([word])
        end = match.end()
    return chains


def analyze_units(text: str | None) -> tuple[Unit, ...]:
    """THE analysis (index and query side): fold, split, join compounds, drop stopwords, stem."""
    units: list[Unit] = []
    for chain in _chains(text or ""):
        if len(chain) == 1:
            if chain[0] not in STOPWORDS:
                units.append(Unit(stem(chain[0])))
            continue
        # The joined form is stemmed as one word ("t"+"shirts" -> "tshirt"). A compound with a
        # lone letter ("t-shirt", "v neck") is one word and nothing else: its pieces would make
        # "shirt" match every T-shirt (measured: "mens grey shirts" precision 0.9 -> 0.3).
        # Other compounds keep their pieces, so "round neck" still meets "Round-Neck";
        # stopword pieces ("2-in-1") count for the joined form but are not tokens of their own.
        if any(len(word) == 1 and word.isalpha() for word in chain):
            parts: tuple[str, ...] = ()
        else:
            parts = tuple(stem(word) for word in chain if word not in STOPWORDS)
        units.append(Unit(stem("".join(chain)), parts))
    return tuple(units)


def analyze(text: str | None) -> tuple[str, ...]:
    """Tokens of ``text``: each word's stem; a compound its joined form (after its pieces, see analyze_units)."""
    return tuple(token for unit in analyze_units(text) for token in unit.tokens())


def analyzed_text(values: Iterable[str | None]) -> str:
    """What the indexer stores in ``ANALYZED_FIELD``: the tokens of all ``values``, space-joined."""
    return " ".join(token for value in values if value for token in analyze(value))


def lexical_analysis_of(meta: Mapping[str, object] | None) -> str:
    """"client" when the index ``_meta`` says the indexer filled ``ANALYZED_FIELD``, else "server".

    Indices built before the field existed, and enriched legacy indices, declare nothing:
    they get the server-side analysis only, which is what they were built for.
    """
    return CLIENT if (meta or {}).get("lexical_analysis") == CLIENT else SERVER


# --- query-time synonyms ------------------------------------------------------------


class SynonymRule(NamedTuple):
    """One rule, analysed: the phrases a match expands to (stem keys, space-joined) and, for
    ``a, b`` equivalences, that the shopper's own words stay (``a => b`` replaces them, as in Solr)."""

    alternatives: tuple[str, ...]
    keep_original: bool


class SynonymTable:
    """Solr-format rules ("a, b, c" and "a, b => c") keyed by the analysed words they match."""

    def __init__(self, rules: Iterable[str]) -> None:
        self.lookup: dict[tuple[str, ...], SynonymRule] = {}
        for line in rules:
            self._add(line)

    def _add(self, line: str) -> None:
        left, arrow, right = line.partition("=>")
        sources = [phrase for phrase in left.split(",") if analyze_units(phrase)]
        targets = [phrase for phrase in (right if arrow else left).split(",") if analyze_units(phrase)]
        rule = SynonymRule(_unique(_phrase(t) for t in targets), keep_original=not arrow)
        if not rule.alternatives:
            return
        for phrase in sources:
            for keys in _lookup_keys(phrase):
                # A word in two rules keeps the first: rules files list the broad rule first.
                self.lookup.setdefault(keys, rule)

    def match(self, keys: Sequence[str], start: int) -> tuple[int, SynonymRule | None]:
        """The longest rule matching ``keys[start:]``: (number of words, rule), or (1, None)."""
        for span in range(min(MAX_SYNONYM_WORDS, len(keys) - start), 0, -1):
            rule = self.lookup.get(tuple(keys[start:start + span]))
            if rule is not None:
                return span, rule
        return 1, None


def _phrase(text: str) -> str:
    return " ".join(unit.key for unit in analyze_units(text))


def _lookup_keys(phrase: str) -> list[tuple[str, ...]]:
    """How a rule's phrase can appear in a query: word by word, or written as one compound
    ("flip flops" also matches the query "flip-flops", which analyses to the key "flipflop")."""
    keys = [tuple(unit.key for unit in analyze_units(phrase))]
    if len(keys[0]) > 1:
        joined = analyze_units("-".join(phrase.split()))
        if len(joined) == 1:
            keys.append((joined[0].key,))
    return keys


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for item in items if item))


@functools.lru_cache(maxsize=1)
def default_synonyms() -> SynonymTable:
    """The packaged rule set (``mappings/synonyms_fashion.json``), the one full clusters use in synonym_graph."""
    text = resources.files("mappings").joinpath("synonyms_fashion.json").read_text(encoding="utf-8")
    return SynonymTable(json.loads(text)["synonyms"])


def _own_forms(units: Sequence[Unit]) -> tuple[str, ...]:
    """The shopper's words as alternatives: a compound also as its pieces' phrase ("flip flop")."""
    if len(units) > 1:
        return (" ".join(unit.key for unit in units),)
    unit = units[0]
    return _unique((unit.key, " ".join(unit.parts) if len(unit.parts) > 1 else ""))


@functools.lru_cache(maxsize=4096)
def _cached_groups(text: str, table: SynonymTable) -> tuple[tuple[str, ...], ...]:
    units = analyze_units(text)
    keys = [unit.key for unit in units]
    groups: list[tuple[str, ...]] = []
    position = 0
    while position < len(units):
        span, rule = table.match(keys, position)
        own = _own_forms(units[position:position + span])
        if rule is None:
            groups.append(own)
        else:
            groups.append(_unique((*(own if rule.keep_original else ()), *rule.alternatives)))
        position += span
    return tuple(groups)


def query_groups(text: str | None, table: SynonymTable | None = None) -> tuple[tuple[str, ...], ...]:
    """The query as concepts: per word (or synonym phrase) the alternatives that may match it.

    Each alternative is a space-joined run of tokens of ``ANALYZED_FIELD`` (several tokens =
    a phrase). "sneakers for ladies" -> (("sneaker", "sport shoe", "trainer"), ("ladi", "women", ...)).
    """
    return _cached_groups(text or "", table or default_synonyms())


def expand_query(text: str | None, table: SynonymTable | None = None) -> str:
    """The flat form of :func:`query_groups`: every alternative's tokens once, space-joined."""
    tokens = (token for group in query_groups(text, table) for phrase in group for token in phrase.split())
    return " ".join(_unique(tokens))

"""What to search for (``SearchRequest``) and how to rank it (``RankingConfig``, one variant).

Both are validated at construction, so everything downstream can trust them;
the HTTP layer turns a ``RequestValidationError`` into a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mmsearch.exceptions import RequestValidationError
from query_service.fusion import COMBINATIONS, METHODS, NORMALIZATIONS

#: leg name -> (query modality, vector field or None for BM25)
LEGS: dict[str, tuple[str, str | None]] = {
    "bm25": ("text", None),
    "text_text": ("text", "text_vector"),
    "text_image": ("text", "image_vector"),
    "image_image": ("image", "image_vector"),
    "image_text": ("image", "text_vector"),
}
KEYWORD_FILTERS = ("gender", "master_category", "sub_category", "article_type", "base_colour", "season", "usage",
                   "brand", "has_image")
RANGE_FILTERS = ("year",)
#: Boolean fields among KEYWORD_FILTERS: Elasticsearch refuses anything but true/false there, which
#: would fail every leg (a 502), so other values are the client's error.
BOOLEAN_FILTERS = ("has_image",)
#: The range fields are ``integer`` in the mapping; a bound outside int32 fails every leg in Elasticsearch.
MAX_RANGE_BOUND = 2**31 - 1
FACET_FIELDS = ("gender", "article_type", "base_colour", "season", "usage", "brand", "master_category")
SOURCE_FIELDS = ("id", "title", "category_path", "gender", "master_category", "sub_category", "article_type",
                 "base_colour", "season", "usage", "year", "brand", "image", "has_image")
BOOSTABLE_FIELDS = ("title", "category_path", "search_text")

MAX_TEXT_CHARS = 512
MAX_SIZE = 100
MAX_DEPTH = 1000
MAX_NUM_CANDIDATES = 10_000  # Elasticsearch's own cap
#: Elasticsearch's own bound on ``rescore_vector.oversample`` (it refuses more than 10).
MAX_RESCORE_OVERSAMPLE = 10.0
#: The BM25 leg's window when the parse's boosts are applied by the service (``boost_window``).
MAX_BOOST_WINDOW = 5000


def _fail(message: str, **context: Any) -> None:
    raise RequestValidationError(message, **context)


def _integer(value: Any) -> bool:
    """JSON ``true`` must not pass as 1: bool is an int subclass in Python."""
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class RankingConfig:
    """One ranking variant: which legs, how deep, how they are fused."""

    name: str = "hybrid-rrf"
    legs: Mapping[str, float] = field(default_factory=lambda: {leg: 1.0 for leg in LEGS})
    method: str = "rrf"
    rrf_k: int = 60
    normalization: str = "min_max"
    combination: str = "arithmetic"
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    field_boosts: Mapping[str, float] = field(default_factory=lambda: {"title": 3.0, "category_path": 2.0,
                                                                        "search_text": 1.0})
    depth: int = 100
    num_candidates: int = 200
    #: kNN legs over quantised vectors (int8/int4/bbq): take ``oversample x k`` candidates from the
    #: quantised graph and re-score them with the stored float vectors (ES ``rescore_vector``).
    #: None leaves the index's own default (bbq_hnsw: 3 since ES 9.1; int8: none); 0 turns it off.
    rescore_oversample: float | None = None
    negative_weight: float = 0.5
    native_retriever: bool = False
    #: Query understanding (query_service.understanding): parse the text into catalog attributes
    #: and use them as soft boosts, an attribute leg in the fusion, and a confident kNN pre-filter.
    understanding: bool = True
    #: Fusion weight of the attribute leg (query_service.attributes.attribute_leg); 0 leaves it out.
    #: 4.0 and the boost's 3.0 were chosen on the shopper tuning split (docs/relevance.md, "Shopper language").
    attribute_weight: float = 4.0
    #: Scale of the lexical ``should`` boosts for parsed attributes; 0 leaves the BM25 query as it was.
    attribute_boost: float = 3.0
    #: Where those boosts are applied. 0: inside the BM25 query (``bool.should``). N >= depth: the leg
    #: asks for its plain top N and the service adds the same boosts to them before cutting to
    #: ``depth`` (``attributes.boosted_window``): the same scores for those N, without the ``should``
    #: clauses that keep Lucene from skipping blocks (at 1M products they took the leg's p99 from
    #: ~23 to ~136 ms; docs/scaling.md).
    boost_window: int = 0
    #: Confident attributes narrow the vector legs (never the lexical leg; a leg left empty runs again without).
    attribute_filter: bool = True
    #: Adaptive fusion (query_service.adaptive): a fitted policy that picks the fusion weights per query.
    #: Given as its dict (ranking files); held as an ``AdaptivePolicy``.
    adaptive: Any = None

    def __post_init__(self) -> None:
        # The name is echoed as the response's variant and a metrics label: a string, bounded.
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 100:
            _fail("name must be a string of 1 to 100 characters", setting="name")
        for name in ("legs", "bounds", "field_boosts"):
            if not isinstance(getattr(self, name), Mapping):
                _fail(f"{name} must be an object", setting=name)
        legs = dict(self.legs)
        unknown = sorted(set(legs) - set(LEGS))
        if unknown or not legs:
            _fail("legs must be a non-empty mapping of known legs to weights", unknown=unknown, known=list(LEGS))
        for leg, weight in legs.items():
            if not _number(weight) or not 0 <= weight <= 100:
                _fail("leg weights must be numbers in [0, 100]", leg=leg, weight=weight)
        if not any(weight > 0 for weight in legs.values()):
            _fail("at least one leg needs a positive weight", legs=legs)
        object.__setattr__(self, "legs", legs)
        if self.method not in METHODS:
            _fail("unknown fusion method", method=self.method, allowed=list(METHODS))
        if self.normalization not in NORMALIZATIONS:
            _fail("unknown normalization", normalization=self.normalization, allowed=list(NORMALIZATIONS))
        if self.combination not in COMBINATIONS:
            _fail("unknown combination", combination=self.combination, allowed=list(COMBINATIONS))
        if not (_integer(self.rrf_k) and 0 <= self.rrf_k <= 10_000):
            _fail("rrf_k must be an integer in [0, 10000]", rrf_k=self.rrf_k)
        bounds: dict[str, tuple[float, float]] = {}
        for leg, pair in dict(self.bounds).items():
            if (leg not in LEGS or not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(_number(v) for v in pair) or not pair[0] <= pair[1]):
                _fail("bounds must map legs to [low, high] numbers with low <= high", leg=leg, bounds=str(pair))
            bounds[leg] = (float(pair[0]), float(pair[1]))
        object.__setattr__(self, "bounds", bounds)
        boosts = dict(self.field_boosts)
        if not boosts or set(boosts) - set(BOOSTABLE_FIELDS):
            _fail("field_boosts must name text fields", unknown=sorted(set(boosts) - set(BOOSTABLE_FIELDS)),
                  known=list(BOOSTABLE_FIELDS))
        if any(not _number(b) or not 0 < b <= 100 for b in boosts.values()):
            _fail("field boosts must be in (0, 100]", field_boosts=boosts)
        object.__setattr__(self, "field_boosts", boosts)
        if not (_integer(self.depth) and 1 <= self.depth <= MAX_DEPTH):
            _fail(f"depth must be an integer in [1, {MAX_DEPTH}]", depth=self.depth)
        if not (_integer(self.num_candidates) and self.depth <= self.num_candidates <= MAX_NUM_CANDIDATES):
            _fail(f"num_candidates must be in [depth, {MAX_NUM_CANDIDATES}]", num_candidates=self.num_candidates,
                  depth=self.depth)
        if self.rescore_oversample is not None and not (
                _number(self.rescore_oversample)
                and (self.rescore_oversample == 0 or 1 <= self.rescore_oversample <= MAX_RESCORE_OVERSAMPLE)):
            _fail(f"rescore_oversample must be null, 0 (off) or a number in [1, {MAX_RESCORE_OVERSAMPLE}]",
                  rescore_oversample=self.rescore_oversample)
        if not _number(self.negative_weight) or not 0 <= self.negative_weight <= 1:
            _fail("negative_weight must be in [0, 1]", negative_weight=self.negative_weight)
        if not (_integer(self.boost_window) and (self.boost_window == 0
                                                  or self.depth <= self.boost_window <= MAX_BOOST_WINDOW)):
            _fail(f"boost_window must be 0 (boosts in the query) or an integer in [depth, {MAX_BOOST_WINDOW}]",
                  boost_window=self.boost_window, depth=self.depth)
        for name in ("attribute_weight", "attribute_boost"):
            if not _number(getattr(self, name)) or not 0 <= getattr(self, name) <= 100:
                _fail(f"{name} must be a number in [0, 100]", value=getattr(self, name))
        if self.adaptive is not None and not hasattr(self.adaptive, "choose"):
            from query_service.adaptive import AdaptivePolicy

            if not isinstance(self.adaptive, Mapping):
                _fail("adaptive must be a fitted policy object (mmsearch eval tune-adaptive)")
            try:
                object.__setattr__(self, "adaptive", AdaptivePolicy.from_dict(self.adaptive))
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                _fail(f"adaptive must be a fitted policy (mmsearch eval tune-adaptive): {exc}")
        for name in ("understanding", "attribute_filter", "native_retriever"):
            if not isinstance(getattr(self, name), bool):
                _fail(f"{name} must be true or false", value=getattr(self, name))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RankingConfig:
        if not isinstance(data, Mapping):
            _fail("a ranking config must be a mapping")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            _fail("unknown ranking settings", unknown=unknown, known=sorted(known))
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        policy = self.adaptive
        data = asdict(dataclasses.replace(self, adaptive=None))
        data["bounds"] = {k: list(v) for k, v in self.bounds.items()}
        data["adaptive"] = policy.to_dict() if policy is not None else None
        return data

    def with_overrides(self, overrides: Mapping[str, Any]) -> RankingConfig:
        # Shallow: __post_init__ copies every mapping it keeps, and asdict()'s deep copy was most
        # of the cost of a request that brings its own ranking.
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return RankingConfig.from_dict({**current, **dict(overrides)})


@dataclass(frozen=True)
class SearchRequest:
    """A shopper's query: text, image, or both, plus filters and paging."""

    text: str | None = None
    image: bytes | None = None
    negative_text: str | None = None
    filters: Mapping[str, Any] = field(default_factory=dict)
    size: int = 10
    offset: int = 0
    facets: tuple[str, ...] = ()
    text_weight: float = 1.0
    image_weight: float = 1.0
    explain: bool = True
    unit_id: str | None = None

    def __post_init__(self) -> None:
        text = (self.text or "").strip() or None
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "negative_text", (self.negative_text or "").strip() or None)
        if text is None and self.image is None:
            _fail("give a text query, an image, or both")
        for name in ("text", "negative_text"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_TEXT_CHARS:
                _fail(f"{name} is longer than {MAX_TEXT_CHARS} characters", length=len(value))
        if not (_integer(self.size) and 0 <= self.size <= MAX_SIZE):
            _fail(f"size must be an integer in [0, {MAX_SIZE}]", size=self.size)
        if not (_integer(self.offset) and 0 <= self.offset <= MAX_DEPTH):
            _fail(f"from/offset must be an integer in [0, {MAX_DEPTH}]", offset=self.offset)
        for name in ("text_weight", "image_weight"):
            value = getattr(self, name)
            if not _number(value) or not 0 <= value <= 10:
                _fail(f"{name} must be a number in [0, 10]", value=value)
        facets = tuple(self.facets)
        if set(facets) - set(FACET_FIELDS):
            _fail("unknown facet fields", unknown=sorted(set(facets) - set(FACET_FIELDS)), known=list(FACET_FIELDS))
        object.__setattr__(self, "facets", facets)
        object.__setattr__(self, "filters", validate_filters(self.filters))

    @property
    def modalities(self) -> set[str]:
        return {m for m, present in (("text", self.text), ("image", self.image)) if present is not None}


def validate_filters(filters: Any) -> dict[str, Any]:
    """Whitelisted keyword (value or list) and range ({gte,lte,gt,lt}) filters only."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        _fail("filters must be an object")
    clean: dict[str, Any] = {}
    for name, value in filters.items():
        if name in KEYWORD_FILTERS:
            values = value if isinstance(value, list) else [value]
            if not values or len(values) > 50 or not all(isinstance(v, (str, bool, int)) for v in values):
                _fail("keyword filters take a value or a list of up to 50 values", field=name)
            clean[name] = [_boolean_filter_value(name, v) for v in values] if name in BOOLEAN_FILTERS else values
        elif name in RANGE_FILTERS:
            if not isinstance(value, Mapping) or not value or set(value) - {"gte", "lte", "gt", "lt"}:
                _fail("range filters take an object with gte/lte/gt/lt", field=name)
            if not all(_number(v) for v in value.values()):
                _fail("range bounds must be numbers", field=name)
            if not all(abs(v) <= MAX_RANGE_BOUND for v in value.values()):  # NaN fails this too
                _fail(f"range bounds must lie within [-{MAX_RANGE_BOUND}, {MAX_RANGE_BOUND}]", field=name)
            clean[name] = dict(value)
        else:
            _fail("filtering on this field is not allowed", field=name,
                  allowed=list(KEYWORD_FILTERS + RANGE_FILTERS))
    return clean


def _boolean_filter_value(name: str, value: Any) -> bool:
    """true/false, or their spelling in a query string ("true", "False")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    _fail(f"{name} filters take true or false", field=name, value=str(value)[:50])
    raise AssertionError("unreachable")  # _fail raises; this keeps the return type honest


@dataclass(frozen=True)
class ServiceRanking:
    """What a deployment configures once: the ranking ``/search`` and the proxy use when a request
    names none, and the proxy's default options (``{}``, ``{"off": True}`` or ranking overrides;
    a request's ``X-Hybrid-Options`` header replaces them)."""

    default: RankingConfig = field(default_factory=RankingConfig)
    proxy: Mapping[str, Any] = field(default_factory=dict)


def load_service_ranking(path: Any) -> ServiceRanking:
    """Read a JSON/YAML ranking file: RankingConfig fields, plus an optional ``proxy`` entry
    (``false``/``"off"`` to pass proxied searches through, or an object of ranking overrides).

    A variants file (``{variants: [...]}``, what ``mmsearch eval tune`` writes) works too:
    ``FILE:NAME`` picks a variant, and a file with a single variant needs no name. Every
    problem is a ``ConfigError`` naming the file, so ``mmsearch serve`` fails before forking.
    """
    from pathlib import Path

    from mmsearch.config import read_mapping_file
    from mmsearch.exceptions import ConfigError

    text = str(path)
    variant = None
    if not Path(text).exists() and ":" in text:
        text, variant = text.rsplit(":", 1)
    data = dict(read_mapping_file(Path(text), what="ranking file"))
    if "variants" in data:
        data = _pick_variant(data, variant, text)
    elif variant is not None:
        raise ConfigError("ranking file has no variants to pick from", path=text, variant=variant)
    proxy_raw = data.pop("proxy", {})
    try:
        default = RankingConfig.from_dict(data)
        if proxy_raw is False or (isinstance(proxy_raw, str) and proxy_raw.strip().lower() == "off"):
            proxy: dict[str, Any] = {"off": True}
        elif isinstance(proxy_raw, Mapping):
            proxy = dict(proxy_raw)
            default.with_overrides({k: v for k, v in proxy.items() if k != "off"})  # validate now, not per request
            if "off" in proxy and not isinstance(proxy["off"], bool):
                _fail("proxy.off must be true or false", value=proxy["off"])
        else:
            _fail("proxy must be false, \"off\" or an object of ranking overrides", value=str(proxy_raw)[:50])
    except RequestValidationError as exc:
        raise ConfigError(f"ranking file: {exc.message}", **{**exc.context, "path": text}) from exc
    return ServiceRanking(default=default, proxy=proxy)


def _pick_variant(data: Mapping[str, Any], name: str | None, path: str) -> dict[str, Any]:
    """One variant of a variants file (plus the file's top-level ``proxy`` entry, if any)."""
    from mmsearch.exceptions import ConfigError

    items = data["variants"]
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items) or not items:
        raise ConfigError("ranking file: variants must be a non-empty list of ranking configs", path=path)
    names = [str(item.get("name", "")) for item in items]
    if name is None and len(items) > 1:
        raise ConfigError("ranking file holds several variants: name one as FILE:NAME", path=path, variants=names)
    chosen = items[0] if name is None else next((i for i in items if i.get("name") == name), None)
    if chosen is None:
        raise ConfigError("no such variant in the ranking file", path=path, variant=name, variants=names)
    extra = {"proxy": data["proxy"]} if "proxy" in data else {}
    return {**dict(chosen), **extra}

"""Build index bodies (settings + mappings + _meta) from the JSON templates in this package.

Everything here is pure: inputs are the template files, the model manifest facts
(dim, identity, name), the cluster capabilities and a :class:`VectorConfig`;
output is the dict sent to ``indices.create``. The index schema is the one in
docs/architecture.md; bumping :data:`SCHEMA_VERSION` is required whenever a
field changes meaning, so an index can be matched to the code that reads it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mmsearch.exceptions import ConfigError
from mmsearch.text_analysis import CLIENT, SERVER

SCHEMA_VERSION = 1
TEMPLATE = "products.json"
ANALYSIS_ENGLISH = "analysis_english.json"
ANALYSIS_STANDARD = "analysis_standard.json"
DEFAULT_SYNONYMS = "synonyms_fashion.json"
LEXICAL_CLIENT = "lexical_client.json"
TEXT_VECTOR = "text_vector"
IMAGE_VECTOR = "image_vector"
VECTOR_FIELDS = (TEXT_VECTOR, IMAGE_VECTOR)

#: dense_vector index_options types ES 9.x accepts. HNSW variants take m / ef_construction.
HNSW_TYPES = ("hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw")
FLAT_TYPES = ("flat", "int8_flat", "int4_flat", "bbq_flat")
SIMILARITIES = ("cosine", "dot_product")
#: BBQ quantises to 1 bit per dimension and ES refuses it below 64 dims.
BBQ_MIN_DIMS = 64
#: ES caps index.number_of_shards at 1024; more replicas than 16 copies is a typo, not a plan.
MAX_SHARDS = 1024
MAX_REPLICAS = 16


@dataclass(frozen=True)
class IndexSettings:
    """Shards and replicas of a new product index; ``None`` keeps mappings/products.json's value.

    The template's default is one shard and ``auto_expand_replicas: 0-1`` (no replica on a single
    node, one as soon as a second node joins). An explicit ``replicas`` replaces the auto-expansion:
    ES lets ``auto_expand_replicas`` override ``number_of_replicas``, so both cannot be kept.
    """

    shards: int | None = None
    replicas: int | None = None

    def __post_init__(self) -> None:
        # type() is int: JSON/YAML ``true`` must not pass as one shard (bool is an int subclass).
        if self.shards is not None and not (type(self.shards) is int and 1 <= self.shards <= MAX_SHARDS):
            raise ConfigError(f"shards must be an integer in [1, {MAX_SHARDS}]", setting="shards", value=self.shards)
        if self.replicas is not None and not (type(self.replicas) is int and 0 <= self.replicas <= MAX_REPLICAS):
            raise ConfigError(f"replicas must be an integer in [0, {MAX_REPLICAS}]", setting="replicas",
                              value=self.replicas)

    def apply(self, index_settings: dict[str, Any]) -> dict[str, Any]:
        """``index_settings`` (the template's ``settings.index``) with these values written in."""
        if self.shards is not None:
            index_settings["number_of_shards"] = self.shards
        if self.replicas is not None:
            index_settings.pop("auto_expand_replicas", None)
            index_settings["number_of_replicas"] = self.replicas
        return index_settings

    def to_dict(self) -> dict[str, Any]:
        """What ``_meta.index_settings`` records: the effective shards and replicas of the body."""
        applied = self.apply(dict(load_template()["settings"]["index"]))
        return {"shards": int(applied["number_of_shards"]),
                "replicas": applied.get("number_of_replicas", applied.get("auto_expand_replicas"))}


@dataclass(frozen=True)
class VectorConfig:
    """How the two dense_vector fields are indexed.

    ``cosine`` is the safe default: our encoders L2-normalise, so ``dot_product``
    ranks identically and is slightly cheaper, but it makes ES reject any
    vector that is not unit length, which an encoder bug would then turn into
    a failed build instead of a slightly odd ranking.
    """

    index_type: str = "int8_hnsw"
    similarity: str = "cosine"
    m: int = 16
    ef_construction: int = 100

    def __post_init__(self) -> None:
        if self.index_type not in HNSW_TYPES + FLAT_TYPES:
            raise ConfigError("unknown dense_vector index type", setting="index_type", value=self.index_type,
                              allowed=list(HNSW_TYPES + FLAT_TYPES))
        if self.similarity not in SIMILARITIES:
            raise ConfigError("unknown vector similarity", setting="similarity", value=self.similarity,
                              allowed=list(SIMILARITIES))
        if not 2 <= self.m <= 512:
            raise ConfigError("m must be in [2, 512]", setting="m", value=self.m)
        if not self.m <= self.ef_construction <= 3200:
            raise ConfigError("ef_construction must be in [m, 3200]", setting="ef_construction",
                              value=self.ef_construction)

    def index_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"type": self.index_type}
        if self.index_type in HNSW_TYPES:
            options.update(m=self.m, ef_construction=self.ef_construction)
        return options

    def to_dict(self) -> dict[str, Any]:
        return {"index_type": self.index_type, "similarity": self.similarity, "m": self.m,
                "ef_construction": self.ef_construction}


@dataclass(frozen=True)
class ModelFacts:
    """What the index needs to know about the model (from its manifest)."""

    identity: str
    name: str
    dim: int

    def __post_init__(self) -> None:
        if not (isinstance(self.dim, int) and 1 <= self.dim <= 4096):
            raise ConfigError("model dim must be an integer in [1, 4096]", setting="dim", value=self.dim)
        if not self.identity:
            raise ConfigError("model identity is empty", setting="identity")

    @classmethod
    def from_encoder(cls, encoder: Any) -> ModelFacts:
        return cls(identity=str(encoder.identity), name=str(encoder.name), dim=int(encoder.dim))


@dataclass(frozen=True)
class AnalysisConfig:
    """English stemming (+ optional search-time synonyms) needs analysis-common; else ``standard``."""

    english: bool
    synonyms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.synonyms and not self.english:
            raise ConfigError("synonyms need the analysis-common module, which this cluster lacks",
                              setting="synonyms")
        for rule in self.synonyms:
            if not isinstance(rule, str) or not rule.strip() or "\n" in rule:
                raise ConfigError("each synonym rule must be one non-empty line", setting="synonyms", rule=rule)

    @classmethod
    def for_cluster(cls, capabilities: Any, synonyms: Sequence[str] | None = None) -> AnalysisConfig:
        """Pick the analyzer for ``capabilities``; synonyms are dropped (not an error) without analysis-common."""
        english = bool(getattr(capabilities, "english_analyzer_available", False))
        return cls(english=english, synonyms=tuple(synonyms or ()) if english else ())

    @property
    def lexical_analysis(self) -> str:
        """``_meta.lexical_analysis``: "server" (ES analyzers stem) or "client" (the indexer pre-analyses)."""
        return SERVER if self.english else CLIENT

    @property
    def name(self) -> str:
        if not self.english:
            return "standard"
        return "english+synonyms" if self.synonyms else "english"


@dataclass(frozen=True)
class IndexSpec:
    """All inputs of :func:`build_index_body`."""

    model: ModelFacts
    analysis: AnalysisConfig
    vectors: VectorConfig = field(default_factory=VectorConfig)
    settings: IndexSettings = field(default_factory=IndexSettings)
    source: str = ""
    created_at: str | None = None

    def __post_init__(self) -> None:
        if self.vectors.index_type.startswith("bbq") and self.model.dim < BBQ_MIN_DIMS:
            raise ConfigError("bbq index types need at least 64 dims", setting="index_type",
                              dim=self.model.dim, index_type=self.vectors.index_type)


def _read_json(name: str) -> dict[str, Any]:
    text = resources.files("mappings").joinpath(name).read_text(encoding="utf-8")
    data = json.loads(text)
    data.pop("_comment", None)
    return data


def load_template() -> dict[str, Any]:
    """The base product template (fresh copy, safe to mutate)."""
    return _read_json(TEMPLATE)


def load_synonyms(path: str | Path | None = None) -> tuple[str, ...]:
    """Synonym rules from a JSON file ``{"synonyms": [...]}`` or a Solr-format text file; None = packaged default."""
    if path is None or str(path) == "default":
        return tuple(_read_json(DEFAULT_SYNONYMS)["synonyms"])
    path = Path(path)
    if not path.is_file():
        raise ConfigError("synonyms file not found", setting="synonyms", path=str(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            rules = json.loads(text)["synonyms"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError('synonyms JSON must be {"synonyms": ["a, b", ...]}', path=str(path)) from exc
    else:
        rules = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return tuple(str(rule) for rule in rules)


def analysis_settings(analysis: AnalysisConfig) -> dict[str, Any]:
    """The ``index.analysis`` block defining ``product_text`` and ``product_text_search``."""
    if not analysis.english:
        return _read_json(ANALYSIS_STANDARD)
    body = _read_json(ANALYSIS_ENGLISH)
    if analysis.synonyms:
        body["filter"]["product_synonyms"] = {"type": "synonym_graph", "synonyms": list(analysis.synonyms),
                                              "lenient": True}
        search = body["analyzer"]["product_text_search"]["filter"]
        # Synonyms go before the stemmers: rules are written in surface forms and the
        # stemmers then normalise both sides, so "tees" still meets "t-shirts".
        search.insert(search.index("asciifolding") + 1, "product_synonyms")
    return body


def vector_field(dim: int, vectors: VectorConfig) -> dict[str, Any]:
    return {"type": "dense_vector", "dims": dim, "index": True, "similarity": vectors.similarity,
            "index_options": vectors.index_options()}


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def index_meta(spec: IndexSpec, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta = {
        "model_identity": spec.model.identity,
        "model_name": spec.model.name,
        "model_dim": spec.model.dim,
        "schema_version": SCHEMA_VERSION,
        "created_at": spec.created_at or utc_now(),
        "source": spec.source,
        "analyzer": spec.analysis.name,
        "vectors": spec.vectors.to_dict(),
    }
    meta.update(extra or {})
    return meta


def build_index_body(spec: IndexSpec) -> dict[str, Any]:
    """``{"settings": ..., "mappings": ...}`` for a new product index."""
    body = load_template()
    spec.settings.apply(body["settings"]["index"])
    body["settings"]["index"]["analysis"] = analysis_settings(spec.analysis)
    properties = body["mappings"]["properties"]
    for name in VECTOR_FIELDS:
        properties[name] = vector_field(spec.model.dim, spec.vectors)
    if spec.analysis.lexical_analysis == CLIENT:
        # No stemmer on this cluster: the indexer fills a pre-analysed field instead
        # (mmsearch.text_analysis); full clusters keep the english analyzers unchanged.
        properties.update(_read_json(LEXICAL_CLIENT)["properties"])
    # Catalog builds write _id = the product's ``id`` (a keyword, so doc values): the query
    # engine may then read ids from doc values instead of loading each hit's stored _id.
    body["mappings"]["_meta"] = index_meta(spec, {"doc_id_field": "id",
                                                  "lexical_analysis": spec.analysis.lexical_analysis,
                                                  "index_settings": spec.settings.to_dict()})
    return body


def build_enriched_body(legacy_mappings: Mapping[str, Any], legacy_settings: Mapping[str, Any],
                        spec: IndexSpec) -> dict[str, Any]:
    """Legacy mapping + the two vector fields (+ content_hash), legacy analysis kept as is.

    The old application keeps querying its own fields with its own analyzers, so
    nothing of the legacy mapping changes; only fields are added.
    """
    mappings = copy.deepcopy(dict(legacy_mappings))
    properties = mappings.setdefault("properties", {})
    clash = [name for name in (*VECTOR_FIELDS, "content_hash") if name in properties]
    if clash:
        raise ConfigError("legacy index already has fields the enrichment would add", fields=clash)
    for name in VECTOR_FIELDS:
        properties[name] = vector_field(spec.model.dim, spec.vectors)
    properties["content_hash"] = {"type": "keyword"}
    legacy_meta = mappings.get("_meta") or {}
    mappings["_meta"] = {**legacy_meta, **index_meta(spec, {"enriched_from_meta": bool(legacy_meta)})}
    index_settings = (legacy_settings.get("index") or {}) if legacy_settings else {}
    settings: dict[str, Any] = {"index": {
        "number_of_shards": int(index_settings.get("number_of_shards", 1)),
        "auto_expand_replicas": "0-1",
    }}
    if "analysis" in index_settings:
        settings["index"]["analysis"] = copy.deepcopy(index_settings["analysis"])
    for key in ("max_result_window", "similarity"):
        if key in index_settings:
            settings["index"][key] = copy.deepcopy(index_settings[key])
    return {"settings": settings, "mappings": mappings}


def check_mapping_against_model(mappings: Mapping[str, Any], model: ModelFacts) -> list[str]:
    """Problems (empty = consistent) between a live index mapping and a model."""
    problems: list[str] = []
    meta = mappings.get("_meta") or {}
    properties = mappings.get("properties") or {}
    for name in VECTOR_FIELDS:
        definition = properties.get(name)
        if not definition:
            problems.append(f"{name} is not mapped")
        elif definition.get("type") != "dense_vector":
            problems.append(f"{name} is {definition.get('type')}, not dense_vector")
        elif int(definition.get("dims", -1)) != model.dim:
            problems.append(f"{name} has dims {definition.get('dims')}, model has {model.dim}")
    if meta.get("model_identity") != model.identity:
        problems.append(f"_meta.model_identity {str(meta.get('model_identity'))[:12]} != model {model.identity[:12]}")
    if meta.get("model_dim") not in (None, model.dim):
        problems.append(f"_meta.model_dim {meta.get('model_dim')} != model dim {model.dim}")
    if meta.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"_meta.schema_version {meta.get('schema_version')} != {SCHEMA_VERSION}")
    return problems

"""Pure document logic: record normalisation, brand heuristic, content hash, bulk actions, results.

Nothing here does I/O, so all of it is unit-tested without a cluster; the
pipeline (``indexer.pipeline``) only wires these functions to threads and ES.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from indexer.catalog import MAX_ID_BYTES, CatalogConfig
from mmsearch.exceptions import BadRecordError
from mmsearch.jsoncodec import float_list
from mmsearch.text_analysis import ANALYZED_FIELD, CLIENT, analyzed_text, lexical_analysis_of

KEYWORD_FIELDS = ("gender", "master_category", "sub_category", "article_type", "base_colour", "season", "usage",
                  "brand")
CATEGORY_SEPARATOR = " > "
#: The fields that feed ``search_text`` (copy_to in mappings/products.json), in that order;
#: the pre-analysed ``search_text_analyzed`` is built from the same ones.
LEXICAL_SOURCES = ("title", "category_path", "gender", "base_colour", "usage", "season", "brand")

# --- brand heuristic ---------------------------------------------------------------
# Catalog titles read "<Brand> <Gender> <colour/style words> <type>": "Nike Men Blue
# T20 Indian Cricket Jersey", "United Colors of Benetton Men Solid Grey Jacket".
# So the brand is the run of words before the first gender word, the first word of
# the product's colour, or a word of its article type; capped at 4 words (the longest
# real brands, "United Colors of Benetton"). When none of those markers appears in the
# first 5 words ("Ferrari Tee", "Nike Sahara Team India Fanwear Jersey") we keep only
# the first word. A title that starts with a marker ("Men Black Shirt") has no brand.
_GENDER_WORDS = frozenset({
    "men", "mens", "men's", "man", "women", "womens", "women's", "woman", "unisex", "boys", "boy", "boys'",
    "girls", "girl", "girls'", "kids", "kid", "kids'", "baby", "infant", "infants",
})
MAX_BRAND_WORDS = 4
_BRAND_SCAN_WORDS = 5
_WORD = re.compile(r"\S+")


def _stem(word: str) -> str:
    word = word.lower().strip(".,;:()'\"")
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def derive_brand(title: str | None, base_colour: str | None = None, article_type: str | None = None) -> str | None:
    words = _WORD.findall(title or "")
    if not words:
        return None
    markers = {_stem(w) for w in _WORD.findall(article_type or "")}
    colour_words = _WORD.findall(base_colour or "")
    if colour_words:
        markers.add(_stem(colour_words[0]))
    for position, word in enumerate(words[:_BRAND_SCAN_WORDS]):
        if word.lower() in _GENDER_WORDS or _stem(word) in markers:
            if position == 0:
                return None
            return " ".join(words[:min(position, MAX_BRAND_WORDS)])
    return words[0]


# --- normalisation -------------------------------------------------------------------


def _clean_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from CSV/Parquet means missing
        return None
    text = str(value).strip()
    return text or None


def _clean_year(value: Any) -> int | None:
    # A malformed year loses only the year filter for this product, not the product,
    # so it is dropped rather than dead-lettered.
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(float(value)) if isinstance(value, (str, float)) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 1000 <= number <= 9999 else None


def normalise_record(record: Mapping[str, Any], config: CatalogConfig) -> dict[str, Any]:
    """Map a raw catalog record to schema fields, or raise BadRecordError (missing/invalid id)."""
    raw_id = record.get(config.column("id"))
    if isinstance(raw_id, float) and raw_id.is_integer():
        raw_id = int(raw_id)  # CSV/Parquet numeric ids: 15970.0 must stay "15970"
    product_id = _clean_text(raw_id)
    if product_id is None:
        raise BadRecordError("missing id", column=config.column("id"))
    if len(product_id.encode("utf-8")) > MAX_ID_BYTES or "\n" in product_id:
        raise BadRecordError("invalid id (over 512 bytes or multi-line)", id=product_id[:80])
    doc: dict[str, Any] = {"id": product_id}
    title = _clean_text(record.get(config.column("title")))
    if title is not None:
        doc["title"] = title
    for name in KEYWORD_FIELDS:
        value = _clean_text(record.get(config.column(name)))
        if value is not None:
            doc[name] = value
    year = _clean_year(record.get(config.column("year")))
    if year is not None:
        doc["year"] = year
    explicit_path = _clean_text(record.get(config.column("category_path"))) if "category_path" in config.fields \
        else None
    levels = [doc.get(level) or _clean_text(record.get(config.column(level))) for level in config.category_levels]
    path = explicit_path or CATEGORY_SEPARATOR.join(level for level in levels if level)
    if path:
        doc["category_path"] = path
    if "brand" not in doc and config.derive_brand:
        brand = derive_brand(title, doc.get("base_colour"), doc.get("article_type"))
        if brand:
            doc["brand"] = brand
    image = record.get(config.column("image"))
    if isinstance(image, (bytes, bytearray)):
        doc["_image_bytes"] = bytes(image)  # Parquet binary column; never stored in ES
        doc["image"] = f"<{len(image)} bytes inline>"
    else:
        image_text = _clean_text(image)
        if image_text is not None:
            doc["image"] = image_text
    return doc


def image_reference_for_source(image: str) -> str:
    """What is stored in the ``image`` field: the reference, but never a whole base64 payload."""
    if image.startswith("data:") or len(image) > 1024:
        return f"<inline image, sha256 {hashlib.sha256(image.encode()).hexdigest()[:16]}>"
    return image


# --- hashing and actions -----------------------------------------------------------


def content_hash(doc: Mapping[str, Any], image_digest: str | None, model_identity: str) -> str:
    """sha256 over the document fields, the image bytes' digest and the model identity.

    The model identity is part of it so that a resumed build with a different
    model re-encodes everything instead of keeping stale vectors.
    """
    fields = {k: v for k, v in doc.items() if not k.startswith("_") and k not in ("content_hash", "has_image")}
    payload = json.dumps({"doc": fields, "image": image_digest, "model": model_identity}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def lexical_text(doc: Mapping[str, Any]) -> str:
    """``search_text_analyzed`` of a document: the client-side analysis of the search_text sources."""
    return analyzed_text(str(doc[name]) for name in LEXICAL_SOURCES if doc.get(name))


def build_source(doc: Mapping[str, Any], text_vector: Sequence[float] | None,
                 image_vector: Sequence[float] | None, digest: str, *,
                 client_analysis: bool = False) -> dict[str, Any]:
    """The stored ``_source``. ``client_analysis``: the index maps ``search_text_analyzed``
    (``_meta.lexical_analysis == "client"``), so fill it; other mappings are strict and lack it."""
    source = {k: v for k, v in doc.items() if not k.startswith("_")}
    if client_analysis:
        source[ANALYZED_FIELD] = lexical_text(doc)
    if "image" in source:
        source["image"] = image_reference_for_source(str(source["image"]))
    source["has_image"] = image_vector is not None
    source["content_hash"] = digest
    if text_vector is not None:
        source["text_vector"] = float_list(text_vector)
    if image_vector is not None:
        source["image_vector"] = float_list(image_vector)
    return source


def source_builder_for(meta: Mapping[str, Any] | None) -> Callable[..., dict[str, Any]]:
    """The ``source_of`` for ``run_pipeline`` that matches an index's ``_meta`` (see build_source)."""
    if lexical_analysis_of(meta) == CLIENT:
        return partial(build_source, client_analysis=True)
    return build_source


def index_action(index: str, doc_id: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """Deterministic ``_id`` = product id: a re-run overwrites instead of duplicating."""
    return {"_op_type": "index", "_index": index, "_id": doc_id, "_source": source}


@dataclass(frozen=True)
class BulkOutcome:
    doc_id: str | None
    ok: bool
    status: int | None
    reason: str | None


def parse_bulk_item(ok: bool, item: Mapping[str, Any]) -> BulkOutcome:
    """One ``(ok, item)`` pair from ``helpers.streaming_bulk`` into a flat outcome."""
    op_result = next(iter(item.values()), {}) if item else {}
    if not isinstance(op_result, Mapping):
        op_result = {}
    error = op_result.get("error")
    reason = None
    if not ok:
        if isinstance(error, Mapping):
            reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
            caused = error.get("caused_by")
            if isinstance(caused, Mapping) and caused.get("reason"):
                reason += f" (caused by {caused.get('type')}: {caused.get('reason')})"
        else:
            reason = str(error or op_result.get("exception") or "bulk item failed")
    status = op_result.get("status")
    return BulkOutcome(doc_id=op_result.get("_id"), ok=bool(ok), status=int(status) if status is not None else None,
                       reason=reason)


# The main thread and the bulk senders both count failures; += on an attribute is not atomic.
_COUNTER_LOCK = threading.Lock()


@dataclass
class BuildSummary:
    """Counters of one run. ``failed`` are records that are not in the index; ``image_failed`` are in it
    without image_vector. Every failed / image_failed record has a dead-letter line."""

    index: str = ""
    read: int = 0
    indexed: int = 0
    failed: int = 0
    skipped: int = 0
    image_failed: int = 0
    with_image_vector: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    outage_retries: int = 0  # chunks re-sent after ES was unreachable (mmsearch.retries.BUILD_OUTAGE)
    seconds: float = 0.0
    encode_seconds: float = 0.0
    encoder_wait_seconds: float = 0.0
    force_merge_s: float | None = None  # None: not merged (resume, or --no-force-merge)
    dead_letter_path: str | None = None
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return round(self.indexed / self.seconds, 1) if self.seconds > 0 else 0.0

    def note_failure(self, reason: str) -> None:
        """Count one record that is not in the index (callable from any pipeline thread)."""
        key = reason.split(":")[0][:60]
        with _COUNTER_LOCK:
            self.failed += 1
            self.failure_reasons[key] = self.failure_reasons.get(key, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["docs_per_second"] = self.docs_per_second
        for key in ("seconds", "encode_seconds", "encoder_wait_seconds"):
            data[key] = round(data[key], 2)
        return data

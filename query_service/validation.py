"""Turn HTTP input into a validated ``SearchRequest``; the JSON schema is also served as OpenAPI.

Everything a client sends is checked here or in ``SearchRequest.__post_init__``;
failures raise ``RequestValidationError`` (400) or ``PayloadTooLargeError`` (413).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from mmsearch.exceptions import PayloadTooLargeError, RequestValidationError
from query_service.ranking import FACET_FIELDS, MAX_DEPTH, MAX_SIZE, MAX_TEXT_CHARS, SearchRequest


@dataclass(frozen=True)
class ServiceLimits:
    max_body_bytes: int = 12 * 1024 * 1024
    max_image_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 0 < self.max_image_bytes <= self.max_body_bytes:
            raise ValueError("need 0 < max_image_bytes <= max_body_bytes")


#: A string holding something besides whitespace (``str.strip`` leaves it non-empty).
NON_BLANK = r"\S"
TEXT_OR_IMAGE_MESSAGE = "give a text query, an image, or both"

#: The shape of RankingConfig overrides that RankingConfig itself does not check before using them
#: (a non-object ``adaptive`` was a 500, a non-string ``name`` came back as the response's variant);
#: the rest, unknown keys included, RankingConfig validates with its own messages.
RANKING_OVERRIDES_SCHEMA: dict[str, Any] = {
    "type": "object", "description": "RankingConfig overrides (method, legs, weights, ...)",
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                   "adaptive": {"type": ["object", "null"], "description": "a fitted AdaptivePolicy"}},
}

SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
        "negative_text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
        "image_base64": {"type": "string"},
        "filters": {"type": "object"},
        "size": {"type": "integer", "minimum": 0, "maximum": MAX_SIZE},
        "from": {"type": "integer", "minimum": 0, "maximum": MAX_DEPTH},
        "facets": {"type": "array", "items": {"type": "string", "enum": list(FACET_FIELDS)}, "maxItems": 10},
        "text_weight": {"type": "number", "minimum": 0, "maximum": 10},
        "image_weight": {"type": "number", "minimum": 0, "maximum": 10},
        "explain": {"type": "boolean"},
        "user_id": {"type": "string", "maxLength": 200},
        "session_id": {"type": "string", "maxLength": 200},
        "ranking": RANKING_OVERRIDES_SCHEMA,
    },
    # The "text or image" rule of SearchRequest, in the schema so that the OpenAPI document says it too:
    # a text with a non-blank character (the service strips it), or a non-empty image.
    "anyOf": [{"required": ["text"], "properties": {"text": {"pattern": NON_BLANK}}},
              {"required": ["image_base64"], "properties": {"image_base64": {"minLength": 1}}}],
}


# Compiled once: jsonschema.validate() re-checks the schema and builds a validator on every
# call, which cost ~7 ms per request on a loaded 2-core machine (vs ~0.02 ms precompiled).
_SEARCH_VALIDATOR = jsonschema.Draft202012Validator(SEARCH_SCHEMA)


def openapi_document() -> dict[str, Any]:
    """The service's OpenAPI document (built in ``query_service.openapi``; kept here for existing callers)."""
    from query_service.openapi import openapi_document as build  # imports this module: a late import

    return build()


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RequestValidationError(f"{name} must be an integer", value=str(value)[:50]) from None


def decode_base64_image(data: str, limits: ServiceLimits) -> bytes:
    if len(data) > limits.max_image_bytes * 4 // 3 + 4:
        raise PayloadTooLargeError("image is larger than the limit", limit_bytes=limits.max_image_bytes)
    if data.startswith("data:"):
        data = data.split(",", 1)[-1]
    try:
        image = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestValidationError("image_base64 is not valid base64") from None
    if len(image) > limits.max_image_bytes:  # the length pre-check above is only approximate
        raise PayloadTooLargeError("image is larger than the limit", limit_bytes=limits.max_image_bytes)
    return image


def from_json(body: Any, limits: ServiceLimits) -> tuple[SearchRequest, dict[str, Any], str | None]:
    """(request, ranking overrides, unit id) from a JSON body."""
    if not isinstance(body, Mapping):
        raise RequestValidationError("the body must be a JSON object")
    try:
        _SEARCH_VALIDATOR.validate(dict(body))
    except jsonschema.ValidationError as exc:
        if exc.validator == "anyOf" and not exc.absolute_path:
            raise RequestValidationError(TEXT_OR_IMAGE_MESSAGE) from None
        where = "/".join(str(p) for p in exc.absolute_path) or "(body)"
        raise RequestValidationError(f"invalid request at {where}: {exc.message}") from None
    image = decode_base64_image(body["image_base64"], limits) if body.get("image_base64") else None
    request = SearchRequest(text=body.get("text"), image=image, negative_text=body.get("negative_text"),
                            filters=body.get("filters") or {}, size=body.get("size", 10), offset=body.get("from", 0),
                            facets=tuple(body.get("facets") or ()), text_weight=body.get("text_weight", 1.0),
                            image_weight=body.get("image_weight", 1.0), explain=body.get("explain", True),
                            unit_id=body.get("user_id") or body.get("session_id"))
    require_a_weighted_modality(request)
    return request, dict(body.get("ranking") or {}), request.unit_id


def require_a_weighted_modality(request: SearchRequest) -> None:
    """A 400 when the modality weights zero out every part of the query the client sent.

    Otherwise no leg is left to run, which the engine could only answer as a failure
    (issue 15: ``text_weight: 0, image_weight: 0`` used to end as a 503 "no leg can answer").
    """
    weights = {"text": request.text_weight, "image": request.image_weight}
    if not any(weights[modality] > 0 for modality in request.modalities):
        raise RequestValidationError("the weights leave no leg to answer: give text_weight (for text) or "
                                     "image_weight (for an image) a value above 0",
                                     text_weight=request.text_weight, image_weight=request.image_weight,
                                     sent=sorted(request.modalities))


def from_form(form: Mapping[str, str], image: bytes | None) -> tuple[SearchRequest, dict[str, Any], str | None]:
    """Multipart upload: an ``image`` file plus optional text fields."""
    filters: Any = {}
    if form.get("filters"):
        try:
            filters = json.loads(form["filters"])
        except ValueError:
            raise RequestValidationError("filters must be a JSON object") from None
    request = SearchRequest(text=form.get("text"), image=image, negative_text=form.get("negative_text"),
                            filters=filters, size=_int(form.get("size", 10), "size"),
                            offset=_int(form.get("from", 0), "from"),
                            facets=tuple(f for f in (form.get("facets") or "").split(",") if f),
                            unit_id=form.get("user_id") or form.get("session_id"))
    return request, {}, request.unit_id


def from_query_args(args: Mapping[str, str]) -> tuple[SearchRequest, dict[str, Any], str | None]:
    """``GET /search?q=...&size=&from=&facets=a,b&negative=&filter.gender=Men&filter.year.gte=2012``."""
    filters: dict[str, Any] = {}
    for key, value in args.items():
        if not key.startswith("filter."):
            continue
        parts = key.split(".")
        if len(parts) == 2:
            if parts[1] in filters:
                raise RequestValidationError("a field is filtered both by value and by range", field=parts[1])
            filters[parts[1]] = value.split(",")
        elif len(parts) == 3:
            bounds = filters.setdefault(parts[1], {})
            if not isinstance(bounds, dict):
                raise RequestValidationError("a field is filtered both by value and by range", field=parts[1])
            bounds[parts[2]] = _number(value, key)
        else:
            raise RequestValidationError("filter parameters look like filter.<field> or filter.<field>.<gte|lte>")
    unknown = set(args) - {"q", "size", "from", "facets", "negative", "user_id", "session_id", "explain",
                           "understand"} \
        - {k for k in args if k.startswith("filter.")}
    if unknown:
        raise RequestValidationError("unknown query parameters", unknown=sorted(unknown))
    request = SearchRequest(text=args.get("q"), negative_text=args.get("negative"), filters=filters,
                            size=_int(args.get("size", 10), "size"), offset=_int(args.get("from", 0), "from"),
                            facets=tuple(f for f in (args.get("facets") or "").split(",") if f),
                            explain=args.get("explain", "true").lower() != "false",
                            unit_id=args.get("user_id") or args.get("session_id"))
    # understand=false: this request without query understanding (a ranking override, like the body's).
    overrides = {"understanding": False} if args.get("understand", "true").lower() == "false" else {}
    return request, overrides, request.unit_id


def _number(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise RequestValidationError(f"{name} must be a number", value=value[:50]) from None
    return int(number) if number.is_integer() else number

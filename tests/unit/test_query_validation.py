"""HTTP input -> SearchRequest (query_service.validation): JSON schema, GET params, multipart form."""

from __future__ import annotations

import base64

import pytest

from mmsearch.exceptions import PayloadTooLargeError, RequestValidationError
from query_service.validation import (
    SEARCH_SCHEMA,
    ServiceLimits,
    decode_base64_image,
    from_form,
    from_json,
    from_query_args,
    openapi_document,
)

LIMITS = ServiceLimits()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24

# --- ServiceLimits -----------------------------------------------------------------------------


def test_service_limits_validation() -> None:
    assert (LIMITS.max_body_bytes, LIMITS.max_image_bytes) == (12 * 1024 * 1024, 8 * 1024 * 1024)
    for body, image in ((100, 0), (100, 101), (100, -1)):
        with pytest.raises(ValueError):
            ServiceLimits(max_body_bytes=body, max_image_bytes=image)
    ServiceLimits(max_body_bytes=100, max_image_bytes=100)


# --- JSON ----------------------------------------------------------------------------------------


def test_from_json_full_body() -> None:
    body = {"text": " red shirt ", "negative_text": "silk", "image_base64": base64.b64encode(PNG).decode(),
            "filters": {"gender": "Men", "year": {"gte": 2012}}, "size": 5, "from": 10,
            "facets": ["gender", "brand"], "text_weight": 2, "image_weight": 0.5, "explain": False,
            "user_id": "u-1", "session_id": "s-1", "ranking": {"method": "linear", "rrf_k": 10}}
    request, overrides, unit = from_json(body, LIMITS)
    assert (request.text, request.negative_text, request.image) == ("red shirt", "silk", PNG)
    assert request.filters == {"gender": ["Men"], "year": {"gte": 2012}}
    assert (request.size, request.offset, request.facets) == (5, 10, ("gender", "brand"))
    assert (request.text_weight, request.image_weight, request.explain) == (2, 0.5, False)
    assert overrides == {"method": "linear", "rrf_k": 10}
    assert unit == request.unit_id == "u-1"  # user_id wins over session_id


def test_from_json_defaults() -> None:
    request, overrides, unit = from_json({"text": "x", "session_id": "s-9"}, LIMITS)
    assert (request.size, request.offset, request.facets, request.filters) == (10, 0, (), {})
    assert (request.image, request.explain, overrides, unit) == (None, True, {}, "s-9")
    request, _, unit = from_json({"text": "x", "image_base64": ""}, LIMITS)
    assert request.image is None and unit is None


@pytest.mark.parametrize(("body", "message"), [
    ({"text": "x", "q": "y"}, "invalid request at (body): Additional properties are not allowed ('q' was unexpected)"),
    ({"text": "x", "size": 101}, "invalid request at size: 101 is greater than the maximum of 100"),
    ({"text": "x", "size": -1}, "invalid request at size: -1 is less than the minimum of 0"),
    ({"text": "x", "size": "10"}, "invalid request at size: '10' is not of type 'integer'"),
    ({"text": "x", "size": True}, "invalid request at size: True is not of type 'integer'"),
    ({"text": "x", "from": 1001}, "invalid request at from: 1001 is greater than the maximum of 1000"),
    ({"text": "x" * 513}, "invalid request at text: "),
    ({"text": 5}, "invalid request at text: 5 is not of type 'string'"),
    ({"text": "x", "facets": ["gender", "price"]}, "invalid request at facets/1: 'price' is not one of"),
    ({"text": "x", "facets": ["gender"] * 11}, "invalid request at facets: "),
    ({"text": "x", "filters": ["gender"]}, "invalid request at filters: ['gender'] is not of type 'object'"),
    ({"text": "x", "text_weight": 11}, "invalid request at text_weight: 11 is greater than the maximum of 10"),
    ({"text": "x", "explain": "yes"}, "invalid request at explain: 'yes' is not of type 'boolean'"),
    ({"text": "x", "ranking": "linear"}, "invalid request at ranking: 'linear' is not of type 'object'"),
    ({"text": "x", "user_id": "u" * 201}, "invalid request at user_id: "),
])
def test_from_json_schema_errors(body: dict, message: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        from_json(body, LIMITS)
    assert info.value.message.startswith(message)
    assert info.value.http_status == 400


@pytest.mark.parametrize("body", [[{"text": "x"}], "text", None, 3])
def test_from_json_needs_an_object(body: object) -> None:
    with pytest.raises(RequestValidationError, match="the body must be a JSON object"):
        from_json(body, LIMITS)


def test_from_json_checks_content_after_the_schema() -> None:
    with pytest.raises(RequestValidationError, match="give a text query, an image, or both"):
        from_json({"size": 3}, LIMITS)
    with pytest.raises(RequestValidationError, match="filtering on this field is not allowed"):
        from_json({"text": "x", "filters": {"price": 3}}, LIMITS)


@pytest.mark.parametrize("body", [{}, {"size": 3}, {"text": ""}, {"text": " \n "}, {"image_base64": ""},
                                  {"text": "  ", "image_base64": ""}])
def test_a_body_without_text_or_image_gets_the_rules_message(body: dict) -> None:
    # The rule is in SEARCH_SCHEMA (so the OpenAPI document says it); its failure reads as SearchRequest's.
    with pytest.raises(RequestValidationError) as info:
        from_json(body, LIMITS)
    assert info.value.message == "give a text query, an image, or both"


@pytest.mark.parametrize("body", [
    {"text": "x", "text_weight": 0, "image_weight": 0},  # issue 15: was a 503 "no leg can answer"
    {"text": "x", "text_weight": 0},
    {"text": "x", "text_weight": 0.0, "image_weight": 5},  # the image weight has no image to weigh
    {"image_base64": base64.b64encode(PNG).decode(), "image_weight": 0},
    {"text": "x", "image_base64": base64.b64encode(PNG).decode(), "text_weight": 0, "image_weight": 0},
])
def test_weights_that_leave_no_leg_are_a_400(body: dict) -> None:
    with pytest.raises(RequestValidationError) as info:
        from_json(body, LIMITS)
    assert info.value.http_status == 400
    assert info.value.message.startswith("the weights leave no leg to answer")
    assert info.value.context["text_weight"] == body.get("text_weight", 1.0)


def test_one_weighted_modality_is_enough() -> None:
    image = base64.b64encode(PNG).decode()
    assert from_json({"text": "x", "image_base64": image, "text_weight": 0}, LIMITS)[0].image_weight == 1.0
    assert from_json({"text": "x", "image_base64": image, "image_weight": 0}, LIMITS)[0].text == "x"
    assert from_json({"text": "x", "image_weight": 0}, LIMITS)[0].text_weight == 1.0


@pytest.mark.parametrize(("ranking", "where"), [
    ({"adaptive": [1]}, "ranking/adaptive"),  # found by fuzzing: an AttributeError in RankingConfig, a 500
    ({"adaptive": "x"}, "ranking/adaptive"),
    ({"name": 5}, "ranking/name"),  # came back as the response's variant: 5
    ({"name": ""}, "ranking/name"),
])
def test_ranking_overrides_of_the_wrong_shape_are_a_400(ranking: dict, where: str) -> None:
    with pytest.raises(RequestValidationError, match=f"invalid request at {where}"):
        from_json({"text": "x", "ranking": ranking}, LIMITS)


def test_ranking_overrides_keep_their_own_validation() -> None:
    # Unknown keys and value ranges stay RankingConfig's to judge (its messages name the known settings).
    assert from_json({"text": "x", "ranking": {"colour": "red", "adaptive": None}}, LIMITS)[1] == {
        "colour": "red", "adaptive": None}


@pytest.mark.parametrize("header", ['{"adaptive": "x"}', '{"adaptive": [1]}', '{"name": 5}'])
def test_proxy_options_header_takes_the_same_shape_checks(header: str) -> None:
    from query_service.proxy import parse_options

    with pytest.raises(ValueError, match="X-Hybrid-Options is invalid at"):
        parse_options(header)
    assert parse_options('{"name": "mine", "adaptive": null, "facets": "lexical"}')["name"] == "mine"


def test_schema_refuses_unknown_keys() -> None:
    assert SEARCH_SCHEMA["additionalProperties"] is False


# --- base64 images ---------------------------------------------------------------------------------


def test_base64_image_decoding() -> None:
    encoded = base64.b64encode(PNG).decode()
    assert decode_base64_image(encoded, LIMITS) == PNG
    assert decode_base64_image("data:image/png;base64," + encoded, LIMITS) == PNG


@pytest.mark.parametrize("data", ["not base64!", "QUJ", "QUJDRA", "data:image/png;base64,@@@@"])
def test_bad_base64_is_a_400(data: str) -> None:
    with pytest.raises(RequestValidationError, match="image_base64 is not valid base64") as info:
        decode_base64_image(data, LIMITS)
    assert not isinstance(info.value, PayloadTooLargeError)


def test_oversize_base64_is_a_413_before_decoding() -> None:
    limits = ServiceLimits(max_body_bytes=1000, max_image_bytes=30)  # at most 30*4//3 + 4 = 44 characters
    with pytest.raises(PayloadTooLargeError) as info:
        decode_base64_image("A" * 48, limits)
    assert info.value.http_status == 413 and info.value.context["limit_bytes"] == 30
    with pytest.raises(PayloadTooLargeError):
        from_json({"image_base64": "!" * 45}, limits)  # refused on length, even though it is not base64
    assert decode_base64_image(base64.b64encode(b"x" * 30).decode(), limits) == b"x" * 30


def test_decoded_image_never_exceeds_the_limit() -> None:
    # Bug: the length check allows max*4//3 + 4 characters, i.e. up to 3 decoded bytes over the cap
    # (44 base64 characters = 33 bytes with max_image_bytes=30). The multipart path is exact.
    limits = ServiceLimits(max_body_bytes=1000, max_image_bytes=30)
    with pytest.raises(PayloadTooLargeError):
        decode_base64_image(base64.b64encode(b"x" * 33).decode(), limits)


# --- GET query parameters ------------------------------------------------------------------------------


def test_from_query_args_everything() -> None:
    args = {"q": "shirt", "negative": "silk", "size": "5", "from": "10", "facets": "gender,brand",
            "filter.gender": "Men,Women", "filter.year.gte": "2012", "filter.year.lt": "2015.5",
            "filter.has_image": "true", "explain": "FALSE", "user_id": "u1"}
    request, overrides, unit = from_query_args(args)
    assert (request.text, request.negative_text, request.size, request.offset) == ("shirt", "silk", 5, 10)
    assert request.filters == {"gender": ["Men", "Women"], "year": {"gte": 2012, "lt": 2015.5},
                               "has_image": [True]}
    assert type(request.filters["year"]["gte"]) is int  # "2012" -> 2012, not 2012.0
    assert (request.facets, request.explain, overrides, unit) == (("gender", "brand"), False, {}, "u1")


@pytest.mark.parametrize("args", [
    {"q": "x", "filter.has_image": ""},  # found by the fuzzer: Elasticsearch refused every leg (a 502)
    {"q": "x", "filter.has_image": "yes"},
    {"q": "x", "filter.has_image": "true,0"},
])
def test_boolean_filters_take_only_true_or_false(args: dict) -> None:
    with pytest.raises(RequestValidationError, match="has_image filters take true or false"):
        from_query_args(args)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "2147483648", "-2147483648"])
def test_range_bounds_stay_within_the_integer_field(value: str) -> None:
    # found by the fuzzer: a bound Elasticsearch cannot hold in the integer year field failed every leg (a 502)
    with pytest.raises(RequestValidationError, match="range bounds must lie within"):
        from_query_args({"q": "x", "filter.year.gte": value})


def test_boolean_and_range_filters_that_elasticsearch_takes_pass() -> None:
    request, _, _ = from_query_args({"q": "x", "filter.has_image": "False,TRUE", "filter.year.lte": "2147483647"})
    assert request.filters == {"has_image": [False, True], "year": {"lte": 2147483647}}
    request, _, _ = from_json({"text": "x", "filters": {"has_image": [True, "false"], "year": {"gt": -5.5}}}, LIMITS)
    assert request.filters == {"has_image": [True, False], "year": {"gt": -5.5}}
    with pytest.raises(RequestValidationError, match="has_image filters take true or false"):
        from_json({"text": "x", "filters": {"has_image": 1}}, LIMITS)


def test_from_query_args_defaults() -> None:
    request, _, unit = from_query_args({"q": "x", "session_id": "s"})
    assert (request.size, request.offset, request.facets, request.filters, request.explain) == (10, 0, (), {}, True)
    assert unit == "s"


@pytest.mark.parametrize(("args", "message"), [
    ({"q": "x", "sizee": "3"}, "unknown query parameters"),
    ({"q": "x", "text": "y"}, "unknown query parameters"),
    ({"q": "x", "filter.year.gte.x": "1"}, "filter parameters look like filter.<field> or filter.<field>.<gte|lte>"),
    ({"q": "x", "filter.year.gte": "soon"}, "filter.year.gte must be a number"),
    ({"q": "x", "filter.year.from": "2010"}, "range filters take an object with gte/lte/gt/lt"),
    ({"q": "x", "filter.year": "2012"}, "range filters take an object with gte/lte/gt/lt"),
    ({"q": "x", "filter.gender.gte": "1"}, "keyword filters take a value or a list"),
    ({"q": "x", "filter.price": "3"}, "filtering on this field is not allowed"),
    ({"q": "x", "size": "ten"}, "size must be an integer"),
    ({"q": "x", "from": "1.5"}, "from must be an integer"),
    ({"q": "x", "size": "500"}, "size must be an integer in [0, 100]"),
    ({"q": "x", "facets": "gender,colour"}, "unknown facet fields"),
    ({"size": "3"}, "give a text query, an image, or both"),
])
def test_from_query_args_errors(args: dict, message: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        from_query_args(args)
    assert info.value.message.startswith(message)


def test_unknown_query_parameters_are_named() -> None:
    with pytest.raises(RequestValidationError) as info:
        from_query_args({"q": "x", "zz": "1", "aa": "2", "filter.gender": "Men"})
    assert info.value.context["unknown"] == ["aa", "zz"]


def test_keyword_and_range_forms_of_one_field_are_a_400() -> None:
    # Bug: filter.year=2012 then filter.year.gte=2010 does ["2012"]["gte"] = 2010 -> TypeError -> 500.
    with pytest.raises(RequestValidationError):
        from_query_args({"q": "x", "filter.year": "2012", "filter.year.gte": "2010"})


# --- multipart form ----------------------------------------------------------------------------------------


def test_from_form() -> None:
    form = {"text": "red", "size": "3", "from": "2", "filters": '{"gender": "Men", "year": {"lte": 2015}}',
            "facets": "gender,base_colour", "negative_text": "wool", "session_id": "s-1"}
    request, overrides, unit = from_form(form, PNG)
    assert (request.text, request.image, request.negative_text) == ("red", PNG, "wool")
    assert (request.size, request.offset, request.facets) == (3, 2, ("gender", "base_colour"))
    assert request.filters == {"gender": ["Men"], "year": {"lte": 2015}}
    assert (overrides, unit) == ({}, "s-1")
    image_only, _, _ = from_form({}, PNG)
    assert (image_only.text, image_only.image, image_only.size) == (None, PNG, 10)


@pytest.mark.parametrize(("form", "image", "message"), [
    ({"text": "x", "filters": "{gender: Men}"}, None, "filters must be a JSON object"),
    ({"text": "x", "filters": '["gender"]'}, None, "filters must be an object"),
    ({"text": "x", "size": "many"}, None, "size must be an integer"),
    ({"text": "x", "from": "-1"}, None, "from/offset must be an integer in [0, 1000]"),
    ({"text": "x", "facets": "price"}, None, "unknown facet fields"),
    ({}, None, "give a text query, an image, or both"),
])
def test_from_form_errors(form: dict, image: bytes | None, message: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        from_form(form, image)
    assert info.value.message.startswith(message)


# --- OpenAPI --------------------------------------------------------------------------------------------------


def test_openapi_document_serves_the_same_schema() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.")
    post = doc["paths"]["/search"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SearchBody"}
    assert doc["components"]["schemas"]["SearchBody"] is SEARCH_SCHEMA
    assert set(post["responses"]) == {"200", "400", "413", "429", "502", "503"}
    assert {p["name"] for p in doc["paths"]["/search"]["get"]["parameters"]} >= {"q", "size", "from", "facets"}
    assert {"/healthz", "/readyz", "/metrics", "/{index}/_search", "/events"} <= set(doc["paths"])

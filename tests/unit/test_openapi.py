"""The OpenAPI document (query_service.openapi): valid OpenAPI 3.1, and truthful about the routes it lists."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import schemathesis
from schemathesis.specs.openapi.definitions import OPENAPI_31

from mmsearch.config import Settings
from query_service.app import create_app
from query_service.openapi import openapi_document
from query_service.validation import SEARCH_SCHEMA
from tests.unit.fakes import FakeGateway

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _app() -> Any:
    return create_app(Settings(products_alias="products"), es=FakeGateway(), encoder=None,
                      capabilities=SimpleNamespace(painless=False, native_rrf_usable=False))


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    return [(path, method, operation, item.get("parameters", []) + operation.get("parameters", []))
            for path, item in doc["paths"].items() for method, operation in item.items() if method in HTTP_METHODS]


def _schemas_in(node: Any) -> list[dict[str, Any]]:
    """Every ``schema`` object of the document (parameters, bodies, responses) plus the component schemas."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict):
                found.append(value)
            else:
                found += _schemas_in(value)
    elif isinstance(node, list):
        for value in node:
            found += _schemas_in(value)
    return found


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    jsonschema.Draft202012Validator(OPENAPI_31).validate(doc)
    for schema in _schemas_in(doc) + list(doc["components"]["schemas"].values()):
        jsonschema.Draft202012Validator.check_schema(schema)


def test_schemathesis_loads_every_operation() -> None:
    # What schemathesis reported in issue 15 ("path parameter index is undefined") fails the load here.
    schema = schemathesis.openapi.from_dict(openapi_document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(_operations(openapi_document())) >= 10


def test_every_path_parameter_is_declared_and_every_declared_one_is_in_the_path() -> None:
    for path, method, _, parameters in _operations(openapi_document()):
        in_template = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in parameters if p["in"] == "path"}
        assert in_template == declared, (path, method)
        assert all(p["required"] for p in parameters if p["in"] == "path")


def test_operation_ids_are_unique_and_every_operation_documents_its_answers() -> None:
    operations = _operations(openapi_document())
    ids = [operation["operationId"] for _, _, operation, _ in operations]
    assert len(ids) == len(set(ids))
    for path, method, operation, _ in operations:
        assert any(status.startswith("2") for status in operation["responses"]), (path, method)


def test_search_and_proxy_search_document_every_error_status() -> None:
    doc = openapi_document()
    for method in ("get", "post"):
        assert set(doc["paths"]["/search"][method]["responses"]) == {"200", "400", "413", "429", "502", "503"}
        assert {"400", "403", "404", "429", "503"} <= set(doc["paths"]["/{index}/_search"][method]["responses"])
    events = doc["paths"]["/events"]["post"]
    assert {"202", "400", "401", "403", "413", "429", "503"} == set(events["responses"])
    assert {"bearerAuth": []} in events["security"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_json_body_is_the_validators_schema() -> None:
    assert openapi_document()["components"]["schemas"]["SearchBody"] is SEARCH_SCHEMA


@pytest.mark.parametrize(("body", "valid"), [
    ({}, False), ({"size": 3}, False), ({"text": ""}, False), ({"text": " \t\n"}, False),
    ({"image_base64": ""}, False), ({"text": " ", "image_base64": ""}, False),
    ({"text": "x"}, True), ({"text": "  red  "}, True), ({"image_base64": "iVBO"}, True),
    ({"text": " ", "image_base64": "iVBO"}, True),
])
def test_the_schema_holds_the_text_or_image_rule(body: dict[str, Any], valid: bool) -> None:
    assert jsonschema.Draft202012Validator(SEARCH_SCHEMA).is_valid(body) is valid


def test_the_form_and_query_parameters_hold_the_text_rule_too() -> None:
    doc = openapi_document()
    form = doc["components"]["schemas"]["SearchForm"]
    validator = jsonschema.Draft202012Validator(form)
    assert not validator.is_valid({"size": 3}) and not validator.is_valid({"text": "  "})
    assert validator.is_valid({"text": "shoes"}) and validator.is_valid({"image": "<bytes>"})
    [q] = [p for p in doc["paths"]["/search"]["get"]["parameters"] if p["name"] == "q"]
    assert q["required"] and not jsonschema.Draft202012Validator(q["schema"]).is_valid("   ")


def test_the_document_lists_every_api_route_with_its_methods() -> None:
    app = _app()
    app.register_blueprint(_events_blueprint())
    doc = openapi_document()
    checked = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("proxy", "pages", "photos", "static"):  # the proxy's catch-all, browsers'
            continue
        checked.add(rule.rule)
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in doc["paths"], path
        documented = {m.upper() for m in doc["paths"][path] if m in HTTP_METHODS}
        assert documented == set(rule.methods or ()) - {"HEAD", "OPTIONS"}, path
    assert checked == {"/search", "/events", "/healthz", "/readyz", "/metrics", "/openapi.json"}


def _events_blueprint() -> Any:
    from query_service.relevance.http import events_blueprint

    return events_blueprint(event_logger=None)


def test_every_405_names_the_allowed_methods() -> None:
    # The proxy's catch-all takes GET/POST/PUT/DELETE/HEAD/PATCH on every path, so only a method
    # outside those (TRACE) reaches werkzeug's 405; the answer must still say what is allowed.
    app = _app()
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?\w+>", "x", rule.rule)
        response = client.open(path, method="TRACE")
        assert response.status_code == 405, path
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert set(rule.methods or ()) <= allowed, path
        assert response.is_json and response.get_json()["error"] == "MethodNotAllowed"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path,allowed", [("/search", {"GET", "POST"}), ("/healthz", {"GET"}),
                                          ("/openapi.json", {"GET"})])
def test_the_services_routes_answer_other_methods_405_not_an_es_refusal(method: str, path: str,
                                                                         allowed: set[str]) -> None:
    # The relay's catch-all matches these too; it must not answer them as Elasticsearch writes (403).
    response = _app().test_client().open(path, method=method)
    assert response.status_code == 405
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert response.get_json()["error"] == "MethodNotAllowed"

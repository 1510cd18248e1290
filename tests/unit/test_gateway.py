"""The Elasticsearch gateway (issue 12): one error table, body unwrapping, and every caller going through it.

No server: client exceptions are built by hand, clients are tiny fakes, and "unreachable" is a
client whose calls raise ``elasticsearch.ConnectionError`` (or a real client pointed at a closed port).
"""

from __future__ import annotations

import ast
import atexit
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import elasticsearch
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig, ObjectApiResponse

from indexer import enrich as enrich_module
from indexer import lifecycle
from indexer.images import ImageSource
from indexer.pipeline import DeadLetterWriter, PipelineConfig, Prepared, run_pipeline
from indexer.testing import FakeEncoder
from mmsearch import capabilities, retries
from mmsearch.config import PROJECT_ROOT
from mmsearch.exceptions import ClusterAuthError, ClusterError, ClusterUnavailableError, IndexNotFoundError
from mmsearch.gateway import ElasticsearchGateway, ForwardedResponse, guarded, is_authorization_error, \
    status_of, translate
from query_service.relevance import events as events_module
from query_service.relevance import store

# --- building client exceptions and responses ------------------------------------------------------


def _meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "127.0.0.1", 9200))


def api_error(status: int, error_type: str = "some_exception", reason: str = "because",
              cls: type[elasticsearch.ApiError] = elasticsearch.ApiError) -> elasticsearch.ApiError:
    body = {"error": {"type": error_type, "reason": reason}, "status": status}
    return cls(message=error_type, meta=_meta(status), body=body)


def index_not_found() -> elasticsearch.ApiError:
    return api_error(404, "index_not_found_exception", "no such index [products]", elasticsearch.NotFoundError)


def alias_missing() -> elasticsearch.ApiError:
    # What GET _alias/<name> answers for a missing alias: a 404 whose body has no index_not_found.
    return elasticsearch.NotFoundError(message="alias [products] missing", meta=_meta(404),
                                       body={"error": "alias [products] missing", "status": 404})


def response(body: Any, status: int = 200) -> ObjectApiResponse:
    return ObjectApiResponse(body=body, meta=_meta(status))


DOWN = elasticsearch.ConnectionError("Connection refused")


# --- translate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [elasticsearch.ConnectionError("Connection refused"),
                                 elasticsearch.ConnectionTimeout("timed out")], ids=["refused", "timeout"])
def test_no_connection_is_unavailable_503(exc: Exception) -> None:
    translated = translate(exc, "count", index="products")
    assert type(translated) is ClusterUnavailableError and translated.http_status == 503
    assert translated.message == "count failed: Elasticsearch is unreachable"
    assert translated.context["index"] == "products" and "status" not in translated.context
    assert status_of(translated) is None


@pytest.mark.parametrize("status", [429, 503])
def test_busy_or_restarting_node_is_unavailable_503(status: int) -> None:
    translated = translate(api_error(status, "es_rejected_execution_exception"), "search")
    assert type(translated) is ClusterUnavailableError and translated.http_status == 503
    assert translated.context["status"] == status and status_of(translated) == status
    assert "es_rejected_execution_exception" in translated.context["error"]


def test_missing_index_is_index_not_found_503() -> None:
    translated = translate(index_not_found(), "get mapping", index="products")
    assert isinstance(translated, IndexNotFoundError) and translated.http_status == 503
    assert translated.context == {"status": 404, "index": "products"}


@pytest.mark.parametrize("status, cls", [(401, elasticsearch.AuthenticationException),
                                         (403, elasticsearch.AuthorizationException)])
def test_refused_credentials_are_auth_errors_502(status: int, cls: type[elasticsearch.ApiError]) -> None:
    translated = translate(api_error(status, "security_exception", cls=cls), "count")
    assert isinstance(translated, ClusterAuthError) and translated.http_status == 502
    assert is_authorization_error(translated) is (status == 403)
    assert is_authorization_error(api_error(status, cls=cls)) is (status == 403)  # the raw client error too


def test_other_rejections_are_cluster_errors_502() -> None:
    translated = translate(api_error(400, "x_content_parse_exception", cls=elasticsearch.BadRequestError), "search")
    assert type(translated) is ClusterError and translated.http_status == 502
    assert translated.context["error"] == "x_content_parse_exception: because"


def test_non_client_exceptions_are_returned_unchanged() -> None:
    exc = ValueError("not about Elasticsearch")
    assert translate(exc, "count") is exc
    assert status_of(exc) is None and not is_authorization_error(exc)


def test_guarded_chains_client_errors_and_lets_others_through() -> None:
    def down() -> None:
        raise DOWN

    with pytest.raises(ClusterUnavailableError) as raised:
        guarded("count", down, index="products")
    assert raised.value.__cause__ is DOWN
    with pytest.raises(KeyError):
        guarded("count", lambda: {}["missing"])
    assert guarded("count", lambda: 7) == 7


# --- ElasticsearchGateway over a fake client -----------------------------------------------------------


class _Namespace:
    def __init__(self, **calls: Callable[..., Any]) -> None:
        self.__dict__.update(calls)


class FakeClient:
    """The few client methods the gateway calls; ``fail`` makes one of them raise instead."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.fail = fail or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.indices = _Namespace(get_mapping=self._call("get_mapping", {"i-1": {"mappings": {"properties": {}}}}),
                                  get_alias=self._call("get_alias", {"i-2": {}, "i-1": {}}))
        self.cluster = _Namespace(health=self._call("health", {"status": "green"}))
        self.msearch = self._call("msearch", {"took": 1, "responses": [{"hits": {"hits": []}}]})
        self.search = self._call("search", {"hits": {"hits": [{"_id": "a"}]}})
        self.count = self._call("count", {"count": 42})
        self.perform_request = self._call("perform_request", {"acknowledged": True})

    def _call(self, name: str, body: Any) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name in self.fail:
                raise self.fail[name]
            return response(body)
        return call

    def options(self, **_: Any) -> FakeClient:
        return self


def test_gateway_unwraps_response_bodies() -> None:
    client = FakeClient()
    gateway = ElasticsearchGateway(client)
    assert gateway.msearch([{"index": "p"}, {"query": {"match_all": {}}}], timeout_s=1.0) == [{"hits": {"hits": []}}]
    assert gateway.search("p", {"size": 1}) == {"hits": {"hits": [{"_id": "a"}]}}
    assert gateway.count("p") == 42 and client.calls[-1] == ("count", {"index": "p", "query": {"match_all": {}}})
    assert gateway.mappings("p") == {"i-1": {"properties": {}}}
    assert gateway.alias_targets("p") == ["i-1", "i-2"]
    assert gateway.cluster_health() == {"status": "green"}


@pytest.mark.parametrize("error", [alias_missing(), index_not_found()], ids=["alias_missing", "index_not_found"])
def test_alias_targets_is_empty_when_the_alias_does_not_exist(error: Exception) -> None:
    assert ElasticsearchGateway(FakeClient({"get_alias": error})).alias_targets("products") == []


def test_alias_targets_raises_other_failures() -> None:
    with pytest.raises(ClusterUnavailableError):
        ElasticsearchGateway(FakeClient({"get_alias": DOWN})).alias_targets("products")
    with pytest.raises(ClusterAuthError):
        ElasticsearchGateway(FakeClient({"get_alias": api_error(403)})).alias_targets("products")


def test_gateway_calls_translate_failures() -> None:
    with pytest.raises(ClusterUnavailableError):
        ElasticsearchGateway(FakeClient({"count": DOWN})).count("products")
    with pytest.raises(IndexNotFoundError):
        ElasticsearchGateway(FakeClient({"search": index_not_found()})).search("products", {})


def test_forward_returns_elasticsearchs_error_status_instead_of_raising() -> None:
    gateway = ElasticsearchGateway(FakeClient({"perform_request": index_not_found()}))
    answer = gateway.forward("GET", "/products/_search", {}, {"query": {"match_all": {}}})
    assert isinstance(answer, ForwardedResponse) and answer.status == 404
    assert answer.body["error"]["type"] == "index_not_found_exception"
    assert ElasticsearchGateway(FakeClient()).forward("PUT", "/x", {}, None).status == 200
    with pytest.raises(ClusterUnavailableError):  # no answer at all is not relayed: it is ours
        ElasticsearchGateway(FakeClient({"perform_request": DOWN})).forward("GET", "/_cat/indices", {}, None)


# --- every migrated module: an unreachable node is ClusterUnavailableError -----------------------------


class DownClient:
    """A client for a node that is down: every namespace exists and every call raises ConnectionError."""

    def __getattr__(self, name: str) -> Any:
        return DownClient()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise elasticsearch.ConnectionError("Connection refused")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_lifecycle_unreachable_is_unavailable() -> None:
    for call in (lambda: lifecycle.count(DownClient(), "products"),
                 lambda: lifecycle.alias_targets(DownClient(), "products"),
                 lambda: lifecycle.index_exists(DownClient(), "products"),
                 lambda: lifecycle.status(DownClient(), "products")):
        with pytest.raises(ClusterUnavailableError, match="Elasticsearch is unreachable"):
            call()


def test_lifecycle_alias_targets_uses_the_gateways_404_rule() -> None:
    client = FakeClient({"get_alias": alias_missing()})
    assert lifecycle.alias_targets(client, "products") == []
    assert lifecycle.alias_targets(FakeClient(), "products") == ["i-1", "i-2"]


class _LegacyIndexNodeGoesDown:
    """The legacy index exists and is no alias; the node goes away before its aliases are read."""

    def __init__(self) -> None:
        self.indices = _Namespace(exists=lambda **_: True, get_alias=self._get_alias)

    @staticmethod
    def _get_alias(**kwargs: Any) -> Any:
        if "name" in kwargs:  # alias_targets(legacy): no alias of that name
            raise alias_missing()
        raise elasticsearch.ConnectionError("Connection refused")


def test_enrich_unreachable_is_unavailable(tmp_path: Path) -> None:
    config = enrich_module.EnrichConfig(source_index="legacy")
    with pytest.raises(ClusterUnavailableError, match="read legacy aliases failed"):
        enrich_module.enrich(_LegacyIndexNodeGoesDown(), FakeEncoder(), config, state_dir=tmp_path)


def test_pipeline_unreachable_during_bulk_is_unavailable(tmp_path: Path) -> None:
    es = elasticsearch.Elasticsearch(f"http://127.0.0.1:{_closed_port()}", max_retries=0)
    docs = [Prepared(position="catalog:1", doc_id="a", doc={"title": "Red shoe"})]
    with pytest.raises(ClusterUnavailableError) as raised:
        run_pipeline(es, FakeEncoder(), docs, "idx", ImageSource(root=tmp_path), DeadLetterWriter(None),
                     PipelineConfig(progress=False))
    assert raised.value.context["index"] == "idx"
    assert isinstance(raised.value.__cause__, elasticsearch.ConnectionError)


def test_capabilities_unreachable_is_unavailable() -> None:
    with pytest.raises(ClusterUnavailableError, match="read license failed"):
        capabilities.detect_capabilities(DownClient())


def test_event_logger_unreachable_is_unavailable() -> None:
    with pytest.raises(ClusterUnavailableError, match="check events index failed"):
        events_module.EventLogger(DownClient(), "events", background=False)


def test_event_flush_against_a_down_node_keeps_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retries, "EVENTS_FLUSH_BACKOFF", retries.BackoffPolicy(2, 0.0, 0.0))
    logger = events_module.EventLogger(_Namespace(indices=_Namespace(exists=lambda **_: True)), "events",
                                       background=False)
    atexit.unregister(logger.close)  # the down node below must not be flushed to at interpreter exit
    logger.es = elasticsearch.Elasticsearch(f"http://127.0.0.1:{_closed_port()}", max_retries=0)
    logger.log_event({"type": "click", "query_id": "q"})
    assert logger.flush() == 0
    assert logger.failed_flushes == 1 and logger.buffered == 1


def test_experiment_store_unreachable_is_unavailable() -> None:
    with pytest.raises(ClusterUnavailableError, match="refresh events index failed"):
        store.fetch_experiment_events(DownClient(), "events", "exp-1")


# --- nobody else catches client exceptions ---------------------------------------------------------------

SCANNED = ("indexer", "mmsearch", "query_service", "onnx_models", "mappings")
#: Modules that build the client or its serialisers (not error handling), and the gateway itself.
ALLOWED = {"mmsearch/gateway.py", "mmsearch/config.py", "mmsearch/serializers.py", "mmsearch/esnode.py"}
CLIENT_MODULES = ("elasticsearch", "elastic_transport")
FORBIDDEN = {"ApiError", "TransportError", "NotFoundError", "ConnectionError"}


def _is_client_exception(name: str) -> bool:
    # The four the issue names, and any other client exception class (AuthorizationException,
    # BulkIndexError, ConnectionTimeout, ...): the gateway exposes predicates for those.
    return name in FORBIDDEN or name.endswith(("Error", "Exception", "Timeout"))


def client_exception_uses(source: str) -> list[str]:
    """Every client exception a module imports (``from elasticsearch... import X``) or reads
    (``elasticsearch.X``, ``elasticsearch.helpers.X``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in CLIENT_MODULES:
            found += [f"{node.lineno}: from {node.module} import {alias.name}" for alias in node.names
                      if _is_client_exception(alias.name)]
        elif isinstance(node, ast.Attribute) and _is_client_exception(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in CLIENT_MODULES:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_import_scan_catches_what_it_is_for() -> None:
    source = ("from elasticsearch import ApiError, Elasticsearch, helpers\n"
              "from elasticsearch.exceptions import NotFoundError\nimport elasticsearch\n"
              "try:\n    pass\nexcept (elasticsearch.ConnectionError, elasticsearch.helpers.BulkIndexError):\n"
              "    pass\nfrom elastic_transport import TransportError\n")
    assert sorted(client_exception_uses(source)) == [
        "1: from elasticsearch import ApiError", "2: from elasticsearch.exceptions import NotFoundError",
        "6: elasticsearch.ConnectionError", "6: elasticsearch.helpers.BulkIndexError",
        "8: from elastic_transport import TransportError"]


def test_only_the_gateway_handles_client_exceptions() -> None:
    listed = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "*.py"], capture_output=True, text=True,
                            check=True).stdout.split()
    files = [path for path in listed if path.split("/")[0] in SCANNED and path not in ALLOWED]
    assert "indexer/lifecycle.py" in files and "query_service/relevance/events.py" in files
    violations = [f"{path}:{use}" for path in files if (PROJECT_ROOT / path).is_file()
                  for use in client_exception_uses((PROJECT_ROOT / path).read_text())]
    assert violations == []

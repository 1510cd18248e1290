"""The secure local node end to end: HTTPS with the node's own CA, least-privilege credentials, no leaked secrets.

Starts its own node (``pytest-secure``, any free port) and stops it at the end; the shared node is
never touched. Credentials are file-realm users holding the ``mmsearch.es_security`` roles (the
integ-test-zip node cannot store API keys: ``test_api_keys_are_refused_with_the_reason``).
"""

from __future__ import annotations

import itertools
from base64 import b64encode
import logging
import socket
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError

from mmsearch import es_security, tls
from mmsearch.config import Settings
from mmsearch.esnode import LocalNode, NodeConfig, NodeInfo, http_get_json
from mmsearch.exceptions import ClusterError, ClusterUnavailableError
from mmsearch.gateway import guarded

pytestmark = pytest.mark.slow  # a node start alone takes 30-60 s on 2 cores

ALIAS = "sec-live"
EVENTS = "sec-live-events"
OTHER = "other-secret"
LOOKALIKE = "sec-live-vault"  # matches ``sec-live-v*`` but is no versioned index: the roles must not reach it


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[LocalNode, NodeInfo]]:
    local = LocalNode(NodeConfig(name="pytest-secure", port=0, secure=True))
    info = local.start()
    try:
        yield local, info
    finally:
        local.stop()


def settings_for(info: NodeInfo, **kwargs: Any) -> Settings:
    values: dict[str, Any] = {"es_hosts": (info.url,), "ca_certs": info.ca_certs, "request_timeout_s": 60,
                              "products_alias": ALIAS, **kwargs}
    return Settings(**values)


@pytest.fixture(scope="module")
def admin(node: tuple[LocalNode, NodeInfo]) -> Iterator[Any]:
    _, info = node
    client = settings_for(info, username=info.username, password=info.password).es_client()
    delete_test_indices(client)
    client.index(index=OTHER, id="1", document={"secret": "payroll"}, refresh=True)
    client.index(index=LOOKALIKE, id="1", document={"secret": "vault"}, refresh=True)
    from query_service.relevance.events import EVENTS_MAPPING

    es_security.ensure_index(client, EVENTS, EVENTS_MAPPING)
    yield client
    delete_test_indices(client)


def delete_test_indices(client: Any) -> None:
    names = list(client.indices.get(index=f"{ALIAS}*,{OTHER}", expand_wildcards="all", ignore_unavailable=True))
    if names:  # by name: the node refuses wildcard deletes (action.destructive_requires_name)
        client.indices.delete(index=",".join(names))


@pytest.fixture(scope="module")
def users(node: tuple[LocalNode, NodeInfo], admin: Any) -> dict[str, dict[str, str]]:
    local, _ = node
    made = {}
    for role, kwargs in (("service", {"events_index": EVENTS}), ("indexer", {})):
        user = f"pytest-{role}"
        body = es_security.role_for(role, ALIAS, **kwargs)
        made[role] = {"username": user, "password": local.add_file_user(user, es_security.role_name(role, ALIAS),
                                                                         body)}
    return made


@pytest.fixture(scope="module")
def built(node: tuple[LocalNode, NodeInfo], users: dict[str, dict[str, str]], encoder: Any, catalog_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real index built and swapped in with the indexer's credentials only."""
    from indexer.catalog import CatalogConfig
    from indexer.lifecycle import build, swap
    from indexer.pipeline import PipelineConfig

    _, info = node
    es = settings_for(info, **users["indexer"]).es_client()
    subset = tmp_path_factory.mktemp("secure") / "products.jsonl"
    with (catalog_dir / "products.jsonl").open() as lines:
        subset.write_text("".join(itertools.islice(lines, 6900, 6960)))
    summary = build(es, encoder, CatalogConfig(path=subset, image_root=catalog_dir), alias=ALIAS,
                    state_dir=tmp_path_factory.mktemp("secure-state"), pipeline=PipelineConfig(progress=False))
    swapped = swap(es, ALIAS, summary["index"], loaded_identity=encoder.identity)
    return {"summary": summary, "swap": swapped}


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refused(call: Callable[[], Any]) -> ApiError:
    """The call must be refused by ES security (403), through the elasticsearch client."""
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.meta.status == 403, caught.value
    assert caught.value.body["error"]["type"] == "security_exception"
    return caught.value


# --- TLS ------------------------------------------------------------------------------------


def test_https_with_the_nodes_ca_works(node: tuple[LocalNode, NodeInfo], admin: Any) -> None:
    _, info = node
    assert info.url.startswith("https://127.0.0.1:") and info.ca_certs and Path(info.ca_certs).is_file()
    assert admin.cluster.health()["status"] in ("green", "yellow")
    health = http_get_json(f"{info.url}/_cluster/health", info.username, info.password, ca_certs=info.ca_certs)
    assert health["status"] in ("green", "yellow")
    # localhost is in the certificate too
    local_url = info.url.replace("127.0.0.1", "localhost")
    assert Settings(es_hosts=(local_url,), ca_certs=info.ca_certs, username=info.username,
                    password=info.password).es_client().cluster.health()["status"] in ("green", "yellow")


def test_a_wrong_ca_fails_closed(node: tuple[LocalNode, NodeInfo], tmp_path: Path) -> None:
    _, info = node
    stranger = tls.ensure_node_tls(tmp_path / "other-ca", "stranger")  # same kind of CA, another key
    client = settings_for(info, username=info.username, password=info.password,
                          ca_certs=str(stranger.ca_cert)).es_client()
    with pytest.raises(ClusterUnavailableError) as caught:
        guarded("cluster health", lambda: client.cluster.health())
    assert "unreachable" in caught.value.message
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value.context["error"])
    # No CA given: the system's trust store does not know the node's CA either.
    system = Settings(es_hosts=(info.url,), username=info.username, password=info.password).es_client()
    with pytest.raises(ClusterUnavailableError):
        guarded("cluster health", lambda: system.cluster.health())
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        http_get_json(f"{info.url}/_cluster/health", info.username, info.password, ca_certs=str(stranger.ca_cert))


def test_plain_http_to_the_tls_port_fails(node: tuple[LocalNode, NodeInfo]) -> None:
    _, info = node
    plain = Settings(es_hosts=(info.url.replace("https://", "http://"),), username=info.username,
                     password=info.password, request_timeout_s=10).es_client()
    with pytest.raises(ClusterUnavailableError):
        guarded("cluster health", lambda: plain.options(max_retries=0).cluster.health())


# --- least privilege ------------------------------------------------------------------------


def test_indexer_builds_and_swaps_with_its_own_role(built: dict[str, Any], admin: Any) -> None:
    assert built["summary"]["indexed"] == 60 and built["summary"]["failed"] == 0
    assert built["swap"]["changed"] is True
    assert list(admin.indices.get_alias(name=ALIAS).body) == [built["summary"]["index"]]


def test_indexer_cannot_touch_other_indices(node: tuple[LocalNode, NodeInfo], users: dict[str, Any],
                                            built: dict[str, Any]) -> None:
    _, info = node
    es = settings_for(info, **users["indexer"]).es_client().options(max_retries=0)
    for index in (OTHER, LOOKALIKE, EVENTS):
        refused(lambda index=index: es.search(index=index))
        refused(lambda index=index: es.index(index=index, id="2", document={"x": 1}))
        refused(lambda index=index: es.indices.delete(index=index))
    refused(lambda: es.indices.create(index="sec-other-v20260101000000"))
    refused(lambda: es.indices.update_aliases(actions=[{"add": {"index": OTHER, "alias": ALIAS}}]))


def test_service_reads_the_alias_and_nothing_else(node: tuple[LocalNode, NodeInfo], users: dict[str, Any],
                                                  built: dict[str, Any]) -> None:
    _, info = node
    es = settings_for(info, **users["service"]).es_client().options(max_retries=0)
    hits = es.search(index=ALIAS, query={"match_all": {}}, size=3)["hits"]["hits"]
    assert len(hits) == 3
    doc_id = hits[0]["_id"]
    index = built["summary"]["index"]
    refused(lambda: es.index(index=ALIAS, id="new", document={"title": "x"}))
    refused(lambda: es.index(index=index, id=doc_id, document={"title": "overwritten"}))
    refused(lambda: es.update(index=index, id=doc_id, doc={"title": "changed"}))
    refused(lambda: es.delete(index=index, id=doc_id))
    refused(lambda: es.indices.create(index=f"{ALIAS}-v20990101000000"))
    refused(lambda: es.indices.delete(index=index))
    refused(lambda: es.indices.put_settings(index=index, settings={"index": {"refresh_interval": "1s"}}))
    refused(lambda: es.indices.update_aliases(actions=[{"remove": {"index": index, "alias": ALIAS}}]))
    refused(lambda: es.search(index=OTHER))
    refused(lambda: es.search(index=LOOKALIKE))
    refused(lambda: es.get(index=OTHER, id="1"))
    # Events: appended, never overwritten or deleted.
    written = es.create(index=EVENTS, id="pytest-event-1", document={"type": "click"}, refresh=True)["_id"]
    refused(lambda: es.index(index=EVENTS, id=written, document={"type": "forged"}))
    refused(lambda: es.update(index=EVENTS, id=written, doc={"type": "forged"}))
    refused(lambda: es.delete(index=EVENTS, id=written))
    refused(lambda: es.indices.delete(index=EVENTS))


def test_service_appends_events(node: tuple[LocalNode, NodeInfo], users: dict[str, Any],
                                                admin: Any) -> None:
    from query_service.relevance.events import EventLogger

    _, info = node
    admin.indices.refresh(index=EVENTS)
    before = admin.count(index=EVENTS)["count"]
    logger = EventLogger(settings_for(info, **users["service"]).es_client(), EVENTS, background=False)
    logger.log_event({"type": "click", "query_id": "q1", "doc_id": "d1", "position": 1})
    assert logger.flush() == 1 and logger.failed_flushes == 0
    logger.close()
    admin.indices.refresh(index=EVENTS)
    assert admin.count(index=EVENTS)["count"] == before + 1


def test_service_app_with_its_role_and_the_ca(node: tuple[LocalNode, NodeInfo], users: dict[str, Any],
                                              built: dict[str, Any], encoder: Any) -> None:
    from query_service.app import create_app

    _, info = node
    secret = users["service"]["password"]
    client = create_app(settings_for(info, **users["service"]), encoder=encoder).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"]["alias"] == built["summary"]["index"]
    found = client.post("/search", json={"text": "shirt"})
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["hits"]
    for response in (ready, found):
        assert secret not in response.get_data(as_text=True)


@pytest.mark.parametrize("failure", ["wrong_port", "wrong_password", "made_up_api_key"])
def test_secrets_stay_out_of_responses_and_logs(failure: str, node: tuple[LocalNode, NodeInfo],
                                                users: dict[str, Any], built: dict[str, Any], encoder: Any,
                                                caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from query_service.app import create_app

    _, info = node
    secret = {"wrong_port": users["service"]["password"], "wrong_password": "not-the-password-" + "x" * 12,
              "made_up_api_key": "bWFkZS11cDpub3QtYS1yZWFsLWtleQ=="}[failure]
    if failure == "made_up_api_key":
        settings = settings_for(info, api_key=secret)
    else:
        url = f"https://127.0.0.1:{unused_port()}" if failure == "wrong_port" else info.url
        settings = settings_for(info, es_hosts=(url,), username=users["service"]["username"], password=secret,
                                request_timeout_s=5)
    caplog.set_level(logging.DEBUG)
    client = create_app(settings, encoder=encoder, capabilities=None).test_client()
    ready = client.get("/readyz")
    found = client.post("/search", json={"text": "shirt"})
    proxied = client.post(f"/{ALIAS}/_search", json={"query": {"match_all": {}}})
    assert ready.status_code == 503
    expected = 503 if failure == "wrong_port" else 502
    assert found.status_code == expected and proxied.status_code >= 400
    captured = capsys.readouterr()
    texts = [ready.get_data(as_text=True), found.get_data(as_text=True), proxied.get_data(as_text=True),
             caplog.text, captured.out, captured.err, repr(settings), str(settings.redacted())]
    # The secret as typed, and as it travels in a basic-auth header.
    forms = [secret, b64encode(f"{users['service']['username']}:{secret}".encode()).decode()]
    assert all(form not in text for form in forms for text in texts)
    assert caplog.records  # the failures were logged (the capture is not empty by accident)


def test_api_keys_are_refused_with_the_reason(admin: Any) -> None:
    """The local node cannot store API keys; the error says why and what to use instead."""
    role = es_security.role_for("service", ALIAS)
    with pytest.raises(ClusterError, match="analysis-common") as caught:
        es_security.create_api_key(admin, "pytest-service", {es_security.role_name("service", ALIAS): role})
    assert "mmsearch node credentials" in caught.value.message


def test_credentials_command_prints_a_working_user_once(node: tuple[LocalNode, NodeInfo], admin: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from mmsearch.cli import main

    _, info = node
    assert main(["node", "credentials", "--name", "pytest-secure", "--role", "service", "--alias", ALIAS,
                 "--user", "pytest-cli-service"]) == 0
    out = capsys.readouterr()
    printed = json.loads(out.out)
    assert printed["username"] == "pytest-cli-service" and printed["ca_certs"] == info.ca_certs
    assert printed["password"] not in out.err
    me = http_get_json(f"{info.url}/_security/_authenticate", printed["username"], printed["password"],
                       ca_certs=info.ca_certs)
    assert me["roles"] == [es_security.role_name("service", ALIAS)]


def test_indexer_rolls_back_and_prunes(node: tuple[LocalNode, NodeInfo], users: dict[str, Any],
                                       built: dict[str, Any], encoder: Any, catalog_dir: Path,
                                       tmp_path: Path, admin: Any) -> None:
    """Last in the module: it deletes the first version. A second build, swap, rollback, swap, prune."""
    from indexer.catalog import CatalogConfig
    from indexer.lifecycle import build, prune, rollback, status, swap
    from indexer.pipeline import PipelineConfig

    _, info = node
    es = settings_for(info, **users["indexer"]).es_client()
    first = built["summary"]["index"]
    subset = tmp_path / "products.jsonl"
    with (catalog_dir / "products.jsonl").open() as lines:
        subset.write_text("".join(itertools.islice(lines, 7000, 7005)))
    second = build(es, encoder, CatalogConfig(path=subset, image_root=catalog_dir), alias=ALIAS,
                   state_dir=tmp_path, pipeline=PipelineConfig(progress=False), force_merge=False)["index"]
    swap(es, ALIAS, second, loaded_identity=encoder.identity)
    assert rollback(es, ALIAS, loaded_identity=encoder.identity)["index"] == first
    assert {row["index"] for row in status(es, ALIAS)["indices"]} == {first, second}
    swap(es, ALIAS, second, loaded_identity=encoder.identity)
    assert prune(es, ALIAS, keep=1)["deleted"] == [first]
    assert not admin.indices.exists(index=first)

"""The pipeline with a fake encoder and a fake bulk endpoint: every record is accounted for.

The ``_bulk`` endpoint is a tiny local HTTP server speaking enough of the ES
protocol for ``helpers.streaming_bulk``: it rejects one document once with 429
(must be retried) and one permanently with 400 (must be dead-lettered).
"""

from __future__ import annotations

import http.server
import itertools
import io
import json
import socket
import threading

import numpy as np
import pytest
from elasticsearch import Elasticsearch
from PIL import Image

from indexer import pipeline as pipeline_module
from indexer.catalog import CatalogConfig, read_catalog
from indexer.documents import BuildSummary, content_hash
from indexer.images import ImageSource
from indexer.pipeline import DeadLetterWriter, PipelineConfig, Prepared, encode_isolating, prepare_catalog, \
    run_pipeline
from indexer.testing import FakeEncoder
from mmsearch.exceptions import ClusterUnavailableError, ConfigError, ImageDecodeError, IndexingError
from mmsearch.retries import BackoffPolicy, OutagePolicy


class _Bulk(http.server.BaseHTTPRequestHandler):
    reject_once: set = set()
    reject_always: set = set()
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items = []
        for meta, source in zip(lines[0::2], lines[1::2]):
            doc_id = meta["index"]["_id"]
            if doc_id in self.reject_once:
                self.reject_once.discard(doc_id)
                items.append({"index": {"_id": doc_id, "status": 429, "error": {
                    "type": "es_rejected_execution_exception", "reason": "queue full"}}})
            elif doc_id in self.reject_always:
                items.append({"index": {"_id": doc_id, "status": 400, "error": {
                    "type": "document_parsing_exception", "reason": "bad field"}}})
            else:
                self.received.append((doc_id, source))
                items.append({"index": {"_id": doc_id, "status": 201, "result": "created"}})
        payload = json.dumps({"took": 1, "errors": any(i["index"]["status"] >= 300 for i in items),
                              "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_PUT = do_POST  # noqa: N815 (the client sends bulk as PUT)

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_es(monkeypatch):
    _Bulk.reject_once, _Bulk.reject_always, _Bulk.received = set(), set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Bulk)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    # The real policy waits seconds; the retry path is what is under test, not the wait.
    monkeypatch.setattr(pipeline_module.retries, "BULK_BACKOFF",
                        BackoffPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.02))
    yield Elasticsearch(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def catalog(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "ok.png").write_bytes(_png())
    (tmp_path / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    lines = [
        {"id": "1", "title": "Nike Men Blue Shirt", "image": "images/ok.png"},
        {"id": "2", "title": "Puma Women Red Top", "image": "images/corrupt.jpg"},
        {"id": "3", "title": "Text only"},
        {"title": "no id"},
        {"id": "1", "title": "duplicate of 1"},
        {"id": "4", "title": "Missing photo", "image": "images/nope.jpg"},
        {"id": "5", "title": "retried once"},
        {"id": "6", "title": "rejected by ES"},
    ]
    path = tmp_path / "products.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines[:3]) + "\n{not json\n"
                    + "\n".join(json.dumps(line) for line in lines[3:]) + "\n")
    return CatalogConfig(path=path)


def _run(es, catalog, encoder, dead, existing=None, **config):
    summary = BuildSummary()
    docs = prepare_catalog(read_catalog(catalog), catalog, summary, dead)
    return run_pipeline(es, encoder, docs, "idx", ImageSource(root=catalog.image_root), dead,
                        PipelineConfig(progress=False, batch_size=3, **config), summary=summary,
                        existing_hashes=existing)


def test_every_record_is_indexed_skipped_or_dead_lettered(fake_es, catalog, tmp_path):
    _Bulk.reject_once, _Bulk.reject_always = {"5"}, {"6"}
    dead_path = tmp_path / "dead.jsonl"
    dead = DeadLetterWriter(dead_path)
    summary = _run(fake_es, catalog, FakeEncoder(), dead)
    dead.close()
    assert summary.read == 9
    assert summary.indexed == 5  # 1, 2 (no image), 3, 4 (no image), 5 (after a 429 retry)
    assert summary.failed == 3  # bad JSON, missing id, ES 400
    assert summary.duplicates == 1 and summary.image_failed == 2 and summary.with_image_vector == 1
    received = dict(_Bulk.received)
    assert set(received) == {"1", "2", "3", "4", "5"}
    assert "image_vector" in received["1"] and received["1"]["has_image"] is True
    assert "image_vector" not in received["2"] and received["2"]["has_image"] is False
    assert received["1"]["title"] == "Nike Men Blue Shirt"  # first occurrence kept
    entries = [json.loads(line) for line in dead_path.read_text().splitlines()]
    by_reason = {(e["stage"], e["id"]): e["reason"] for e in entries}
    assert len(entries) == summary.dead_letters == 6
    assert any(e["stage"] == "read" and "bad JSON" in e["reason"] and e["raw"] == "{not json" for e in entries)
    assert any(e["stage"] == "validate" and "missing id" in e["reason"] for e in entries)
    assert "duplicate" in by_reason[("validate", "1")]
    assert "corrupt" in by_reason[("image", "2")] or "image" in by_reason[("image", "2")]
    assert "not found" in by_reason[("image", "4")]
    assert "400" in by_reason[("bulk", "6")] and "document_parsing_exception" in by_reason[("bulk", "6")]


def test_resume_skips_unchanged_documents_without_encoding(fake_es, catalog):
    encoder = FakeEncoder()
    first = DeadLetterWriter(None)
    _run(fake_es, catalog, encoder, first)
    existing = {doc_id: source["content_hash"] for doc_id, source in _Bulk.received}
    _Bulk.received = []
    encoder.text_calls.clear()
    summary = _run(fake_es, catalog, encoder, DeadLetterWriter(None), existing=existing)
    assert summary.skipped == 6 and summary.indexed == 0
    assert encoder.text_calls == []
    changed = FakeEncoder(identity="0" * 64)  # another model: nothing may be skipped
    summary = _run(fake_es, catalog, changed, DeadLetterWriter(None), existing=existing)
    assert summary.skipped == 0 and summary.indexed == 6


def test_hooks_for_enrichment_keep_the_source(fake_es, tmp_path):
    docs = [Prepared(position="legacy/a", doc_id="a", doc={"name": "Red shoe", "sku": 1})]
    summary = run_pipeline(fake_es, FakeEncoder(), docs, "idx", ImageSource(root=tmp_path), DeadLetterWriter(None),
                           PipelineConfig(progress=False), text_of=lambda d: d["name"],
                           source_of=lambda d, tv, iv, h: {**d, "text_vector": tv.tolist(), "content_hash": h})
    assert summary.indexed == 1
    doc_id, source = _Bulk.received[0]
    assert doc_id == "a" and source["sku"] == 1 and len(source["text_vector"]) == 16
    assert source["content_hash"] == content_hash({"name": "Red shoe", "sku": 1}, None, "f" * 64)


def test_encode_isolating_costs_one_record_per_bad_input():
    def encode(items):
        if "bad" in items:
            raise ImageDecodeError("bad one")
        return np.ones((len(items), 2))

    vectors, errors = encode_isolating(encode, ["a", "bad", "c"], (ImageDecodeError,))
    assert vectors[1] is None and errors[1] == "bad one" and errors[0] is None and vectors[2] is not None
    assert encode_isolating(encode, [], (ImageDecodeError,)) == ([], [])
    with pytest.raises(IndexingError, match="every input"):
        encode_isolating(encode, ["bad", "bad"], (ImageDecodeError,))


def test_dead_letter_file_only_created_when_needed(tmp_path):
    writer = DeadLetterWriter(tmp_path / "sub" / "d.jsonl")
    writer.close()
    assert not (tmp_path / "sub").exists()


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"bulk_threads": 99}, {"decode_workers": "2"}])
def test_pipeline_config_validation(kwargs):
    with pytest.raises(ConfigError):
        PipelineConfig(**kwargs)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bulk_threads", [1, 2])
def test_unreachable_node_during_bulk_fails_the_run_as_unavailable(catalog, bulk_threads):
    # The last (only) chunk fails after each sender took its stop marker: the run must end, not
    # wait for a marker that never comes, and say "unreachable" (503 class) like every other caller.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    es = Elasticsearch(f"http://127.0.0.1:{port}", max_retries=0)
    window = OutagePolicy(window_s=0.5, initial_delay_s=0.05, max_delay_s=0.2)
    with pytest.raises(ClusterUnavailableError, match="Elasticsearch is unreachable") as raised:
        _run(es, catalog, FakeEncoder(), DeadLetterWriter(None), bulk_threads=bulk_threads, outage=window)
    assert raised.value.context["index"] == "idx"


def test_ride_out_retries_an_outage_until_its_window_ends_and_not_other_errors():
    from mmsearch.exceptions import IndexNotFoundError
    from mmsearch.gateway import is_outage
    from mmsearch.retries import ride_out

    clock = [0.0]
    calls: list[float] = []

    def down() -> None:
        calls.append(clock[0])
        raise ClusterUnavailableError("down")

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    policy = OutagePolicy(window_s=30.0, initial_delay_s=1.0, max_delay_s=8.0)
    waits = list(itertools.islice(policy.waits(clock=lambda: clock[0]), 3))
    assert waits == [1.0, 2.0, 4.0]  # doubling per retry, whatever the clock says
    with pytest.raises(ClusterUnavailableError):
        ride_out(down, policy, is_outage, sleep=sleep, clock=lambda: clock[0])
    # 1 + 2 + 4 + 8 + 8 + 7 (the rest of the window): the last retry starts at 30 s, none after it.
    assert calls == [0.0, 1.0, 3.0, 7.0, 15.0, 23.0, 30.0]

    attempts = []

    def missing() -> None:
        attempts.append(1)
        raise IndexNotFoundError("no such index")

    with pytest.raises(IndexNotFoundError):
        ride_out(missing, policy, is_outage, sleep=sleep, clock=lambda: clock[0])
    assert attempts == [1]  # waiting does not create an index

    state = {"left": 2}

    def flaky() -> str:
        if state["left"]:
            state["left"] -= 1
            raise ClusterUnavailableError("restarting")
        return "ok"

    heard: list[float] = []
    assert ride_out(flaky, policy, is_outage, sleep=lambda s: None, on_retry=lambda e, d: heard.append(d)) == "ok"
    assert len(heard) == 2

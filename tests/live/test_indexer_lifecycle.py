"""Alias lifecycle on a real node: atomic swaps under concurrent search, rollback, model guard, status, prune, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from indexer.catalog import CatalogConfig
from indexer.lifecycle import alias_targets, build, prune, rollback, status, swap
from indexer.pipeline import PipelineConfig
from mmsearch.exceptions import IndexingError, ModelMismatchError

QUIET = PipelineConfig(progress=False)


@pytest.fixture()
def two_versions(es, encoder, catalog_dir, index_name, tmp_path):
    """Two versions of the alias built from different slices of the shared catalog (40 and 60 products)."""
    lines = open(catalog_dir / "products.jsonl", encoding="utf-8").readlines()
    names = []
    for n, part in enumerate((lines[:40], lines[40:100])):
        path = tmp_path / f"part{n}.jsonl"
        path.write_text("".join(part), encoding="utf-8")
        names.append(build(es, encoder, CatalogConfig(path=path, image_root=catalog_dir), alias=index_name,
                           state_dir=tmp_path, pipeline=QUIET)["index"])
    return names


def test_swap_and_rollback_are_atomic_under_concurrent_search(es, encoder, index_name, two_versions):
    old, new = two_versions
    swap(es, index_name, old, loaded_identity=encoder.identity)
    stop = threading.Event()
    seen = {"searches": 0, "errors": [], "empty": 0, "totals": set()}

    def search_loop() -> None:
        while not stop.is_set():
            try:
                response = es.search(index=index_name, query={"match_all": {}}, size=0, track_total_hits=True)
                total = response["hits"]["total"]["value"]
                seen["totals"].add(total)
                seen["empty"] += int(total == 0)
            except Exception as exc:  # any error at all is a failure of atomicity
                seen["errors"].append(repr(exc))
            seen["searches"] += 1

    thread = threading.Thread(target=search_loop, daemon=True)
    thread.start()
    try:
        for _ in range(10):
            assert swap(es, index_name, new, loaded_identity=encoder.identity)["changed"]
            assert alias_targets(es, index_name) == [new]
            result = rollback(es, index_name, loaded_identity=encoder.identity)
            assert result["index"] == old and alias_targets(es, index_name) == [old]
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert seen["errors"] == [] and seen["empty"] == 0
    assert seen["searches"] > 20 and seen["totals"] <= {40, 60}


def test_model_guard_on_swap_and_rollback(es, encoder, index_name, two_versions):
    old, new = two_versions
    with pytest.raises(ModelMismatchError):
        swap(es, index_name, new, loaded_identity="0" * 64)
    with pytest.raises(ModelMismatchError):
        swap(es, index_name, new, loaded_identity=None)
    assert alias_targets(es, index_name) == []  # nothing happened
    assert swap(es, index_name, new, loaded_identity="0" * 64, force=True)["changed"]
    with pytest.raises(ModelMismatchError):
        rollback(es, index_name, loaded_identity="0" * 64)
    assert rollback(es, index_name, loaded_identity=encoder.identity)["index"] == old
    with pytest.raises(IndexingError, match="concrete index"):
        swap(es, index_name, index_name, loaded_identity=encoder.identity)


def test_status_and_prune_never_touch_the_aliased_index(es, encoder, index_name, two_versions):
    old, new = two_versions
    swap(es, index_name, old, loaded_identity=encoder.identity)
    report = status(es, index_name)
    assert report["points_to"] == [old]
    rows = {row["index"]: row for row in report["indices"]}
    assert rows[old]["docs"] == 40 and rows[new]["docs"] == 60
    assert rows[old]["aliases"] == [index_name] and rows[new]["aliases"] == []
    assert rows[new]["model_identity"] == encoder.identity and rows[new]["size_bytes"] > 0
    assert rows[new]["text_vectors"] == 60
    assert prune(es, index_name, keep=1, dry_run=True)["would_delete"] == []  # newest kept, old is aliased
    swap(es, index_name, new, loaded_identity=encoder.identity)
    assert prune(es, index_name, keep=1)["deleted"] == [old]
    assert not es.indices.exists(index=old) and alias_targets(es, index_name) == [new]


def test_cli_status_validate_and_clear_errors(es, es_node, encoder, model_dir, index_name, two_versions):
    old, new = two_versions
    env = {"ES_URL": es_node["url"], "PATH": "/usr/bin:/bin", "MMSEARCH_STATE_DIR": str(Path(model_dir).parent)}
    cli = [sys.executable, "-m", "mmsearch.cli", "index"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(cli + list(args), capture_output=True, text=True, env=env, timeout=120)

    out = run("swap", "--alias", index_name, "--index", new, "--model", str(model_dir))
    assert out.returncode == 0, out.stderr
    out = run("status", "--alias", index_name)
    assert out.returncode == 0 and json.loads(out.stdout)["points_to"] == [new]
    out = run("validate", "--alias", index_name, "--expected-docs", "60", "--model", str(model_dir))
    assert out.returncode == 0, out.stdout + out.stderr
    out = run("validate", "--alias", index_name, "--expected-docs", "61")
    assert out.returncode == 1 and json.loads(out.stdout)["ok"] is False
    out = run("swap", "--alias", index_name, "--index", old)  # no model given: refused, no traceback
    assert out.returncode == 2 and "cannot check the model" in out.stderr and "Traceback" not in out.stderr
    out = run("build", "--alias", index_name, "--catalog", "/nonexistent.jsonl", "--model", str(model_dir))
    assert out.returncode == 2 and "catalog not found" in out.stderr and "Traceback" not in out.stderr


def test_an_empty_index_is_not_swapped_in_unless_forced(es, encoder, index_name, tmp_path):
    from indexer.lifecycle import create_index, spec_for
    from mappings import VectorConfig

    empty = create_index(es, index_name, spec_for(es, encoder, VectorConfig(), None, "test"))
    with pytest.raises(IndexingError, match="empty index"):
        swap(es, index_name, empty, loaded_identity=encoder.identity)
    assert alias_targets(es, index_name) == []
    assert swap(es, index_name, empty, loaded_identity=encoder.identity, force=True)["changed"] is True


def test_flips_under_live_service_traffic_give_only_full_consistent_answers(es, encoder, index_name, two_versions,
                                                                           catalog_dir):
    """/search and the proxy over HTTP while the alias flips: every answer is a 200 whose hits all come
    from one version (the versions hold disjoint products), with a full page and nothing degraded."""
    import requests

    from mmsearch.config import Settings
    from query_service.app import create_app
    from tests.live.serving import served

    old, new = two_versions
    ids_of = {name: {hit["_id"] for hit in es.search(index=name, size=100, _source=False)["hits"]["hits"]}
              for name in (old, new)}
    swap(es, index_name, old, loaded_identity=encoder.identity)
    settings = Settings(es_hosts=tuple(node.base_url for node in es.transport.node_pool.all()),
                        products_alias=index_name, rate_limit="off")
    stop = threading.Event()
    answers: list[tuple[str, int, list[str], list[str]]] = []

    def traffic(url: str) -> None:
        while not stop.is_set():
            for kind, response in (
                    ("search", requests.post(f"{url}/search", json={"text": "shirt", "size": 10}, timeout=30)),
                    ("proxy", requests.post(f"{url}/{index_name}/_search", timeout=30,
                                            json={"query": {"match": {"title": "shirt"}}, "size": 10}))):
                body = response.json() if response.headers.get("content-type", "").startswith("application/json") \
                    else {}
                hits = body.get("hits", []) if kind == "search" else body.get("hits", {}).get("hits", [])
                degraded = body.get("degraded", []) if kind == "search" else body.get("_hybrid", {}).get("degraded", [])
                answers.append((kind, response.status_code, [hit["_id"] for hit in hits], list(degraded)))

    with served(create_app(settings, encoder=encoder)) as url:
        thread = threading.Thread(target=traffic, args=(url,), daemon=True)
        thread.start()
        def served_from(name: str) -> None:
            """Wait until an answer after the flip comes from ``name``: each flip happens under traffic."""
            start, deadline = len(answers), time.monotonic() + 30
            while not any(set(a[2]) <= ids_of[name] for a in answers[start:]) and time.monotonic() < deadline:
                time.sleep(0.01)

        try:
            for _ in range(10):
                swap(es, index_name, new, loaded_identity=encoder.identity)
                served_from(new)
                rollback(es, index_name, loaded_identity=encoder.identity)
                served_from(old)
        finally:
            stop.set()
            thread.join(timeout=60)
    assert len(answers) > 20
    assert [a for a in answers if a[1] != 200] == []
    assert [a for a in answers if a[3]] == []
    assert [a for a in answers if len(a[2]) != 10] == []
    mixed = [a for a in answers if not (set(a[2]) <= ids_of[old] or set(a[2]) <= ids_of[new])]
    assert mixed == [], mixed[:3]
    versions_seen = {name for name in (old, new) for a in answers if set(a[2]) <= ids_of[name]}
    assert versions_seen == {old, new}, "the flips did not happen under the traffic"

"""Faults during an index build, on a real node: bulk push-back, and the node going away mid-build.

- Bulk backpressure: chosen bulk calls answer 429/503, or fail single items; the
  exact retry traffic, the final count and the dead letters are asserted.
- A node restart shorter than the outage window is ridden out (``retries.BUILD_OUTAGE``).
- A longer outage ends the CLI with one line naming the index and ``--resume``;
  the resumed build loses and duplicates nothing.

The restart tests stop and start a node of their own ("pytest-faults"), never the
session's shared node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from indexer.catalog import CatalogConfig
from indexer.lifecycle import build, count, existing_hashes
from indexer.pipeline import PipelineConfig
from mmsearch import retries
from mmsearch.config import PROJECT_ROOT, Settings
from mmsearch.exceptions import BuildInterruptedError
from tests.live.faults import BulkFaults, faulty_client

FAST_BACKOFF = retries.BackoffPolicy(max_attempts=5, initial_delay_s=0.01, max_delay_s=0.05)


def _text_only_subset(catalog_dir: Path, out: Path, n: int) -> tuple[Path, list[str]]:
    """The first ``n`` products without a photo (fast to encode), read in place; returns the file and ids."""
    lines, ids = [], []
    with open(catalog_dir / "products.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if not record.get("image"):
                lines.append(line)
                ids.append(str(record["id"]))
                if len(lines) == n:
                    break
    out.write_text("".join(lines), encoding="utf-8")
    return out, ids


def test_bulk_backpressure_is_retried_exactly_and_nothing_is_lost_or_doubled(es, encoder, catalog_dir, index_name,
                                                                          tmp_path):
    path, ids = _text_only_subset(catalog_dir, tmp_path / "products.jsonl", 120)
    # One encoder batch per bulk chunk, one sender: the chunks, and so the call numbers, are deterministic.
    config = PipelineConfig(progress=False, batch_size=20, bulk_chunk_docs=20, bulk_backoff=FAST_BACKOFF)
    once, bad, hopeless = ids[42], ids[44], ids[60]  # third chunk: 429 once, a 400; fourth chunk: 429 always
    plan = BulkFaults(request_faults={2: 429, 3: 503},
                      item_faults={once: (429, 1), bad: (400, None), hopeless: (429, None)})
    dead_letters = tmp_path / "dead.jsonl"
    summary = build(faulty_client(es, plan), encoder, CatalogConfig(path=path, image_root=catalog_dir),
                    alias=index_name, state_dir=tmp_path, pipeline=config, dead_letter_path=dead_letters)

    sizes = [(call.answered, len(call.ids)) for call in plan.calls]
    assert sizes == [
        ("es", 20),                              # chunk 1
        ("429", 20), ("503", 20), ("es", 20),    # chunk 2: two whole-request rejections, then through
        ("es", 20), ("es", 1),                   # chunk 3: `once` re-sent alone; `bad` (400) is not retried
        ("es", 20), ("es", 1), ("es", 1), ("es", 1), ("es", 1),  # chunk 4: `hopeless` gets all 5 attempts
        ("es", 20), ("es", 20),                  # chunks 5 and 6
    ]
    assert plan.calls[5].ids == [once] and all(call.ids == [hopeless] for call in plan.calls[7:11])
    assert summary["indexed"] == 118 and summary["failed"] == 2 and summary["outage_retries"] == 0
    es.indices.refresh(index=summary["index"])
    assert count(es, summary["index"]) == 118
    lines = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    assert sorted((entry["id"], entry["stage"], entry["reason"].split(":")[0]) for entry in lines) == sorted(
        [(bad, "bulk", "status 400"), (hopeless, "bulk", "status 429")])

    # The two that failed are exactly what a resumed build (no faults now) adds: nothing is doubled.
    resumed = build(es, encoder, CatalogConfig(path=path, image_root=catalog_dir), alias=index_name,
                    state_dir=tmp_path, pipeline=PipelineConfig(progress=False), resume=summary["index"])
    assert resumed["skipped"] == 118 and resumed["indexed"] == 2
    assert count(es, summary["index"]) == 120 == len(set(ids))
    assert sorted(existing_hashes(es, summary["index"])) == sorted(ids)


# --- the node going away --------------------------------------------------------------------------


def _client(node: Any) -> Any:
    return Settings(es_hosts=(node.status().url,), request_timeout_s=30).es_client()


def _restart_in_background(node: Any) -> threading.Thread:
    """Stop the node now (synchronously) and start it again in a thread; returns that thread."""
    node.stop()
    thread = threading.Thread(target=node.start, name="node-restart", daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_node_restart_shorter_than_the_window_is_ridden_out(fault_node, encoder, catalog_dir, tmp_path):
    path, ids = _text_only_subset(catalog_dir, tmp_path / "products.jsonl", 300)
    es = _client(fault_node)
    restart: list[threading.Thread] = []
    plan = BulkFaults(before_call={3: lambda: restart.append(_restart_in_background(fault_node))})
    config = PipelineConfig(progress=False, batch_size=50, bulk_chunk_docs=50)  # BUILD_OUTAGE: 120 s
    started = time.monotonic()
    summary = build(faulty_client(es, plan), encoder, CatalogConfig(path=path, image_root=catalog_dir),
                    alias="faults-restart", state_dir=tmp_path, pipeline=config, force_merge=False)
    elapsed = time.monotonic() - started
    restart[0].join(timeout=120)
    assert summary["outage_retries"] >= 1, "the restart was not noticed: the test injected nothing"
    assert summary["indexed"] == 300 and summary["failed"] == 0 and summary["dead_letters"] == 0
    assert count(es, summary["index"]) == 300
    assert sorted(existing_hashes(es, summary["index"])) == sorted(ids)
    assert elapsed < retries.BUILD_OUTAGE.window_s + 60
    es.indices.delete(index=summary["index"])


def _cli(args: list[str], node_url: str, state_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "ES_URL": node_url, "MMSEARCH_STATE_DIR": str(state_dir)}
    return subprocess.Popen([sys.executable, "-m", "mmsearch.cli", "index", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_an_outage_longer_than_the_window_ends_in_one_line_and_the_resume_loses_nothing(
        fault_node, model_dir, catalog_dir, tmp_path):
    path, ids = _text_only_subset(catalog_dir, tmp_path / "products.jsonl", 4000)
    es = _client(fault_node)
    common = ["--model", str(model_dir), "--catalog", str(path), "--image-root", str(catalog_dir),
              "--alias", "faults-outage", "--no-progress", "--no-force-merge", "--batch-size", "32",
              "--bulk-chunk-docs", "32"]
    run = _cli(["build", *common, "--outage-window", "5"], fault_node.status().url, tmp_path)
    deadline = time.monotonic() + 120
    # indices.get, not exists: HEAD on a wildcard matching nothing is a 200 (allow_no_indices).
    while not es.indices.get(index="faults-outage-v*") and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
    if run.poll() is not None:
        pytest.fail(f"the build ended before the outage (exit {run.returncode}): {run.communicate()[1][-3000:]}")
    time.sleep(1.0)  # let a few chunks land
    fault_node.stop()
    try:
        _, stderr = run.communicate(timeout=180)
    finally:
        fault_node.start()
    es = _client(fault_node)
    index = next(iter(es.indices.get(index="faults-outage-v*")))
    assert run.returncode == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and index in errors[0] and f"--resume {index}" in errors[0], stderr
    assert not [line for line in stderr.splitlines() if line.startswith("  ")], stderr  # no context block

    es.indices.refresh(index=index)
    before = count(es, index)
    assert 0 < before < 4000, "the outage must interrupt the build part-way"
    resumed = _cli(["build", *common, "--resume", index], fault_node.status().url, tmp_path)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    summary = json.loads(stdout)["summary"]
    assert summary["skipped"] == before and summary["indexed"] == 4000 - before and summary["failed"] == 0
    assert count(es, index) == 4000
    assert sorted(existing_hashes(es, index)) == sorted(ids)
    es.indices.delete(index=index)


def test_an_index_deleted_mid_build_is_not_silently_recreated_and_served(es, encoder, catalog_dir, index_name,
                                                                        tmp_path):
    from mmsearch.exceptions import IndexingError

    path, _ = _text_only_subset(catalog_dir, tmp_path / "products.jsonl", 60)
    # By name: wildcard deletes are refused (action.destructive_requires_name).
    def delete_the_index() -> None:
        es.indices.delete(index=",".join(es.indices.get(index=f"{index_name}-v*")))

    plan = BulkFaults(before_call={2: delete_the_index})
    with pytest.raises(IndexingError, match="lost its mapping"):
        build(faulty_client(es, plan), encoder, CatalogConfig(path=path, image_root=catalog_dir), alias=index_name,
              state_dir=tmp_path, pipeline=PipelineConfig(progress=False, batch_size=20, bulk_chunk_docs=20))
    # What bulk auto-created in its place has no _meta: it never gets an alias from this build.
    assert not es.indices.exists_alias(name=index_name)

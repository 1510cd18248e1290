"""One catalog, three indexer processes, one index: ``index create`` then ``index build --into --shard i/3``.

The parts run concurrently as real CLI subprocesses (``python -m mmsearch.cli``). One of them is
killed (SIGKILL) in the middle of its load and run again with the same command: the rerun skips
what the killed run had already written (the content hashes in the index) and completes its part.
The catalog is ~300 real products plus one unreadable line and one duplicated record, so the
dead-letter files show that every bad record is reported by exactly one part.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from indexer.catalog import CatalogPart
from mmsearch.config import PROJECT_ROOT

PARTS = 3
KILLED = 2  # the part interrupted and resumed


def _env(es_url: str, state_dir: Path, alias: str) -> dict[str, str]:
    return {**os.environ, "MMSEARCH_ES_HOSTS": es_url, "MMSEARCH_STATE_DIR": str(state_dir),
            "MMSEARCH_ALIAS": alias, "PYTHONPATH": str(PROJECT_ROOT)}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmsearch.cli", "index", *args]


def _build_part(catalog: Path, model_dir: Path, index: str, number: int) -> list[str]:
    # Small batches, so a part is killed between bulk requests rather than before its first one.
    from mmsearch.config import default_catalog_dir

    return _cli("build", "--catalog", str(catalog), "--image-root", str(default_catalog_dir()),
                "--model", str(model_dir), "--into", index,
                "--shard", f"{number}/{PARTS}", "--no-progress", "--batch-size", "8", "--bulk-chunk-docs", "8",
                "--no-force-merge")


def _finish(process: subprocess.Popen, timeout: float = 900) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"part failed ({process.returncode}):\n{out[-2000:]}\n{err[-3000:]}"
    return json.loads(out)["summary"]


def _ids_in(es: Any, index: str) -> list[str]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=1000, _source=False, docvalue_fields=["id"], query={"match_all": {}})
    return [hit["fields"]["id"][0] for hit in hits["hits"]["hits"]]


@pytest.fixture()
def catalog(catalog_dir: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    with (catalog_dir / "products.jsonl").open() as lines:
        records = list(itertools.islice(lines, 7000, 7300))
    path = tmp_path / "products.jsonl"
    # One unreadable line and a second copy of a record: each must be dead-lettered by one part only.
    path.write_text("".join(records[:100]) + "{not json\n" + "".join(records[100:]) + records[5])
    ids = [str(json.loads(line)["id"]) for line in records]
    return path, ids


def test_three_concurrent_parts_fill_one_index_and_a_killed_part_resumes(
        es: Any, es_node: dict[str, Any], model_dir: Path, catalog: tuple[Path, list[str]], tmp_path: Path,
        index_name: str) -> None:
    path, ids = catalog
    state = tmp_path / "state"
    env = _env(es_node["url"], state, index_name)
    created = subprocess.run(_cli("create", "--model", str(model_dir), "--shards", "2", "--replicas", "0"),
                             env=env, capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stderr[-3000:]
    index = json.loads(created.stdout)["index"]
    expected_parts = {number: {i for i in ids if CatalogPart(number, PARTS).owns(i)} for number in range(1, PARTS + 1)}
    assert all(len(part) > 60 for part in expected_parts.values()), {n: len(p) for n, p in expected_parts.items()}

    started = time.monotonic()
    processes = {n: subprocess.Popen(_build_part(path, model_dir, index, n), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True) for n in range(1, PARTS + 1)}
    # Kill part KILLED once some, not all, of its products are in the index.
    killed_at = 0
    while processes[KILLED].poll() is None and time.monotonic() - started < 600:
        present = expected_parts[KILLED] & set(_ids_in(es, index))
        if 0 < len(present) < len(expected_parts[KILLED]):
            processes[KILLED].send_signal(signal.SIGKILL)
            processes[KILLED].wait(timeout=60)
            killed_at = len(expected_parts[KILLED] & set(_ids_in(es, index)))
            break
        time.sleep(0.2)
    assert processes[KILLED].returncode == -signal.SIGKILL, "the part finished before it could be interrupted"
    assert 0 < killed_at < len(expected_parts[KILLED])
    summaries = {n: _finish(processes[n]) for n in range(1, PARTS + 1) if n != KILLED}
    concurrent_s = time.monotonic() - started

    rerun = subprocess.Popen(_build_part(path, model_dir, index, KILLED), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    summaries[KILLED] = _finish(rerun)
    print(f"parts: concurrent phase {concurrent_s:.1f} s, part {KILLED} killed with {killed_at} of "
          f"{len(expected_parts[KILLED])} indexed; summaries", json.dumps(summaries))

    indexed = _ids_in(es, index)
    assert es.count(index=index)["count"] == len(ids) == len(indexed) == len(set(indexed))  # 0 duplicates
    assert set(indexed) == set(ids)
    for number, summary in summaries.items():
        # Each part read only its own products (+ at most the bad line and the duplicate).
        assert summary["indexed"] + summary["skipped"] == len(expected_parts[number]), (number, summary)
    # The resumed part skipped exactly what the killed run had written, and wrote only the rest.
    assert summaries[KILLED]["skipped"] == killed_at
    assert summaries[KILLED]["indexed"] == len(expected_parts[KILLED]) - killed_at
    assert all(summaries[n]["skipped"] == 0 for n in summaries if n != KILLED)

    dead_dir = state / "deadletter"
    files = sorted(p.name for p in dead_dir.glob("*.jsonl"))
    assert files and all(name.startswith(f"{index}.part") and name.endswith(f"of{PARTS}.jsonl") for name in files)
    entries = [json.loads(line) for name in files for line in (dead_dir / name).read_text().splitlines()]
    reasons = {(e["position"], e["stage"]) for e in entries}
    assert reasons == {("products.jsonl:101", "read"), ("products.jsonl:302", "validate")}, reasons
    owner_of_duplicate = next(n for n in range(1, PARTS + 1) if ids[5] in expected_parts[n])
    duplicate_files = {name for name in files
                       for line in (dead_dir / name).read_text().splitlines() if json.loads(line)["stage"] == "validate"}
    assert duplicate_files == {f"{index}.part{owner_of_duplicate}of{PARTS}.jsonl"}
    meta = es.indices.get_mapping(index=index)[index]["mappings"]["_meta"]
    assert meta["index_settings"] == {"shards": 2, "replicas": 0}
    assert set(meta.get("build_parts", {})) <= {f"{n}/{PARTS}" for n in range(1, PARTS + 1)}

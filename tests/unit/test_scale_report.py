"""benchmarks/scale.py's pure parts: the docs table and the resident-set rule (no cluster)."""

from __future__ import annotations

import copy
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mmsearch.config import PROJECT_ROOT


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> types.ModuleType:
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))  # scale.py imports latency.py, as when run as a script
    try:
        spec = importlib.util.spec_from_file_location("script_scale", PROJECT_ROOT / "benchmarks" / "scale.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(PROJECT_ROOT / "benchmarks"))


def _stage(size: int, veq: int, veb: int, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    latency = {"qps_per_scenario": 4.0, "requests": 10, "peak_in_flight": 1}
    for name, p50 in (("bm25", 11.0), ("knn", 12.0), ("hybrid", 21.5)):
        latency[name] = {"p50_ms": p50, "p99_ms": p50 * 3, "ok": 10, "errors": 1 if name == "knn" else 0,
                         "took_ms": {"encode": [5.0, 6.0], "es": [10.0, 30.0], "fuse": [0.5, 0.9], "total": [16.0, 40.0]}}
    return {"size": size, "with_image": size // 5,
            "build": {"docs_per_s": 3210.4, "force_merge_s": 45.7},
            "index": {"store_bytes": 600 * 2**20, "segments": 1,
                      "off_heap": {"vex": 10 * 2**20, "veq": veq, "veb": veb, "vec": 350 * 2**20}},
            "memory": {"nodes": nodes}, "memory_after_queries": {"nodes": nodes},
            "recall": {f"{f}@oversample={o}": {"recall_at_10": r} for (f, o), r in zip(
                (("text_vector", 0), ("text_vector", 3), ("image_vector", 0), ("image_vector", 3)),
                (0.898, 0.9795, 0.9355, 0.986))},
            "latency": latency,
            "service_memory": {"master": {"rss": 1}, "workers": [{"rss": 290 * 2**20, "pss": 240 * 2**20}]}}


def _results(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    conditions = {"started": "2026-12-07T22:42:46+00:00", "host": {"cpus": 2, "load_before": [1.4, 1, 1]},
                  "elasticsearch": ["9.2.8"], "nodes": len(nodes), "shards": 2, "replicas": 1,
                  "base_products": 42946, "base_with_image": 8083, "dim": 256, "synthesis": {"noise": 0.25},
                  "service_workers": 2}
    return {"conditions": conditions, "variants": [
        {"index_type": "int8_hnsw", "stages": [_stage(300_000, 90 * 2**20, 0, nodes)]},
        {"index_type": "bbq_hnsw", "stages": [_stage(300_000, 0, 16 * 2**20, nodes)]}]}


def test_resident_set_is_the_graph_plus_the_quantised_file_of_the_index_type(scale: types.ModuleType) -> None:
    off_heap = {"vex": 10, "veq": 260, "veb": 46, "vec": 1024}
    assert scale.resident_bytes(off_heap, "int8_hnsw") == 270
    assert scale.resident_bytes(off_heap, "bbq_hnsw") == 56
    assert scale.resident_bytes({"vex": 7}, "int8_hnsw") == 7


def test_render_reports_every_measured_figure_and_the_command(scale: types.ModuleType) -> None:
    node = {"name": "a", "heap_used": 800 * 2**20, "heap_max": 2048 * 2**20, "rss": 3000 * 2**20}
    text = scale.render(_results([node]), PROJECT_ROOT / "docs" / "scale" / "x.json")
    assert ("`python benchmarks/scale.py --index-types int8_hnsw,bbq_hnsw --sizes 300000 --shards 2 --replicas 1 "
            "--out docs/scale/x.json`") in text
    assert "| int8_hnsw | 300,000 | 60,000 | 3,210 | 46 | 600 | 100 | 350 | 800 / 2,048 | 3,000 |" in text
    assert "| bbq_hnsw | 300,000 | 60,000 | 3,210 | 46 | 600 | 26 | 350 | 800 / 2,048 | 3,000 |" in text
    assert "| int8_hnsw | 300,000 | 0.898 | 0.980 | 0.935 | 0.986 |" in text
    assert "| bm25 | knn | hybrid | errors |" in text
    assert "| int8_hnsw | 300,000 | 11.0 / 33.0 | 12.0 / 36.0 | 21.5 / 64.5 | 1 |" in text
    assert "| int8_hnsw | 300,000 | 5.0 / 6.0 | 10.0 / 30.0 | - | 0.5 / 0.9 | 16.0 / 40.0 |" in text
    assert "RSS 290-290 MB, PSS 240-240 MB per worker (2 readings)" in text


def test_render_sums_a_clusters_nodes_and_leaves_unknown_rss_unknown(scale: types.ModuleType) -> None:
    local = {"name": "a", "heap_used": 500 * 2**20, "heap_max": 1024 * 2**20, "rss": 1500 * 2**20}
    text = scale.render(_results([local, copy.deepcopy(local)]), Path("/elsewhere/x.json"))
    assert "| 1,000 / 2,048 | 3,000 |" in text and "--out /elsewhere/x.json" in text
    remote = {**local, "rss": None}
    assert "| 1,000 / 2,048 | - |" in scale.render(_results([local, remote]), Path("x.json"))

"""The README's main command, on the generated sample catalog, against the test node."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mmsearch.config import PROJECT_ROOT


def test_demo_indexes_the_sample_catalog_and_searches(es, es_node, model_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmsearch.cli", "demo", "--sample", "--es-url", es_node["url"],
         "--model-dir", str(model_dir), "--no-serve"],
        capture_output=True, text=True, timeout=1200, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    index = next(iter(es.indices.get_alias(name="products").body))
    with (PROJECT_ROOT / ".state" / "sample-catalog" / "products.jsonl").open() as lines:
        expected = sum(1 for _ in lines)
    assert es.count(index=index)["count"] == expected
    assert "BM25 top 5 for 'navy blue shirt'" in proc.stdout
    bm25_block = proc.stdout.split("BM25 top 5")[1].split("==")[0]
    assert "Navy Blue" in bm25_block  # the keyword leg finds the words
    # A second run changes nothing: same index behind the alias.
    again = subprocess.run(
        [sys.executable, "-m", "mmsearch.cli", "demo", "--sample", "--es-url", es_node["url"],
         "--model-dir", str(model_dir), "--no-serve"],
        capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already serves this model" in again.stdout
    assert next(iter(es.indices.get_alias(name="products").body)) == index

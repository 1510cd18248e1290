"""Building real indices from the shared catalog with the real encoder.

Covers: products with and without images, idempotent re-runs, resumable builds,
dead letters for planted bad records, and capability-dependent analyzers.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from indexer.catalog import CatalogConfig, read_catalog
from indexer.documents import BuildSummary
from indexer.lifecycle import build, count, existing_hashes, image_source, index_meta, validate
from indexer.pipeline import DeadLetterWriter, PipelineConfig, prepare_catalog, run_pipeline
from mappings import ModelFacts
from mmsearch.capabilities import detect_capabilities
from mmsearch.exceptions import IndexingError

QUIET = PipelineConfig(progress=False)


def _subset(catalog_dir: Path, out: Path, text_only: int, with_image: int) -> Path:
    """First N text-only and M image products of the shared catalog, read in place (paths stay relative)."""
    picked_text, picked_image = [], []
    with open(catalog_dir / "products.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            bucket, limit = (picked_image, with_image) if record.get("image") else (picked_text, text_only)
            if len(bucket) < limit:
                bucket.append(line)
            if len(picked_text) >= text_only and len(picked_image) >= with_image:
                break
    out.write_text("".join(picked_text + picked_image), encoding="utf-8")
    return out


@pytest.fixture()
def shared_subset(catalog_dir: Path, tmp_path: Path) -> CatalogConfig:
    path = _subset(catalog_dir, tmp_path / "products.jsonl", text_only=200, with_image=100)
    return CatalogConfig(path=path, image_root=catalog_dir)


def test_build_with_and_without_images_then_idempotent_rerun(es, encoder, shared_subset, index_name, tmp_path):
    summary = build(es, encoder, shared_subset, alias=index_name, state_dir=tmp_path, pipeline=QUIET)
    index = summary["index"]
    assert index.startswith(f"{index_name}-v")
    assert (summary["indexed"], summary["failed"], summary["image_failed"]) == (300, 0, 0)
    assert summary["with_image_vector"] == 100
    assert count(es, index) == 300
    assert count(es, index, {"exists": {"field": "image_vector"}}) == 100
    assert count(es, index, {"term": {"has_image": False}}) == 200
    report = validate(es, index, catalog=shared_subset, model=ModelFacts.from_encoder(encoder))
    assert report["ok"], report
    meta = index_meta(es, index)
    assert meta["model_identity"] == encoder.identity and meta["model_dim"] == encoder.dim
    assert meta["build"]["indexed"] == 300
    settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings.get("refresh_interval") in (None, "1s")  # restored after the load

    # BM25 and kNN both work on the result.
    hit = es.search(index=index, query={"match": {"title": "shirt"}}, size=1)["hits"]["hits"][0]
    assert "shirt" in hit["_source"]["title"].lower()
    doc = es.get(index=index, id=hit["_id"])["_source"]
    vector = encoder.encode_texts([encoder.product_text(doc)])[0].tolist()
    knn = es.search(index=index, knn={"field": "text_vector", "query_vector": vector, "k": 3, "num_candidates": 50})
    assert knn["hits"]["hits"][0]["_id"] == hit["_id"]

    # Re-running the same documents into the same index overwrites by _id: same count.
    again = BuildSummary()
    dead = DeadLetterWriter(None)
    run_pipeline(es, encoder, prepare_catalog(read_catalog(shared_subset), shared_subset, again, dead), index,
                 image_source(shared_subset), dead, QUIET, summary=again)
    es.indices.refresh(index=index)
    assert again.indexed == 300 and count(es, index) == 300
    assert summary["force_merge_s"] is not None
    assert _segments(es, index) > 1  # the overwrite left new segments beside the merged one
    # ... and a resumed build skips everything that is unchanged, then merges to one segment
    # (kNN searches every segment's graph; tested here because it decides kNN latency).
    resumed = build(es, encoder, shared_subset, alias=index_name, state_dir=tmp_path, pipeline=QUIET, resume=index)
    assert (resumed["skipped"], resumed["indexed"]) == (300, 0)
    assert count(es, index) == 300
    assert _segments(es, index) == 1


def _segments(es: Any, index: str) -> int:
    """Search segments of the primaries (on a cluster, replicas hold copies of the same segments)."""
    shards = es.indices.segments(index=index)["indices"][index]["shards"]
    return sum(copy["num_search_segments"] for copies in shards.values() for copy in copies
               if copy["routing"]["primary"])


class _FailingEncoder:
    """The real encoder, but text encoding breaks after ``ok_calls`` batches (a crash mid-build)."""

    def __init__(self, inner: Any, ok_calls: int) -> None:
        self.inner, self.calls, self.ok_calls = inner, 0, ok_calls
        self.identity, self.name, self.dim = inner.identity, inner.name, inner.dim

    def product_text(self, record: Any) -> str:
        return self.inner.product_text(record)

    def encode_texts(self, texts: list[str]) -> Any:
        self.calls += 1
        if self.calls > self.ok_calls:
            raise RuntimeError("simulated crash")
        return self.inner.encode_texts(texts)

    def encode_images(self, images: list[Any]) -> Any:
        return self.inner.encode_images(images)


def test_interrupted_build_resumes(es, encoder, shared_subset, index_name, tmp_path):
    with pytest.raises(IndexingError, match="every input"):
        build(es, _FailingEncoder(encoder, ok_calls=2), shared_subset, alias=index_name, state_dir=tmp_path,
              pipeline=PipelineConfig(progress=False, batch_size=50))
    index = next(iter(es.indices.get(index=f"{index_name}-v*")))
    es.indices.refresh(index=index)
    partial = count(es, index)
    assert 0 < partial < 300
    assert len(existing_hashes(es, index)) == partial
    resumed = build(es, encoder, shared_subset, alias=index_name, state_dir=tmp_path, pipeline=QUIET, resume=index)
    assert resumed["skipped"] == partial and resumed["indexed"] == 300 - partial
    assert count(es, index) == 300


def _png_bomb() -> bytes:
    """A valid PNG header declaring 100,000 x 100,000 pixels (10 gigapixels) with a tiny body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def test_planted_bad_records_go_to_the_dead_letter_file(es, encoder, catalog_dir, index_name, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    real = [json.loads(line) for line in open(catalog_dir / "products.jsonl", encoding="utf-8")
            if '"image"' in line][:6]
    for record in real:  # copies in tmp_path only, so planted files can sit beside them
        shutil.copy(catalog_dir / record["image"], images / Path(record["image"]).name)
    (images / "corrupt.jpg").write_bytes((catalog_dir / real[0]["image"]).read_bytes()[:300])
    (images / "bomb.png").write_bytes(_png_bomb())
    good = real[:3]
    planted = [
        {**real[3], "id": "bad-corrupt", "image": "images/corrupt.jpg"},
        {**real[4], "id": "bad-bomb", "image": "images/bomb.png"},
        {**real[5], "id": "bad-missing", "image": "images/does-not-exist.jpg"},
        {**real[5], "id": "bad-escape", "image": "../../etc/passwd"},
        {"title": "no id here", "gender": "Men"},
    ]
    lines = [json.dumps(r) for r in good + planted]
    lines.insert(2, '{"id": "broken", "title": "unterminated')
    path = tmp_path / "products.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dead_path = tmp_path / "dead.jsonl"
    summary = build(es, encoder, CatalogConfig(path=path), alias=index_name, state_dir=tmp_path, pipeline=QUIET,
                    dead_letter_path=dead_path)
    index = summary["index"]
    assert summary["indexed"] == 7 and summary["failed"] == 2 and summary["image_failed"] == 4
    assert summary["with_image_vector"] == 3
    entries = [json.loads(line) for line in dead_path.read_text(encoding="utf-8").splitlines()]
    assert len(entries) == summary["dead_letters"] == 6
    reasons = {e["id"] or e["stage"]: e["reason"] for e in entries}
    assert reasons["read"].startswith("bad JSON")
    assert "missing id" in reasons["validate"]
    assert "corrupt" in reasons["bad-corrupt"]
    assert "too large" in reasons["bad-bomb"]
    assert "not found" in reasons["bad-missing"]
    assert "escapes the catalog" in reasons["bad-escape"]
    for doc_id in ("bad-corrupt", "bad-bomb", "bad-missing", "bad-escape"):
        source = es.get(index=index, id=doc_id)["_source"]
        assert source["has_image"] is False and "text_vector" in es.get(
            index=index, id=doc_id, source_includes=["text_vector"])["_source"]
    assert not es.exists(index=index, id="broken")


def test_analyzer_follows_cluster_capabilities(es, encoder, shared_subset, index_name, tmp_path):
    caps = detect_capabilities(es)
    small = CatalogConfig(path=_subset(shared_subset.image_root, tmp_path / "small.jsonl", 5, 0),
                          image_root=shared_subset.image_root)
    index = build(es, encoder, small, alias=index_name, state_dir=tmp_path, pipeline=QUIET)["index"]
    analysis = es.indices.get_settings(index=index)[index]["settings"]["index"]["analysis"]
    tokens = [t["token"] for t in es.indices.analyze(index=index, analyzer="product_text",
                                                     text="Running Shoes")["tokens"]]
    if caps.analysis_common:
        assert analysis["analyzer"]["product_text"]["type"] == "custom"
        assert tokens[-1] == "shoe"  # plural folded by the English stemmer
    else:
        assert analysis["analyzer"]["product_text"]["type"] == "standard"
        assert tokens == ["running", "shoes"]
    assert index_meta(es, index)["analyzer"] == ("english" if caps.analysis_common else "standard")

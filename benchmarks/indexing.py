"""Indexing benchmark: end-to-end build vs encoder-only throughput, and index size per vector type.

    ES_URL=http://127.0.0.1:9200 python benchmarks/indexing.py --model DIR [--catalog PATH] [--limit N] [--repeats R]

--catalog is a catalog directory (with products.jsonl) or catalog file
(docs/indexing.md, "Catalog location"); without it, the shared catalog as
``make demo`` finds it (MMSEARCH_CATALOG_DIR, else ../shared/data/fashion-products).

Phase 1 (encoder only): the same read -> normalise -> image decode (thread pool)
-> batched encode path as the pipeline, with no Elasticsearch at all.
Phase 2 (end to end): ``indexer.lifecycle.build`` into a fresh int8_hnsw index,
including the final refresh.  Phases alternate per repeat (A B A B ...), so
drift in machine load hits both; medians are reported.
Phase 3 (size): the vectors from phase 1 are bulk-loaded (no re-encoding) into
one index per dense_vector type, force-merged to one segment; store size and
the knn/vector share from ``_disk_usage`` are reported per 1k docs.

Prints one JSON document; every figure in docs/benchmarks.md comes from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.catalog import CATALOG_HELP, CatalogConfig, catalog_or_default, read_catalog  # noqa: E402
from indexer.documents import BuildSummary, build_source, content_hash, index_action  # noqa: E402
from indexer.images import load_and_decode  # noqa: E402
from indexer.lifecycle import build, image_source  # noqa: E402
from indexer.pipeline import DeadLetterWriter, PipelineConfig, prepare_catalog  # noqa: E402
from mappings import AnalysisConfig, IndexSpec, ModelFacts, VectorConfig, build_index_body  # noqa: E402
from mmsearch.exceptions import ConfigError  # noqa: E402

SIZE_TYPES = ("int8_hnsw", "bbq_hnsw", "hnsw", "flat")


def _limited(path: Path, limit: int | None, tmp: Path) -> Path:
    if not limit:
        return path
    out = tmp / "catalog.jsonl"
    with open(path, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if n >= limit:
                break
            dst.write(line)
    return out


def encoder_only(encoder: Any, catalog: CatalogConfig, pipeline: PipelineConfig,
                 keep_vectors: bool) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """Read, decode and encode everything exactly as the pipeline does, minus Elasticsearch."""
    summary = BuildSummary()
    dead = DeadLetterWriter(None)
    images = image_source(catalog)
    kept: list[tuple[dict[str, Any], Any, Any, str]] = []  # numpy vectors; lists only at bulk time
    started = time.perf_counter()
    docs = list(prepare_catalog(read_catalog(catalog), catalog, summary, dead))
    batches = [docs[i:i + pipeline.batch_size] for i in range(0, len(docs), pipeline.batch_size)]
    with ThreadPoolExecutor(max_workers=pipeline.decode_workers) as pool:
        pending: deque[tuple[list[Any], list[Any]]] = deque()

        def submit(batch: list[Any]) -> None:
            pending.append((batch, [pool.submit(load_and_decode, d.image_ref, d.image_bytes, images) for d in batch]))

        for batch in batches[:pipeline.prefetch_batches]:
            submit(batch)
        next_batch = pipeline.prefetch_batches
        while pending:
            batch, futures = pending.popleft()
            if next_batch < len(batches):  # same bounded look-ahead as the pipeline
                submit(batches[next_batch])
                next_batch += 1
            loaded = [f.result() for f in futures]
            text_vectors = encoder.encode_texts([encoder.product_text(d.doc) for d in batch])
            with_image = [i for i, item in enumerate(loaded) if item.image is not None]
            image_vectors = encoder.encode_images([loaded[i].image for i in with_image]) if with_image else []
            if keep_vectors:
                by_index = dict(zip(with_image, image_vectors))
                for i, d in enumerate(batch):
                    kept.append((d.doc, text_vectors[i], by_index.get(i),
                                 content_hash(d.doc, loaded[i].digest, encoder.identity)))
    seconds = time.perf_counter() - started
    return {"docs": len(docs), "seconds": round(seconds, 2), "docs_per_second": round(len(docs) / seconds, 1),
            "with_image": sum(1 for d in docs if d.image_ref)}, kept


def end_to_end(es: Any, encoder: Any, catalog: CatalogConfig, pipeline: PipelineConfig, alias: str,
               state_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    summary = build(es, encoder, catalog, alias=alias, state_dir=state_dir, pipeline=pipeline)
    seconds = time.perf_counter() - started  # includes create, refresh restore and final refresh
    return {"index": summary["index"], "indexed": summary["indexed"], "failed": summary["failed"],
            "image_failed": summary["image_failed"], "with_image_vector": summary["with_image_vector"],
            "seconds": round(seconds, 2), "docs_per_second": round(summary["indexed"] / seconds, 1),
            "encode_seconds": summary["encode_seconds"], "encoder_wait_seconds": summary["encoder_wait_seconds"]}


def size_per_type(es: Any, encoder: Any, sources: list[tuple[Any, ...]], alias: str) -> list[dict[str, Any]]:
    from elasticsearch.helpers import bulk

    from mmsearch.capabilities import detect_capabilities

    analysis = AnalysisConfig.for_cluster(detect_capabilities(es))
    rows = []
    for index_type in SIZE_TYPES:
        name = f"{alias}-size-{index_type.replace('_', '')}"
        spec = IndexSpec(model=ModelFacts.from_encoder(encoder), analysis=analysis,
                         vectors=VectorConfig(index_type=index_type), source="benchmark")
        body = build_index_body(spec)
        es.options(ignore_status=404).indices.delete(index=name)
        es.indices.create(index=name, settings={**body["settings"], "index": {**body["settings"]["index"],
                          "refresh_interval": "-1"}}, mappings=body["mappings"])
        try:
            started = time.perf_counter()
            bulk(es.options(request_timeout=300), (index_action(name, doc["id"], build_source(doc, tv, iv, digest))
                                                   for doc, tv, iv, digest in sources), chunk_size=500)
            es.indices.refresh(index=name)
            load_seconds = time.perf_counter() - started
            es.options(request_timeout=900).indices.forcemerge(index=name, max_num_segments=1)
            stats = es.indices.stats(index=name, metric="store,docs")["indices"][name]["primaries"]
            size = stats["store"]["size_in_bytes"]
            docs = stats["docs"]["count"]
            vector_bytes = None
            try:
                usage = es.indices.disk_usage(index=name, run_expensive_tasks=True)[name]["fields"]
                vector_bytes = sum(usage.get(f, {}).get("knn_vectors_in_bytes", 0)
                                   for f in ("text_vector", "image_vector"))
            except Exception as exc:  # _disk_usage may be unavailable; size alone is still useful
                vector_bytes = f"unavailable: {exc}"[:120]
            rows.append({"index_type": index_type, "docs": docs, "store_bytes": size,
                         "bytes_per_1k_docs": round(size * 1000 / docs), "knn_vector_bytes": vector_bytes,
                         "load_seconds": round(load_seconds, 2)})
        finally:
            es.indices.delete(index=name)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, default=None, help=CATALOG_HELP)
    parser.add_argument("--limit", type=int, help="first N catalog lines only (JSONL catalogs)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--alias", default="bench-products")
    parser.add_argument("--skip-size", action="store_true")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    try:
        location = catalog_or_default(args.catalog)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.limit and location.format != "jsonl":
        parser.error("--limit copies the first N lines, so it needs a JSONL catalog")

    from mmsearch.config import Settings
    from onnx_models.runtime import Encoder

    settings = Settings.load()
    es = settings.es_client()
    encoder = Encoder.load(args.model)
    pipeline = PipelineConfig(batch_size=args.batch_size, progress=False)
    tmp = Path(tempfile.mkdtemp(prefix="mmsearch-bench-"))
    catalog = CatalogConfig(path=_limited(location.products_file, args.limit, tmp), format=location.format,
                            image_root=location.root_dir)
    runs_enc, runs_e2e, sources = [], [], []
    for repeat in range(args.repeats):
        enc, kept = encoder_only(encoder, catalog, pipeline, keep_vectors=(repeat == 0 and not args.skip_size))
        sources = sources or kept
        runs_enc.append(enc)
        print(json.dumps({"encoder_only": enc}), file=sys.stderr, flush=True)
        e2e = end_to_end(es, encoder, catalog, pipeline, args.alias, tmp)
        es.indices.delete(index=e2e["index"])
        runs_e2e.append(e2e)
        print(json.dumps({"end_to_end": e2e}), file=sys.stderr, flush=True)
    enc_median = statistics.median(r["docs_per_second"] for r in runs_enc)
    e2e_median = statistics.median(r["docs_per_second"] for r in runs_e2e)
    result = {
        "conditions": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                       "load_avg_at_end": os.getloadavg(), "model": encoder.name, "dim": encoder.dim,
                       "providers": getattr(encoder, "providers", None), "batch_size": args.batch_size,
                       "decode_workers": pipeline.decode_workers, "bulk_threads": pipeline.bulk_threads,
                       "catalog": str(location.products_file), "limit": args.limit, "repeats": args.repeats},
        "encoder_only_runs": runs_enc, "end_to_end_runs": runs_e2e,
        "median_encoder_only_docs_per_s": enc_median, "median_end_to_end_docs_per_s": e2e_median,
        "ratio_end_to_end_vs_encoder_only": round(e2e_median / enc_median, 3),
    }
    if not args.skip_size:
        result["index_size"] = size_per_type(es, encoder, sources, args.alias)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

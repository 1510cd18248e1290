"""Scale: the real catalog grown to 100k, 300k and 1M synthetic products, int8_hnsw against bbq_hnsw.

What it does, for each ``--index-types`` entry, on the cluster at ``ES_URL``:

1. reads the real catalog back from ``--base-alias`` (a full ``mmsearch index build`` of the shared
   catalog, e.g. by ``make demo``): its sources and the vectors the real encoders gave them;
2. creates an index through the project's own loader (``indexer.lifecycle.create_index``: the
   product template, client-side analysis where the node lacks analysis-common, the model's
   ``_meta``) with that quantisation, shards and replicas, behind the alias ``scale-<type>``;
3. grows it stage by stage (``--sizes``): synthetic products (``indexer.synthetic``: text and
   attributes recombined, vectors moved by the colour change plus noise) bulk-loaded with refreshes
   off, then refreshed and force-merged to one segment as ``mmsearch index build`` does;
4. after each stage measures
   * index size, segments, and the vector files ES reports as off-heap (``dense_vector.off_heap``);
   * the node's JVM heap and its process RSS (when the node runs on this machine);
   * indexing docs/s of the stage and the force-merge time;
   * recall@10 of approximate kNN (``text_vector``, and ``image_vector`` for the text->image leg)
     against brute force over every loaded vector, with rescoring off and at ``--oversample``;
   * ``POST /search`` p50/p99 through ``mmsearch serve`` (gunicorn, ``--workers``) for BM25, kNN and
     the default hybrid ranking, each with rescoring off and on, all streams interleaved at a
     fixed rate (``--qps`` each: open loop, so queueing shows in the tail);
   * the service workers' memory (RSS and PSS).

    ES_URL=http://127.0.0.1:9200 python benchmarks/scale.py --out docs/scale/run.json --write-doc

Products i < n are the same in every run with the same ``--seed``/``--noise`` (indexer.synthetic),
so 100k is a prefix of 1M. The scale indices are deleted at the start of their own run, and kept
at the end (``--keep``) or deleted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import urllib3
from elasticsearch import helpers

from indexer.documents import content_hash, source_builder_for
from indexer.lifecycle import alias_targets, create_index, index_meta, iter_hits, spec_for
from indexer.synthetic import BaseCatalog, SynthesisConfig, exact_top_k, row_of, synthesize
from latency import code_state, open_loop, pct, serve_gunicorn, write_doc_section
from mappings.loader import IndexSettings, VectorConfig
from mmsearch.config import PROJECT_ROOT, Settings, default_catalog_dir
from mmsearch.text_analysis import ANALYZED_FIELD
from onnx_models.runtime import Encoder
from query_service import queries
from query_service.ranking import RankingConfig
from query_service.relevance.metrics import recall_at

#: Fields of the real sources that the loader computes again (build_source) or that are vectors.
DERIVED_FIELDS = ("has_image", "content_hash", ANALYZED_FIELD, "text_vector", "image_vector")
#: /search scenarios: name -> ranking overrides (the rescoring one is added per run).
SCENARIOS: dict[str, dict[str, Any]] = {
    "bm25": {"legs": {"bm25": 1.0}},
    "knn": {"legs": {"text_text": 1.0}},
    "hybrid": {},  # the served default ranking, as is
}
VECTOR_FIELDS = ("text_vector", "image_vector")


def read_base(es: Any, alias: str) -> BaseCatalog:
    """The real catalog behind ``alias``: sources and the float vectors ES kept (``exclude_vectors``
    off: ES 9.2 leaves vectors out of ``_source`` by default and rebuilds them on request)."""
    index = (alias_targets(es, alias) or [alias])[0]
    sources, text, image, has_image = [], [], [], []
    for hit in iter_hits(es, index, source={"exclude_vectors": False}):
        source = hit["_source"]
        sources.append({k: v for k, v in source.items() if k not in DERIVED_FIELDS})
        text.append(source["text_vector"])
        has_image.append("image_vector" in source)
        image.append(source.get("image_vector") or source["text_vector"])
    order = np.argsort([s["id"] for s in sources], kind="stable")  # PIT order is not a contract
    return BaseCatalog(sources=[sources[i] for i in order], text_vectors=np.asarray(text, np.float32)[order],
                       image_vectors=np.asarray(image, np.float32)[order], has_image=np.asarray(has_image)[order])


class VectorStore:
    """Every loaded synthetic vector, by row, for brute force: (capacity, dim) float32 per field."""

    def __init__(self, capacity: int, dim: int) -> None:
        self.text = np.zeros((capacity, dim), np.float32)
        self.image = np.zeros((capacity, dim), np.float32)
        self.has_image = np.zeros(capacity, bool)
        self.size = 0

    def rows_with_image(self) -> np.ndarray:
        return np.flatnonzero(self.has_image[: self.size])


def load_stage(es: Any, index: str, base: BaseCatalog, store: VectorStore, stop: int,
               config: SynthesisConfig, identity: str, chunk: int) -> dict[str, Any]:
    """Bulk-load products ``store.size .. stop - 1`` with refreshes off; then refresh and force-merge."""
    source_of = source_builder_for(index_meta(es, index))
    start = store.size

    def actions() -> Any:
        for row, product in enumerate(synthesize(base, start, stop, config), start):
            store.text[row] = product.text_vector
            if product.image_vector is not None:
                store.image[row], store.has_image[row] = product.image_vector, True
            digest = content_hash(product.source, product.source.get("image"), identity)
            yield {"_op_type": "index", "_index": index, "_id": product.source["id"],
                   "_source": source_of(product.source, product.text_vector, product.image_vector, digest)}

    es.indices.put_settings(index=index, settings={"index": {"refresh_interval": "-1"}})
    began = time.monotonic()
    failed = 0
    for ok, _item in helpers.parallel_bulk(es.options(request_timeout=600), actions(), thread_count=2,
                                           chunk_size=chunk, queue_size=2, raise_on_error=False):
        failed += not ok
    load_s = time.monotonic() - began
    es.indices.put_settings(index=index, settings={"index": {"refresh_interval": None}})
    es.options(request_timeout=600).indices.refresh(index=index)
    began = time.monotonic()
    es.options(request_timeout=7200).indices.forcemerge(index=index, max_num_segments=1, wait_for_completion=True)
    merge_s = time.monotonic() - began
    store.size = stop
    count = int(es.count(index=index)["count"])
    return {"docs": count, "expected_docs": stop, "failed_items": failed, "load_s": round(load_s, 1),
            "docs_per_s": round((stop - start) / load_s, 1), "force_merge_s": round(merge_s, 1)}


def node_memory(es: Any) -> dict[str, Any]:
    """JVM heap of every node, and the process RSS of nodes that run on this machine (from /proc)."""
    stats = es.nodes.stats(metric="jvm,process")["nodes"]
    info = es.nodes.info(metric="process")["nodes"]
    out = []
    for node_id, node in stats.items():
        pid = info.get(node_id, {}).get("process", {}).get("id")
        out.append({"name": node["name"], "heap_used": node["jvm"]["mem"]["heap_used_in_bytes"],
                    "heap_max": node["jvm"]["mem"]["heap_max_in_bytes"], "rss": proc_memory(pid).get("rss")})
    return {"nodes": out}


def proc_memory(pid: Any) -> dict[str, int]:
    """RSS and PSS of a local process in bytes (``/proc/<pid>/smaps_rollup``); {} if not readable."""
    try:
        text = Path(f"/proc/{int(pid)}/smaps_rollup").read_text()
    except (OSError, TypeError, ValueError):
        return {}
    values = {m.group(1).lower(): int(m.group(2)) * 1024 for m in re.finditer(r"^(Rss|Pss):\s+(\d+) kB", text, re.M)}
    return values


def index_facts(es: Any, index: str) -> dict[str, Any]:
    stats = es.indices.stats(index=index)["indices"][index]["primaries"]
    off_heap = stats.get("dense_vector", {}).get("off_heap", {})
    return {"store_bytes": stats["store"]["size_in_bytes"], "segments": stats["segments"]["count"],
            "off_heap": {k.replace("total_", "").replace("_size_bytes", ""): v for k, v in off_heap.items()
                         if k.endswith("_bytes")}}


def knn_ids(es: Any, index: str, field: str, vector: np.ndarray, ranking: RankingConfig) -> list[str]:
    """Top 10 ids of the engine's own kNN body (``queries.knn_body``: k = depth, the ranking's
    num_candidates and rescoring) for this field, without filters."""
    body = queries.knn_body(field, vector, ranking, {})
    response = es.search(index=index, query=body["query"], size=10, source=False, track_total_hits=False)
    return [hit["_id"] for hit in response["hits"]["hits"]]


def measure_recall(es: Any, index: str, store: VectorStore, query_vectors: np.ndarray,
                   config: SynthesisConfig, oversamples: tuple[float, ...]) -> dict[str, Any]:
    """Mean recall@10 of approximate kNN against brute force, per field and rescoring setting."""
    out: dict[str, Any] = {}
    for field in VECTOR_FIELDS:
        matrix = store.text if field == "text_vector" else store.image
        rows = np.arange(store.size) if field == "text_vector" else store.rows_with_image()
        exact = exact_top_k(matrix, query_vectors, 10, rows=rows)
        for oversample in oversamples:
            ranking = RankingConfig(rescore_oversample=oversample)
            scores, began = [], time.monotonic()
            for q, vector in enumerate(query_vectors):
                approx = [row_of(i, config) for i in knn_ids(es, index, field, vector, ranking)]
                scores.append(recall_at([str(r) for r in approx], {str(r): 1 for r in exact[q]}, k=10))
            out[f"{field}@oversample={oversample:g}"] = {
                "recall_at_10": round(float(np.mean(scores)), 4), "queries": len(scores),
                "min": round(float(np.min(scores)), 2), "mean_ms": round((time.monotonic() - began) * 1000 / len(scores), 2)}
    return out


def worker_memory(master_pid: int) -> dict[str, Any]:
    """RSS/PSS of gunicorn's master and each worker (its children), in bytes."""
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        children = []
    return {"master": proc_memory(master_pid), "workers": [proc_memory(pid) for pid in children]}


#: ``--boost-study``: the same legs without the parse's lexical boosts (``attribute_boost: 0``; the
#: attribute leg and the pre-filter stay), to show what those ``should`` clauses cost at scale, and
#: with the boosts applied by the service over the leg's plain top 1000 (``boost_window``).
BOOST_STUDY: dict[str, dict[str, Any]] = {
    "bm25-noboost": {"legs": {"bm25": 1.0}, "attribute_boost": 0.0},
    "hybrid-noboost": {"attribute_boost": 0.0},
    "hybrid-nounderstanding": {"understanding": False},
    "bm25-window1000": {"legs": {"bm25": 1.0}, "boost_window": 1000},
    "hybrid-window1000": {"boost_window": 1000},
}


def measure_latency(url: str, texts: list[str], oversample: float, qps: float, requests: int,
                    workers: int, scenarios: dict[str, dict[str, Any]] = SCENARIOS) -> dict[str, Any]:
    """p50/p99 of ``POST /search`` per scenario, rescoring off and at ``oversample``, all interleaved."""
    http = urllib3.PoolManager(maxsize=workers, headers={"Content-Type": "application/json"})
    names, calls = [], []
    for name, overrides in scenarios.items():
        for setting in ((0.0, oversample) if name in ("knn", "hybrid") and oversample else (0.0,)):
            ranking = {**overrides, "rescore_oversample": setting, "name": f"{name}-{setting:g}"}
            names.append(name if setting == 0 else f"{name}+rescore{setting:g}")
            calls.append(_caller(http, f"{url}/search", texts, ranking))
    for call in calls:  # warm-up: first requests load the parser's vocabulary and page in the index
        for i in range(10):
            call(i)
    results, peak = open_loop(requests, qps, tuple(calls), workers)
    out: dict[str, Any] = {"qps_per_scenario": qps, "requests": requests, "peak_in_flight": peak}
    for name, runs in zip(names, results):
        ok = [r["ms"] for r in runs if r["status"] == 200]
        stages = sorted({stage for r in runs for stage in r["took"]})
        out[name] = {"p50_ms": round(pct(ok, 50), 2), "p99_ms": round(pct(ok, 99), 2), "ok": len(ok),
                     "errors": len(runs) - len(ok),
                     # Where the time goes: the service's own per-stage timings (took_ms), p50 and p99.
                     "took_ms": {stage: [round(pct([r["took"][stage] for r in runs if stage in r["took"]], q), 2)
                                         for q in (50, 99)] for stage in stages}}
    return out


def _caller(http: urllib3.PoolManager, url: str, texts: list[str], ranking: dict[str, Any]) -> Any:
    def call(i: int) -> dict[str, Any]:
        body = orjson.dumps({"text": texts[i % len(texts)], "size": 10, "ranking": ranking})
        began = time.perf_counter()
        try:
            response = http.request("POST", url, body=body, timeout=60.0)
        except urllib3.exceptions.HTTPError:
            return {"ms": (time.perf_counter() - began) * 1000, "status": 0, "took": {}}
        elapsed = (time.perf_counter() - began) * 1000
        took = orjson.loads(response.data).get("took_ms", {}) if response.status == 200 else {}
        return {"ms": elapsed, "status": response.status,
                "took": {k: float(v) for k, v in took.items() if isinstance(v, (int, float))}}
    return call


def query_texts(catalog: Path, limit: int) -> list[str]:
    """Shopper-phrased test queries first (docs/relevance/shopper/test.jsonl), then the catalog's dev queries."""
    texts: list[str] = []
    for path in (PROJECT_ROOT / "docs/relevance/shopper/test.jsonl", catalog / "dev_queries.jsonl"):
        if path.is_file():
            texts += [json.loads(line)["query"] for line in path.open() if line.strip()]
    unique = list(dict.fromkeys(texts))
    if not unique:
        raise SystemExit("no query texts found")
    return unique[:limit]


def run_variant(es: Any, es_url: str, args: argparse.Namespace, base: BaseCatalog, encoder: Encoder,
                query_vectors: np.ndarray, texts: list[str], config: SynthesisConfig) -> dict[str, Any]:
    """One quantisation, grown through every stage; the index is deleted first (a re-run starts clean)."""
    alias = f"scale-{args.index_type}"
    name = f"{alias}-{args.shards}s"
    es.options(ignore_status=404).indices.delete(index=name)
    spec = spec_for(es, encoder, VectorConfig(index_type=args.index_type), None, "benchmarks/scale.py",
                    settings=IndexSettings(shards=args.shards, replicas=args.replicas))
    create_index(es, alias, spec, name=name)
    es.indices.put_alias(index=name, name=alias)
    store = VectorStore(max(args.sizes), base.dim)
    stages = []
    for size in args.sizes:
        print(f"{args.index_type}: loading to {size:,}", flush=True)
        stage: dict[str, Any] = {"size": size, "build": load_stage(es, name, base, store, size, config,
                                                                   encoder.identity, args.chunk)}
        stage["with_image"] = int(store.has_image[:size].sum())
        stage["index"] = index_facts(es, name)
        stage["memory"] = node_memory(es)
        print(f"  {json.dumps(stage['build'])}", flush=True)
        stage["recall"] = measure_recall(es, name, store, query_vectors, config, (0.0, args.oversample))
        print(f"  recall {json.dumps(stage['recall'])}", flush=True)
        url, service = serve_gunicorn(es_url, alias, args.model, args.workers, ready_tries=480)
        try:
            stage["latency"] = measure_latency(url, texts, args.oversample, args.qps, args.requests,
                                               args.client_threads)
            stage["service_memory"] = worker_memory(service.pid)
        finally:
            service.terminate()
            service.wait(timeout=60)
        print(f"  latency {json.dumps(stage['latency'])}", flush=True)
        stage["memory_after_queries"] = node_memory(es)
        stages.append(stage)
    if not args.keep:
        es.indices.delete(index=name)
    return {"index_type": args.index_type, "index": name, "stages": stages}


def boost_study(args: argparse.Namespace) -> None:
    """``--boost-study``: where the BM25 leg's time goes on a large index (see BOOST_STUDY)."""
    es_url = os.environ.get("ES_URL", "http://127.0.0.1:9200")
    es = Settings.load(es_hosts=es_url, request_timeout_s=120).es_client()
    catalog = default_catalog_dir()
    if catalog is None:
        raise SystemExit("shared catalog not found; set MMSEARCH_CATALOG_DIR")
    url, service = serve_gunicorn(es_url, args.boost_study, args.model, args.workers, ready_tries=480)
    try:
        latency = measure_latency(url, query_texts(catalog, 400), 0.0, args.qps, args.requests, args.client_threads,
                                  {**SCENARIOS, **BOOST_STUDY})
    finally:
        service.terminate()
        service.wait(timeout=60)
    result = {"alias": args.boost_study, "docs": int(es.count(index=args.boost_study)["count"]),
              "started_load": os.getloadavg(), "code": code_state(), "latency": latency}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(latency, indent=1))


def conditions(es: Any, args: argparse.Namespace, base: BaseCatalog, config: SynthesisConfig) -> dict[str, Any]:
    # _nodes, not GET /: the integ-test distribution has no rest-root module (GET / is a 405 there).
    nodes = es.nodes.info(metric="process")["nodes"]
    return {"started": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "host": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": os.getloadavg()},
            "elasticsearch": sorted({n["version"] for n in nodes.values()}), "nodes": len(nodes),
            "shards": args.shards, "replicas": args.replicas, "base_products": len(base.sources),
            "base_with_image": int(base.has_image.sum()), "dim": base.dim, "synthesis": vars(config),
            "model": str(args.model), "service_workers": args.workers, "code": code_state()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-alias", default="products", help="full build of the real catalog to grow from")
    parser.add_argument("--base-es-url", help="the cluster holding --base-alias, when it is not ES_URL's")
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / ".state/models/demo-fashion-products",
                        help="the model package that built --base-alias (it encodes the queries)")
    parser.add_argument("--sizes", type=lambda s: sorted(int(x) for x in s.split(",")),
                        default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--index-types", default="int8_hnsw,bbq_hnsw")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=0)
    parser.add_argument("--oversample", type=float, default=3.0, help="rescore_vector oversample when on")
    parser.add_argument("--noise", type=float, default=SynthesisConfig.noise)
    parser.add_argument("--seed", type=int, default=SynthesisConfig.seed)
    parser.add_argument("--chunk", type=int, default=500, help="bulk chunk size")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--qps", type=float, default=4.0, help="requests/s of each /search scenario")
    parser.add_argument("--requests", type=int, default=200, help="per scenario and stage")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the service")
    parser.add_argument("--client-threads", type=int, default=32, help="load-generator threads (max in flight)")
    parser.add_argument("--keep", action="store_true", help="keep the scale indices at the end")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    parser.add_argument("--write-doc", action="store_true", help="fill the Scale section of docs/benchmarks.md")
    parser.add_argument("--boost-study", metavar="ALIAS",
                        help="only measure /search on this existing scale alias, the default legs against the "
                             "same without the parse's lexical boosts (BOOST_STUDY); no loading")
    parser.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                        help="only write the Scale section from earlier --out files (one block per file)")
    args = parser.parse_args()
    if args.render:
        blocks = [SECTION_INTRO] + [render(json.loads(path.read_text()), path) for path in args.render]
        write_doc_section(PROJECT_ROOT / "docs" / "benchmarks.md", "\n\n".join(blocks), heading="Scale")
        return
    if args.out is None:
        parser.error("--out is required (or --render)")
    if args.boost_study:
        boost_study(args)
        return
    es_url = os.environ.get("ES_URL", "http://127.0.0.1:9200")
    es = Settings.load(es_hosts=es_url, request_timeout_s=120).es_client()
    catalog = default_catalog_dir()
    if catalog is None:
        raise SystemExit("shared catalog not found; set MMSEARCH_CATALOG_DIR")
    config = SynthesisConfig(seed=args.seed, noise=args.noise)
    base_es = Settings.load(es_hosts=args.base_es_url, request_timeout_s=120).es_client() if args.base_es_url else es
    base = read_base(base_es, args.base_alias)
    encoder = Encoder.load(args.model)
    if index_meta(base_es, alias_targets(base_es, args.base_alias)[0]).get("model_identity") != encoder.identity:
        raise SystemExit(f"{args.base_alias} was not built with {args.model}")
    texts = query_texts(catalog, max(args.recall_queries, 400))
    query_vectors = encoder.encode_texts(texts[: args.recall_queries]).astype(np.float32)
    results = {"conditions": conditions(es, args, base, config), "variants": []}
    for index_type in args.index_types.split(","):
        args.index_type = index_type
        results["variants"].append(run_variant(es, es_url, args, base, encoder, query_vectors, texts, config))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    results["conditions"]["finished"] = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    if args.write_doc:
        write_doc_section(PROJECT_ROOT / "docs" / "benchmarks.md", SECTION_INTRO + "\n\n" + render(results, args.out),
                          heading="Scale")


SECTION_INTRO = """The real catalog grown to 100k-1M synthetic products (`indexer.synthetic`) on one node. What the
figures mean, the sizing formulas they confirm, the boost study behind the hybrid p99 at 1M and the
shard guidance are in docs/scaling.md."""


def _mb(value: Any) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def resident_bytes(off_heap: dict[str, int], index_type: str) -> int:
    """Bytes kNN needs in the page cache: the graph plus the quantised vectors (bbq: veb, int8: veq)."""
    return off_heap.get("vex", 0) + off_heap.get("veb" if index_type.startswith("bbq") else "veq", 0)


def render(results: dict[str, Any], source: Path) -> str:
    """The Scale section of docs/benchmarks.md from one run's JSON."""
    c = results["conditions"]
    types = ",".join(v["index_type"] for v in results["variants"])
    sizes = ",".join(str(st["size"]) for st in results["variants"][0]["stages"])
    try:
        where = source.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        where = source
    lines = [f"`python benchmarks/scale.py --index-types {types} --sizes {sizes} --shards {c['shards']} "
             f"--replicas {c['replicas']} --out {where}`"
             f" ({c['started']}, {c['host']['cpus']} CPUs, load {c['host']['load_before'][0]:.1f} before;"
             f" Elasticsearch {c['elasticsearch']}, {c['nodes']} node(s), {c['shards']} shard(s), {c['replicas']} replica(s);"
             f" {c['base_products']:,} real products ({c['base_with_image']:,} with a photo, d={c['dim']}) grown with"
             f" noise {c['synthesis']['noise']}; service: `mmsearch serve --workers {c['service_workers']}`)."
             " Raw figures in the JSON.", "",
             "| index | products | with photo | load docs/s | force merge s | store MB | kNN resident MB (graph+quantised) "
             "| float vectors MB | ES heap used / max MB | ES RSS MB (after queries) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for v in results["variants"]:
        for st in v["stages"]:
            # After the stage's queries: RSS then counts the index files the searches mapped in.
            off, nodes = st["index"]["off_heap"], st["memory_after_queries"]["nodes"]
            node = {key: None if any(n[key] is None for n in nodes) else sum(n[key] for n in nodes)
                    for key in ("heap_used", "heap_max", "rss")}  # a cluster: the sum over its nodes
            lines.append(f"| {v['index_type']} | {st['size']:,} | {st['with_image']:,} | {st['build']['docs_per_s']:,.0f} "
                         f"| {st['build']['force_merge_s']:,.0f} | {_mb(st['index']['store_bytes'])} "
                         f"| {_mb(resident_bytes(off, v['index_type']))} | {_mb(off.get('vec'))} "
                         f"| {_mb(node['heap_used'])} / {_mb(node['heap_max'])} | {_mb(node['rss'])} |")
    lines += ["", "Recall@10 of approximate kNN against brute force over every loaded vector (the engine's kNN body:"
              " k = depth 100, num_candidates 200; text queries encoded by the text tower; the image field is the"
              " text->image leg), rescoring off / on:", "",
              "| index | products | text_vector | text_vector + rescore | image_vector | image_vector + rescore |",
              "|---|---|---|---|---|---|"]
    for v in results["variants"]:
        for st in v["stages"]:
            r = list(st["recall"].values())
            lines.append(f"| {v['index_type']} | {st['size']:,} | " + " | ".join(f"{x['recall_at_10']:.3f}" for x in r) + " |")
    names = [n for n in next(iter(results["variants"]))["stages"][0]["latency"] if isinstance(
        next(iter(results["variants"]))["stages"][0]["latency"][n], dict)]
    lines += ["", f"`POST /search` latency, ms, p50 / p99 (every scenario at {results['variants'][0]['stages'][0]['latency']['qps_per_scenario']:g}"
              " requests/s, interleaved, open loop; hybrid = the default ranking;"
              " plain = rescoring off (`rescore_oversample: 0`), +rescore3 = oversample 3, which is bbq_hnsw's own default):", "",
              "| index | products | " + " | ".join(names) + " | errors |", "|---|---|" + "---|" * (len(names) + 1)]
    for v in results["variants"]:
        for st in v["stages"]:
            lat = st["latency"]
            lines.append(f"| {v['index_type']} | {st['size']:,} | " + " | ".join(
                f"{lat[n]['p50_ms']:.1f} / {lat[n]['p99_ms']:.1f}" for n in names)
                + f" | {sum(lat[n]['errors'] for n in names)} |")
    lines += ["", "Where the hybrid time goes (the service's own `took_ms`, p50 / p99 per stage; `es` includes the"
              " page fetch):", "", "| index | products | encode | es | fetch | fuse | total |", "|---|---|---|---|---|---|---|"]
    for v in results["variants"]:
        for st in v["stages"]:
            took = st["latency"]["hybrid"]["took_ms"]
            lines.append(f"| {v['index_type']} | {st['size']:,} | " + " | ".join(
                "{:.1f} / {:.1f}".format(*took[k]) if k in took else "-"
                for k in ("encode", "es", "fetch", "fuse", "total")) + " |")
    workers = [w for v in results["variants"] for st in v["stages"] for w in st["service_memory"]["workers"] if w]
    if workers:
        lines += ["", f"Query-service worker memory after each stage's traffic: RSS {_mb(min(w['rss'] for w in workers))}-"
                  f"{_mb(max(w['rss'] for w in workers))} MB, PSS {_mb(min(w['pss'] for w in workers))}-"
                  f"{_mb(max(w['pss'] for w in workers))} MB per worker ({len(workers)} readings)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

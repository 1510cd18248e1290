"""``mmsearch demo``: the README's main command, end to end and idempotent.

1. start (or reuse) the local Elasticsearch node;
2. pick the catalog: the shared fashion catalog if present, else a generated sample;
3. train the aligned two-tower model (or reuse the package built for this catalog);
4. build a versioned index behind the alias and swap it in (skipped when the alias
   already serves this model with every product);
5. show a BM25 search and a hybrid search straight from Elasticsearch;
6. serve the query service: print the search page's URL first, then example requests.

Every step shells out to the same ``mmsearch`` subcommands a user would run, so the
demo exercises the real CLI and prints what it runs.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from indexer.catalog import (CATALOG_HELP, PRODUCTS_FILE, CatalogLocation, count_records, iter_product_records,
                             resolve_catalog)
from mmsearch.config import Settings, default_catalog_dir
from mmsearch.exceptions import MMSearchError

DEMO_ALIAS = "products"


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run the whole stack locally: ES, model, index, query service",
                                 description="Run the whole stack locally. Catalog: --catalog, else the shared "
                                             "fashion catalog (MMSEARCH_CATALOG_DIR, else "
                                             "../shared/data/fashion-products), else a generated sample.")
    # --catalog-dir: the option's earlier name, kept so existing invocations still work.
    demo.add_argument("--catalog", "--catalog-dir", dest="catalog", type=Path, help=CATALOG_HELP)
    demo.add_argument("--sample", action="store_true", help="use the generated synthetic catalog")
    demo.add_argument("--es-port", type=int, default=9200, help="port of the local node on its first start")
    demo.add_argument("--es-url", help="use this running cluster instead of the local node")
    demo.add_argument("--port", type=int, default=8080, help="query service port")
    demo.add_argument("--model-dir", type=Path, help="use this model package instead of training one")
    demo.add_argument("--epochs", type=int, help="training epochs (default: the trainer's)")
    demo.add_argument("--no-serve", action="store_true", help="stop after indexing and the example searches")
    demo.set_defaults(handler=run_demo)


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _mmsearch(*args: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "mmsearch.cli", *args]
    print("$ mmsearch " + " ".join(shlex.quote(a) for a in args), flush=True)
    proc = subprocess.run(command, env=env)
    if proc.returncode != 0:
        raise MMSearchError("demo step failed", command="mmsearch " + " ".join(args), exit_code=proc.returncode)


def choose_catalog(explicit: Path | None, sample: bool, state_dir: Path) -> CatalogLocation:
    if explicit is not None:
        return resolve_catalog(explicit)
    shared = None if sample else default_catalog_dir()
    if shared is not None:
        return resolve_catalog(shared)
    from mmsearch.sample_catalog import generate

    target = state_dir / "sample-catalog"
    if not (target / PRODUCTS_FILE).is_file():
        print(f"no shared catalog found; generating a synthetic one in {target}")
        generate(target)
    return resolve_catalog(target)


def _alias_is_current(settings: Settings, identity: str, expected_docs: int) -> bool:
    """The alias already serves this model with every product: building again would change nothing."""
    es = settings.es_client()
    if not es.indices.exists_alias(name=settings.products_alias):
        return False
    index = next(iter(es.indices.get_alias(name=settings.products_alias).body))
    meta = es.indices.get_mapping(index=index).body[index]["mappings"].get("_meta", {})
    return meta.get("model_identity") == identity and es.count(index=index)["count"] == expected_docs


def _example_searches(settings: Settings, encoder: Any, query: str) -> None:
    es = settings.es_client()
    alias = settings.products_alias
    bm25 = es.search(index=alias, size=5, source=["title", "base_colour", "article_type"],
                     query={"multi_match": {"query": query, "fields": ["title^3", "category_path^2", "search_text"]}})
    _say(f"BM25 top 5 for {query!r} (straight from Elasticsearch)")
    for hit in bm25["hits"]["hits"]:
        print(f"  {hit['_score']:7.3f}  {hit['_id']:>6}  {hit['_source'].get('title')}")
    vector = encoder.encode_texts([query])[0].tolist()
    knn = es.search(index=alias, size=5, source=["title"], knn={"field": "image_vector", "query_vector": vector,
                                                                "k": 5, "num_candidates": 100})
    _say(f"text→image kNN top 5 for {query!r} (the photo matches the words)")
    for hit in knn["hits"]["hits"]:
        print(f"  {hit['_score']:7.3f}  {hit['_id']:>6}  {hit['_source'].get('title')}")


def print_examples(url: str, image_root: Path, admin_token: str) -> None:
    images = sorted((image_root / "images").glob("*"))[:1]
    image = images[0] if images else Path("photo.jpg")
    print(f"""
== Open {url}/ in a browser: the search page (ranking workbench {url}/compare, ops {url}/ops)
  ops page admin token (MMSEARCH_ADMIN_TOKEN): {admin_token}

== Query service at {url}
  curl -s '{url}/search?q=red+summer+dress&size=5' | python -m json.tool
  curl -s -X POST {url}/search -H 'Content-Type: application/json' \\
       -d '{{"text": "navy blue shirt", "filters": {{"gender": ["Men"]}}, "size": 5}}'
  curl -s -X POST {url}/search -F image=@{image} -F size=5            # search by photo
  curl -s -X POST {url}/search -F image=@{image} -F text='but in black' -F size=5   # photo + text
  curl -s -X POST '{url}/{DEMO_ALIAS}/_search' -H 'Content-Type: application/json' \\
       -d '{{"query": {{"match": {{"title": "running shoes"}}}}}}'   # drop-in ES proxy
  curl -s {url}/readyz ; curl -s {url}/metrics | head
""", flush=True)


def run_demo(args: argparse.Namespace) -> int:
    from mmsearch.esnode import LocalNode, NodeConfig

    if not args.no_serve:
        print(f"The search page will be at http://127.0.0.1:{args.port}/ once the demo is up.", flush=True)
    _say("1. Elasticsearch")
    if args.es_url:
        es_url = args.es_url
        print(f"using the cluster at {es_url}")
    else:
        node = LocalNode(NodeConfig(name="demo", port=args.es_port)).start()
        es_url = node.url
        print(f"{'reusing' if node.reused else 'started'} local node at {es_url} (health {node.health})")
    settings = Settings.load(es_hosts=(es_url,), products_alias=DEMO_ALIAS)
    env = {**os.environ, "ES_URL": es_url, "MMSEARCH_ALIAS": DEMO_ALIAS}

    _say("2. catalog")
    catalog = choose_catalog(args.catalog, args.sample, settings.state_dir)
    counted = count_records(catalog.config())
    n_products = counted if counted is not None else sum(1 for _ in iter_product_records(catalog))
    print(f"{catalog.source} ({n_products} products)")

    _say("3. aligned text/image model")
    model_dir = args.model_dir or settings.state_dir / "models" / f"demo-{catalog.name}"
    if (model_dir / "manifest.json").is_file():
        print(f"reusing model package {model_dir}")
    else:
        train = ["models", "train-alignment", "--catalog", str(catalog.source), "--out", str(model_dir)]
        if args.epochs:
            train += ["--epochs", str(args.epochs)]
        _mmsearch(*train, env=env)
    _mmsearch("models", "info", str(model_dir), env=env)
    env["MMSEARCH_MODEL_DIR"] = str(model_dir)

    _say("4. versioned index behind the alias")
    from onnx_models.runtime import Encoder

    encoder = Encoder.load(model_dir)
    if _alias_is_current(settings, encoder.identity, n_products):
        print(f"alias {DEMO_ALIAS!r} already serves this model with all {n_products} products")
    else:
        _mmsearch("index", "build", "--catalog", str(catalog.products_file), "--model", str(model_dir),
                  "--swap", env=env)
    _mmsearch("index", "status", env=env)

    _example_searches(settings, encoder, "navy blue shirt")
    if args.no_serve:
        return 0

    _say("6. query service (Ctrl-C stops it; the node keeps running: `mmsearch node stop --name demo`)")
    # The pages show the catalog's photos from this directory; the ops page needs an admin token.
    env["MMSEARCH_IMAGE_ROOT"] = str(catalog.root_dir)
    env.setdefault("MMSEARCH_ADMIN_TOKEN", secrets.token_urlsafe(18))
    print_examples(f"http://127.0.0.1:{args.port}", catalog.root_dir, env["MMSEARCH_ADMIN_TOKEN"])
    os.execvpe(sys.executable, [sys.executable, "-m", "mmsearch.cli", "serve", "--port", str(args.port)], env)
    return 0  # not reached



"""``mmsearch index ...``: create, build, validate, swap, rollback, status, prune, enrich.

Thin argument plumbing only; every command calls one function of
``indexer.lifecycle`` / ``indexer.enrich`` and prints its JSON result.
Errors are MMSearchError subclasses, printed by ``mmsearch.cli.main``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmsearch.exceptions import ConfigError


def _settings(args: argparse.Namespace) -> Any:
    from mmsearch.config import Settings

    return Settings.load(config_file=getattr(args, "config", None), products_alias=getattr(args, "alias", None),
                         model_dir=getattr(args, "model", None))


def _model_dir(settings: Any) -> Path:
    if settings.model_dir is None:
        raise ConfigError("no model: pass --model DIR or set MMSEARCH_MODEL_DIR", setting="model_dir")
    return Path(settings.model_dir)


def _load_encoder(settings: Any, batch_size: int) -> Any:
    from onnx_models.runtime import Encoder

    # One batch size for both: the pipeline's batches reach onnxruntime whole instead of being cut
    # into the encoder's default 32 (what a GPU wants larger; docs/gpu.md).
    return Encoder.load(_model_dir(settings), batch_size=batch_size)


def _model_facts(settings: Any) -> Any:
    """Name/dim/identity from the manifest alone: creating or validating needs no ONNX session."""
    from indexer.lifecycle import model_identity_of
    from mappings import ModelFacts
    from onnx_models.manifest import read_manifest

    manifest, _ = read_manifest(_model_dir(settings), verify_files=False)
    return ModelFacts(identity=model_identity_of(settings.model_dir), name=str(manifest["name"]),
                      dim=int(manifest["dim"]))


def _loaded_identity(settings: Any) -> str | None:
    from indexer.lifecycle import model_identity_of

    return model_identity_of(settings.model_dir) if settings.model_dir is not None else None


def _vectors(args: argparse.Namespace) -> Any:
    from mappings import VectorConfig

    return VectorConfig(index_type=args.index_type, similarity=args.similarity, m=args.m,
                        ef_construction=args.ef_construction)


def _index_settings(args: argparse.Namespace) -> Any:
    from mappings import IndexSettings

    return IndexSettings(shards=args.shards, replicas=args.replicas)


def _part(args: argparse.Namespace) -> Any:
    from indexer.catalog import CatalogPart

    return CatalogPart.parse(args.shard) if args.shard else CatalogPart()


def _synonyms(args: argparse.Namespace) -> tuple[str, ...] | None:
    from mappings import load_synonyms

    return load_synonyms(args.synonyms) if args.synonyms else None


def _pipeline(args: argparse.Namespace) -> Any:
    import dataclasses

    from indexer.pipeline import PipelineConfig
    from mmsearch import retries

    outage = retries.BUILD_OUTAGE
    if args.outage_window is not None:
        if not 0 <= args.outage_window <= 86_400:
            raise ConfigError("--outage-window must be in [0, 86400] seconds", value=args.outage_window)
        outage = dataclasses.replace(outage, window_s=args.outage_window)
    return PipelineConfig(batch_size=args.batch_size, decode_workers=args.decode_workers,
                          bulk_threads=args.bulk_threads, bulk_chunk_docs=args.bulk_chunk_docs,
                          progress=not args.no_progress, outage=outage)


def _catalog(args: argparse.Namespace) -> Any:
    from indexer.catalog import CatalogConfig, resolve_catalog

    # The shared rule (directory with products.jsonl, or a file); a directory's images resolve
    # in it, which is CatalogConfig's default root (the products file's directory).
    path = resolve_catalog(args.catalog, fmt=args.format).products_file if args.catalog is not None else None
    overrides = {"path": path, "format": args.format, "image_root": args.image_root,
                 "allow_url_fetch": True if args.allow_url_fetch else None}
    if args.catalog_config:
        return CatalogConfig.from_file(args.catalog_config, **overrides)
    if args.catalog is None:
        raise ConfigError("give --catalog PATH (or --catalog-config FILE with a path)", setting="catalog")
    return CatalogConfig(**{k: v for k, v in overrides.items() if v is not None})


def _print(data: Any) -> None:
    from mmsearch.cli import print_json

    print_json(data)


# --- handlers --------------------------------------------------------------------


def _run_create(args: argparse.Namespace) -> int:
    from indexer.lifecycle import create_index, spec_for

    settings = _settings(args)
    es = settings.es_client()
    spec = spec_for(es, _model_facts(settings), _vectors(args), _synonyms(args), "create",
                    settings=_index_settings(args))
    _print({"index": create_index(es, settings.products_alias, spec), "analyzer": spec.analysis.name})
    return 0


def _run_build(args: argparse.Namespace) -> int:
    from indexer.lifecycle import build, swap, validate
    from mappings import ModelFacts

    settings = _settings(args)
    part = _part(args)
    if args.swap and not part.whole:
        raise ConfigError("--swap needs the whole catalog in the index: swap after the last part "
                          "(`mmsearch index swap --index INDEX`)", setting="swap")
    index_settings = _index_settings(args)
    es = settings.es_client()
    catalog = _catalog(args)
    encoder = _load_encoder(settings, args.batch_size)
    summary = build(es, encoder, catalog, alias=settings.products_alias, state_dir=settings.state_dir,
                    vectors=_vectors(args), synonyms=_synonyms(args), pipeline=_pipeline(args),
                    resume=args.resume or args.into, dead_letter_path=args.dead_letter,
                    force_merge=not args.no_force_merge, settings=index_settings, part=part)
    result: dict[str, Any] = {"summary": summary}
    if args.swap:
        report = validate(es, summary["index"], catalog=catalog, model=ModelFacts.from_encoder(encoder))
        result["validation"] = report
        if not report["ok"]:
            _print(result)
            raise ConfigError("build did not validate; alias not swapped", index=summary["index"])
        result["swap"] = swap(es, settings.products_alias, summary["index"], loaded_identity=encoder.identity)
    _print(result)
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    from indexer.lifecycle import alias_targets, validate

    settings = _settings(args)
    es = settings.es_client()
    index = args.index or _single_target(alias_targets(es, settings.products_alias), settings.products_alias)
    model = _model_facts(settings) if settings.model_dir is not None else None
    catalog = _catalog(args) if (args.catalog or args.catalog_config) else None
    report = validate(es, index, catalog=catalog, expected_docs=args.expected_docs, model=model,
                      min_image_coverage=args.min_image_coverage)
    _print(report)
    return 0 if report["ok"] else 1


def _single_target(targets: list[str], alias: str) -> str:
    if len(targets) != 1:
        raise ConfigError("give --index: the alias does not point at exactly one index", alias=alias,
                          targets=targets)
    return targets[0]


def _run_swap(args: argparse.Namespace) -> int:
    from indexer.lifecycle import swap

    settings = _settings(args)
    _print(swap(settings.es_client(), settings.products_alias, args.index, loaded_identity=_loaded_identity(settings),
                force=args.force))
    return 0


def _run_rollback(args: argparse.Namespace) -> int:
    from indexer.lifecycle import rollback

    settings = _settings(args)
    _print(rollback(settings.es_client(), settings.products_alias, loaded_identity=_loaded_identity(settings),
                    to=args.to, force=args.force))
    return 0


def _run_status(args: argparse.Namespace) -> int:
    from indexer.lifecycle import status

    settings = _settings(args)
    _print(status(settings.es_client(), settings.products_alias))
    return 0


def _run_prune(args: argparse.Namespace) -> int:
    from indexer.lifecycle import prune

    settings = _settings(args)
    _print(prune(settings.es_client(), settings.products_alias, args.keep, dry_run=args.dry_run))
    return 0


def _run_enrich(args: argparse.Namespace) -> int:
    from indexer.enrich import EnrichConfig, enrich

    settings = _settings(args)
    config = EnrichConfig(source_index=args.source, alias=args.alias,
                          text_fields=tuple(f.strip() for f in (args.text_fields or "").split(",")),
                          image_field=args.image_field, image_root=args.image_root,
                          allow_url_fetch=args.allow_url_fetch, replace_legacy=args.replace_legacy,
                          switch=not args.no_switch)
    encoder = _load_encoder(settings, args.batch_size)
    _print(enrich(settings.es_client(), encoder, config, state_dir=settings.state_dir, vectors=_vectors(args),
                  pipeline=_pipeline(args), loaded_identity=encoder.identity, force=args.force))
    return 0


# --- parser ----------------------------------------------------------------------


def _add_common(cmd: argparse.ArgumentParser, model: bool = False) -> None:
    cmd.add_argument("--alias", help="products alias (default: settings products_alias)")
    if model:
        cmd.add_argument("--model", type=Path, help="model package dir (default: MMSEARCH_MODEL_DIR)")


def _add_vectors(cmd: argparse.ArgumentParser) -> None:
    from mappings.loader import FLAT_TYPES, HNSW_TYPES, SIMILARITIES

    cmd.add_argument("--index-type", default="int8_hnsw", choices=HNSW_TYPES + FLAT_TYPES,
                     help="dense_vector index_options type")
    cmd.add_argument("--similarity", default="cosine", choices=SIMILARITIES)
    cmd.add_argument("--m", type=int, default=16, help="HNSW graph degree")
    cmd.add_argument("--ef-construction", type=int, default=100, help="HNSW build-time candidate list")


def _add_index_settings(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--shards", type=int, metavar="N",
                     help="primary shards of the new index, 1..1024 (default: mappings/products.json, 1)")
    cmd.add_argument("--replicas", type=int, metavar="R",
                     help="replicas per shard, 0..16 (default: mappings/products.json, auto_expand_replicas 0-1: "
                          "none on one node, one when a second node joins)")


def _add_pipeline(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--batch-size", type=int, default=64,
                     help="products per encoder run (pipeline batch and onnxruntime batch; larger on a GPU)")
    cmd.add_argument("--decode-workers", type=int, default=2, help="image load/decode threads")
    cmd.add_argument("--bulk-threads", type=int, default=1, help="concurrent bulk senders")
    cmd.add_argument("--bulk-chunk-docs", type=int, default=256)
    cmd.add_argument("--outage-window", type=float, metavar="SECONDS",
                     help="how long to ride out an unreachable Elasticsearch before stopping with a --resume hint "
                          "(default: mmsearch.retries.BUILD_OUTAGE, 120 s)")
    cmd.add_argument("--no-progress", action="store_true")


def _add_catalog(cmd: argparse.ArgumentParser, required: bool = False) -> None:
    from indexer.catalog import CATALOG_HELP

    cmd.add_argument("--catalog", type=Path, required=False, help=CATALOG_HELP)
    cmd.add_argument("--catalog-config", type=Path, help="JSON/YAML field mapping (see docs/indexing.md)")
    cmd.add_argument("--format", choices=("jsonl", "csv", "parquet"))
    cmd.add_argument("--image-root", type=Path,
                     help="directory relative image paths resolve in (default: the catalog directory, "
                          "or the catalog file's directory)")
    cmd.add_argument("--allow-url-fetch", action="store_true", help="fetch http(s) image URLs (SSRF-guarded)")


def register(subparsers: Any) -> None:
    index = subparsers.add_parser("index", help="build and manage versioned product indices behind an alias")
    sub = index.add_subparsers(dest="index_command", required=True)

    cmd = sub.add_parser("create", help="create an empty versioned index")
    _add_common(cmd, model=True)
    _add_vectors(cmd)
    _add_index_settings(cmd)
    cmd.add_argument("--synonyms", help="'default' or a synonyms file (needs analysis-common)")
    cmd.set_defaults(handler=_run_create)

    cmd = sub.add_parser("build", help="index a catalog into a new versioned index (or --resume one)")
    _add_common(cmd, model=True)
    _add_catalog(cmd)
    _add_vectors(cmd)
    _add_index_settings(cmd)
    _add_pipeline(cmd)
    cmd.add_argument("--synonyms", help="'default' or a synonyms file (needs analysis-common)")
    target = cmd.add_mutually_exclusive_group()
    target.add_argument("--resume", metavar="INDEX", help="continue an interrupted build into INDEX")
    target.add_argument("--into", metavar="INDEX",
                        help="load into an existing INDEX (from `index create` or another part); products already "
                             "there with the same content are skipped, so rerunning a part resumes it")
    cmd.add_argument("--shard", metavar="I/N",
                     help="index only part I of N of the catalog (1-based; split by a stable hash of the product "
                          "id), so N processes can load one catalog into one --into INDEX at once")
    cmd.add_argument("--dead-letter", type=Path, help="dead-letter JSONL (default: <state>/deadletter/<index>.jsonl)")
    cmd.add_argument("--swap", action="store_true", help="validate, then point the alias at the new index")
    cmd.add_argument("--no-force-merge", action="store_true",
                     help="keep the segments as loaded (default: merge to one segment; kNN searches every segment)")
    cmd.set_defaults(handler=_run_build)

    cmd = sub.add_parser("validate", help="doc count vs catalog, vector coverage, mapping vs model")
    _add_common(cmd, model=True)
    _add_catalog(cmd)
    cmd.add_argument("--index", help="index to check (default: the alias target)")
    cmd.add_argument("--expected-docs", type=int, help="expected doc count when no catalog is given")
    cmd.add_argument("--min-image-coverage", type=float, default=0.9)
    cmd.set_defaults(handler=_run_validate)

    cmd = sub.add_parser("swap", help="point the alias at INDEX (one atomic _aliases call)")
    _add_common(cmd, model=True)
    cmd.add_argument("--index", required=True)
    cmd.add_argument("--force", action="store_true", help="swap even if the model identity differs")
    cmd.set_defaults(handler=_run_swap)

    cmd = sub.add_parser("rollback", help="point the alias back at the previous version")
    _add_common(cmd, model=True)
    cmd.add_argument("--to", help="explicit index to roll back to")
    cmd.add_argument("--force", action="store_true")
    cmd.set_defaults(handler=_run_rollback)

    cmd = sub.add_parser("status", help="versions, doc counts, vector coverage, model, size, aliases")
    _add_common(cmd)
    cmd.set_defaults(handler=_run_status)

    cmd = sub.add_parser("prune", help="delete old versions, keeping the N newest and every aliased index")
    _add_common(cmd)
    cmd.add_argument("--keep", type=int, required=True)
    cmd.add_argument("--dry-run", action="store_true")
    cmd.set_defaults(handler=_run_prune)

    cmd = sub.add_parser("enrich", help="copy a legacy keyword index into a hybrid one and switch the app's name")
    cmd.add_argument("--from", dest="source", required=True, help="existing keyword index")
    cmd.add_argument("--alias", help="name the application queries (default: the legacy index's alias)")
    cmd.add_argument("--model", type=Path)
    cmd.add_argument("--text-fields", help="comma-separated fields to embed (default: the model's text template)")
    cmd.add_argument("--image-field", help="field holding an image path / base64 / URL")
    cmd.add_argument("--image-root", type=Path)
    cmd.add_argument("--allow-url-fetch", action="store_true")
    cmd.add_argument("--replace-legacy", action="store_true",
                     help="after validation, delete the legacy index and alias its name to the new one")
    cmd.add_argument("--no-switch", action="store_true", help="build and validate only")
    cmd.add_argument("--force", action="store_true")
    _add_vectors(cmd)
    _add_pipeline(cmd)
    cmd.set_defaults(handler=_run_enrich)

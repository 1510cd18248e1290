"""``mmsearch eval ...``: judgments, offline evaluation, fusion tuning, A/B reports."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from indexer.catalog import (CATALOG_HELP, SkippedRecords, iter_jsonl_records, iter_product_records,
                             resolve_catalog)
from mmsearch.exceptions import ConfigError


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("eval", help="relevance: judgments, offline evaluation, tuning, A/B reports")
    sub = group.add_subparsers(dest="eval_command", required=True)

    judg = sub.add_parser("judgments", help="derive graded judgments from catalog attributes (README rule)")
    judg.add_argument("--catalog", type=Path, required=True, help=CATALOG_HELP)
    judg.add_argument("--queries", type=Path, help="queries JSONL with intents (default: dev_queries.jsonl in "
                                                   "the catalog directory; needed with a catalog file)")
    judg.add_argument("--out", type=Path, required=True)
    judg.set_defaults(handler=_judgments)

    shop = sub.add_parser("shopper-set", help="shopper-phrased tune/test query sets (held-out vocabulary) "
                                              "and composed photo+modifier sets")
    shop.add_argument("--catalog", type=Path, required=True, help=CATALOG_HELP)
    shop.add_argument("--out", type=Path, required=True, help="output directory (docs/relevance/shopper)")
    shop.add_argument("--seed", type=int, default=None, help="seed of the generator and the vocabulary split "
                                                            "(default: shopper_queries.DEFAULT_SEED)")
    shop.set_defaults(handler=_shopper_set)

    imp = sub.add_parser("import-csv", help="human judgments from CSV (qid,query,doc_id,grade)")
    imp.add_argument("csv", type=Path)
    imp.add_argument("--out", type=Path, required=True)
    imp.set_defaults(handler=_import_csv)

    for name, help_text, handler in (("run", "evaluate ranking variants against the live index", _run),
                                     ("tune", "cross-validated fusion tuning; writes the winner as a variant", _tune)):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--judgments", type=Path, required=True)
        cmd.add_argument("--alias", help="index alias (default: settings products_alias)")
        cmd.add_argument("--model", type=Path, help="model package (default: MMSEARCH_MODEL_DIR)")
        cmd.add_argument("--catalog", type=Path, help=CATALOG_HELP)  # where image judgments' photos are
        cmd.add_argument("--out", type=Path, required=True, help="output dir (run) or variant file (tune)")
        cmd.set_defaults(handler=handler)
        if name == "run":
            cmd.add_argument("--variants", type=Path, required=True)
            cmd.add_argument("--baseline", help="variant to compare against (default: the first)")
        else:
            cmd.add_argument("--folds", type=int, default=5)
            cmd.add_argument("--seed", type=int, default=0)
            cmd.add_argument("--report", type=Path, help="write the tuning summary JSON here")

    ada = sub.add_parser("tune-adaptive", help="fit an adaptive fusion policy on a tuning split, check it on a "
                                               "test split per query class; writes a ranking file")
    ada.add_argument("--tune", type=Path, required=True, help="tuning judgments (JSONL)")
    ada.add_argument("--test", type=Path, required=True, help="test judgments (JSONL): never used to fit")
    ada.add_argument("--alias", help="index alias (default: settings products_alias)")
    ada.add_argument("--model", type=Path, help="model package (default: MMSEARCH_MODEL_DIR)")
    ada.add_argument("--catalog", type=Path, help=CATALOG_HELP)
    ada.add_argument("--base", type=Path, help="ranking file whose default variant the policy starts from")
    ada.add_argument("--out", type=Path, required=True, help="ranking file to write (the policy as its default)")
    ada.add_argument("--report", type=Path, help="write the test-split report JSON here")
    ada.set_defaults(handler=_tune_adaptive)

    rep = sub.add_parser("ab-report", help="A/B or interleaving report from the events index")
    rep.add_argument("--experiment", type=Path, required=True, help="the experiment config file")
    rep.set_defaults(handler=_ab_report)


def _engine(args: argparse.Namespace) -> Any:
    from mmsearch.capabilities import detect_capabilities
    from mmsearch.config import Settings
    from onnx_models.runtime import Encoder
    from query_service.engine import SearchEngine

    settings = Settings.load(config_file=args.config, products_alias=args.alias,
                             model_dir=str(args.model) if args.model else None)
    if settings.model_dir is None:
        raise ConfigError("no model: pass --model or set MMSEARCH_MODEL_DIR", setting="model_dir")
    es = settings.es_client()
    return SearchEngine(es, Encoder.load(settings.model_dir), settings, detect_capabilities(es))


def _image_root(args: argparse.Namespace) -> Path | None:
    """Where image judgments' photos resolve: the catalog's image root (None without --catalog)."""
    return resolve_catalog(args.catalog).root_dir if args.catalog is not None else None


def _judgments(args: argparse.Namespace) -> int:
    from query_service.relevance.judgments import generate, write_jsonl

    location = resolve_catalog(args.catalog)
    queries_path = args.queries or location.require_dev_queries()
    # One reader and one bad-line rule for the catalog and its queries (skipped, counted, on stderr).
    skipped = SkippedRecords()
    products = list(iter_product_records(location, skipped))
    queries = list(iter_jsonl_records(queries_path, skipped))
    judged = generate(products, queries)
    write_jsonl(judged, args.out)
    print(json.dumps({"queries": len(judged), "judged_pairs": sum(len(j.grades) for j in judged),
                      "skipped_records": skipped.count, "out": str(args.out)}))
    return 0


#: docs/relevance/shopper/README.md, written with the sets so it always matches them.
_SHOPPER_README = """# Shopper-phrased relevance sets

Queries phrased as shoppers write them (synonyms, gender words, colour variants, plurals, typos,
word order, filler words), each with its intent `{{type, colour, gender}}` in catalog values so the
catalog README's grade rule judges it, and a `classes` list for per-class reports. Generated by
`query_service/relevance/shopper_queries.py` from the word lists in `shopper_words.py`; nothing
here is product data except the photo paths of the composed items.

Seed: `{seed}`. Regenerate (byte-identical for the same catalog and seed):

```
{command}
```

This README is written by that command too; edit the generator, not this file.

## Files
- `tune.jsonl`, `test.jsonl`: text queries `{{qid, query, intent, classes}}`.
- `composed_tune.jsonl`, `composed_test.jsonl`: a product photo and a modifier
  `{{qid, query, image, source_id, intent, classes}}`; the intent is the photo's type with the colour
  and/or gender the modifier names (else the photo's). The photo's own product is graded by the same
  rule: grade 1, not 2, when its colour differs from the one asked for.

Judge a set with the README rule and evaluate it (composed items need `--catalog` for the photos):

```
mmsearch eval judgments --catalog "$MMSEARCH_CATALOG_DIR" --queries docs/relevance/shopper/tune.jsonl \\
    --out judgments_tune.jsonl
mmsearch eval run --judgments judgments_tune.jsonl --variants VARIANTS --catalog "$MMSEARCH_CATALOG_DIR" \\
    --out OUT_DIR
```

`eval run` then reports NDCG@10 per class (mean and 95% bootstrap CI) beside the overall table.

## Tune/test: held-out vocabulary
Each of the {lists} word lists ({phrases} phrases: type synonyms, gender words, colour variants,
fillers, listed misspellings, modifier phrasings) is split into two disjoint halves by a seeded
hash (sort by sha256(seed, list, phrase), deal each to the emptier half; phrases that contain one
another as words share a half). The tune split uses only the first halves, the test split only the
second; catalog words (type names in either number, colour and gender values) are shared, and a
query in which a typo would expose another split's phrase is not generated. Intents may repeat
across splits; text queries and photos never do. Tune the query parser on `*tune.jsonl` only, and
never read the test half of the lists.

Only intents with at least {min_relevant} grade-2 products in the catalog are generated.

## Classes
`colour`/`no_colour` and `gender`/`no_gender` (intent colour/gender set or null), then the phrasing
features used: `synonym_type`, `gender_word`, `colour_variant`, `plural` (the type word's number
flipped from its listed form), `misspelling`, `word_order`, `filler`; composed items: `composed`,
`colour_change`, `gender_change`.

{table}
"""


def _shopper_set(args: argparse.Namespace) -> int:
    from query_service.relevance import shopper_queries

    location = resolve_catalog(args.catalog)
    seed = shopper_queries.DEFAULT_SEED if args.seed is None else args.seed
    skipped = SkippedRecords()
    products = list(iter_product_records(location, skipped))
    # A composed query's photo must exist, not only be named: the eval reads it from the image root.
    sets = shopper_queries.generate_sets(products, seed,
                                         image_ok=lambda image: (location.root_dir / image).is_file())
    # The command as written into the README: paths as given, so it reads the same on every machine.
    command = f"mmsearch eval shopper-set --catalog {args.catalog} --out {args.out} --seed {seed}"
    paths = shopper_queries.write_sets(sets, args.out)
    readme = _SHOPPER_README.format(seed=seed, command=command, lists=len(shopper_queries.word_lists()),
                                    phrases=sum(len(v) for v in shopper_queries.word_lists().values()),
                                    min_relevant=shopper_queries.MIN_RELEVANT,
                                    table="\n".join(shopper_queries.class_table_rows(sets)))
    (args.out / "README.md").write_text(readme, encoding="utf-8")
    paths["readme"] = str(args.out / "README.md")
    print(json.dumps({"seed": seed, "counts": {name: len(items) for name, items in sets.items()},
                      "skipped_records": skipped.count, "paths": paths}))
    return 0


def _import_csv(args: argparse.Namespace) -> int:
    from query_service.relevance.judgments import import_csv, write_jsonl

    judged = import_csv(args.csv)
    write_jsonl(judged, args.out)
    print(json.dumps({"queries": len(judged), "out": str(args.out)}))
    return 0


def _run(args: argparse.Namespace) -> int:
    from query_service.relevance import evaluate
    from query_service.relevance.judgments import read_jsonl

    judgments = read_jsonl(args.judgments)
    variants = evaluate.load_variants(args.variants)
    rankings = evaluate.run_variants(_engine(args), judgments, variants, _image_root(args))
    per_query = evaluate.score(rankings, judgments)
    # Per-class NDCG@10 appears in the outputs only when the judgments carry classes.
    summary = evaluate.summarize(per_query, args.baseline, classes={j.qid: j.classes for j in judgments})
    paths = evaluate.write_outputs(per_query, summary, args.out)
    print(evaluate.markdown_table(summary))
    print(json.dumps(paths))
    return 0


def colour_class(query: str | None, colours: set[str]) -> str:
    text = (query or "").lower()
    return "colour" if any(c in text for c in colours) else "no-colour"


def _tune(args: argparse.Namespace) -> int:
    from query_service.relevance import tuning
    from query_service.relevance.judgments import read_jsonl

    judgments = read_jsonl(args.judgments)
    _image_root(args)  # a wrong --catalog fails as in every command, although tuning runs the text legs only
    engine = _engine(args)
    cache = tuning.collect_legs(engine, judgments)
    configs = tuning.candidate_grid()
    matrix = tuning.score_matrix(configs, cache, judgments)
    colours = {str(j.intent.get("colour")).lower() for j in judgments if j.intent.get("colour")}
    classes = [colour_class(j.query, colours) for j in judgments]
    result = tuning.tune(matrix, configs, args.folds, args.seed, classes)
    variant = tuning.to_variant(result.best)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump({"variants": [variant]}, sort_keys=False))
    summary = {**result.summary(args.seed), "configs_searched": len(configs), "folds": args.folds,
               "queries": len(judgments), "variant_file": str(args.out),
               "vs_single_legs": tuning.compare_with_single_legs(matrix, configs, result.out_of_sample, args.seed)}
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def _ab_report(args: argparse.Namespace) -> int:
    from mmsearch.config import Settings
    from query_service.relevance.experiments import load_config
    from query_service.relevance.report import ab_report, interleaving_report
    from query_service.relevance.store import fetch_experiment_events

    config = load_config(args.experiment)
    settings = Settings.load(config_file=args.config)
    exposures, events = fetch_experiment_events(settings.es_client(), settings.events_index, config.id)
    report = interleaving_report(exposures, events) if config.mode == "interleave" else \
        ab_report(exposures, events, config.shares)
    print(json.dumps(report, indent=2, default=list))
    return 0


def _tune_adaptive(args: argparse.Namespace) -> int:
    from query_service.ranking import RankingConfig, load_service_ranking
    from query_service.relevance.adaptive_tuning import tune_and_test
    from query_service.relevance.judgments import read_jsonl

    base = load_service_ranking(args.base).default if args.base else RankingConfig()
    report = tune_and_test(_engine(args), read_jsonl(args.tune), read_jsonl(args.test), base, _image_root(args))
    variant = {**base.to_dict(), "name": "adaptive", "adaptive": report["policy"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump({"variants": [variant]}, sort_keys=False))
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"out": str(args.out), "test": report["test"].get("all")}, indent=2))
    return 0

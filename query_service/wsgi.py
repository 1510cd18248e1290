"""WSGI entry point for gunicorn: ``gunicorn 'query_service.wsgi:create_app()'``.

gunicorn calls the factory once in each worker after forking, so every worker
loads the ONNX model exactly once and owns its onnxruntime sessions (sessions
are not fork-safe to share).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from mmsearch.config import Settings
from query_service.app import create_app as _create_app
from query_service.jsonlog import configure_json_logging
from query_service.ranking import ServiceRanking, load_service_ranking


def serving_runtime_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """onnxruntime settings for a serving worker (the latency benchmark loads its raw encoder with these too).

    Spinning is off unless ``MMSEARCH_ORT_SPINNING=1``: after each run onnxruntime's threads
    spin-wait for more work, and in a query service the next work is Elasticsearch's, on the
    same cores. Measured through gunicorn (docs/benchmarks.md, "Query latency: what changed",
    four alternating runs): text+photo p50 43.9 / 43.8 -> 24.2 / 24.2 ms, hybrid text 13.8 / 13.4
    -> 13.0 / 12.5 ms, although the text encode itself is ~0.5 ms slower. Batch indexing keeps
    onnxruntime's default.
    """
    spinning = environ.get("MMSEARCH_ORT_SPINNING", "0").strip().lower() in ("1", "true", "yes", "on")
    return {"intra_op_threads": int(environ.get("MMSEARCH_ORT_THREADS", "0")) or None, "allow_spinning": spinning}


def create_app() -> Flask:
    configure_json_logging()
    settings = Settings.load()
    encoder = None
    if settings.model_dir is not None:
        from onnx_models.runtime import Encoder

        encoder = Encoder.load(Path(settings.model_dir), **serving_runtime_options(os.environ))
    experiments = event_logger = None
    if os.environ.get("MMSEARCH_EXPERIMENTS"):
        from query_service.relevance.events import EventLogger
        from query_service.relevance.experiments import ExperimentManager

        experiments = ExperimentManager(os.environ["MMSEARCH_EXPERIMENTS"])
        event_logger = EventLogger(settings.es_client(), settings.events_index,
                                   flush_interval_s=settings.events_flush_interval_s)
    service_ranking = load_service_ranking(settings.ranking_file) if settings.ranking_file else ServiceRanking()
    app = _create_app(settings, encoder=encoder, experiments=experiments, event_logger=event_logger,
                      default_ranking=service_ranking.default, proxy_options=dict(service_ranking.proxy))
    # The query parser's vocabulary (one terms aggregation) and ~150 type-name vectors: read here so
    # a worker's first shopper does not wait for them; an unreachable cluster leaves it to that query.
    app.extensions["mmsearch"].engine.warm_up()
    # What is loaded by now (model, tokenizer, Flask, the Elasticsearch client: ~77k objects)
    # lives as long as the worker. Frozen, it is out of the cyclic collector's sight: a full
    # collection, due every few hundred requests, took 22 ms with it and 0.15 ms without
    # (benchmarks/hot_path.py --only gc, docs/hot_path_gc.json).
    gc.collect()
    gc.freeze()
    return app

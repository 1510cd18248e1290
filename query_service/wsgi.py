"""WSGI entry point for gunicorn: ``gunicorn 'query_service.wsgi:create_app()'``.

gunicorn calls the factory once in each worker after forking, so every worker
loads the ONNX model exactly once and owns its onnxruntime sessions (sessions
are not fork-safe to share).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from mmsearch.config import Settings
from query_service.app import configure_json_logging
from query_service.app import create_app as _create_app


def create_app() -> Flask:
    configure_json_logging()
    settings = Settings.load()
    encoder = None
    if settings.model_dir is not None:
        from onnx_models.runtime import Encoder

        threads = int(os.environ.get("MMSEARCH_ORT_THREADS", "0")) or None
        encoder = Encoder.load(Path(settings.model_dir), intra_op_threads=threads)
    experiments = event_logger = None
    if os.environ.get("MMSEARCH_EXPERIMENTS"):
        from query_service.relevance.events import EventLogger
        from query_service.relevance.experiments import ExperimentManager

        experiments = ExperimentManager(os.environ["MMSEARCH_EXPERIMENTS"])
        event_logger = EventLogger(settings.es_client(), settings.events_index)
    return _create_app(settings, encoder=encoder, experiments=experiments, event_logger=event_logger)

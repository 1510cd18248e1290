"""The gunicorn entry point: what each worker does once, after the fork."""

from __future__ import annotations

import gc
import json

import pytest

from query_service import wsgi


def test_the_worker_freezes_what_it_loaded_out_of_the_collectors_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    # No model and an unreachable cluster: the app still builds (readiness reports them).
    monkeypatch.setenv("ES_URL", "http://127.0.0.1:9")
    for name in ("MMSEARCH_MODEL_DIR", "MMSEARCH_EXPERIMENTS", "MMSEARCH_RANKING", "MMSEARCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    gc.unfreeze()
    try:
        app = wsgi.create_app()
        assert gc.get_freeze_count() > 0
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


def test_gunicorns_own_lines_are_json(capsys: pytest.CaptureFixture[str]) -> None:
    from gunicorn.config import Config

    from query_service.jsonlog import GunicornJsonLogger

    config = Config()
    config.set("accesslog", "-")  # switched on (GUNICORN_CMD_ARGS), its lines are JSON too
    logger = GunicornJsonLogger(config)
    logger.info("Booting worker with pid: %s", 42)
    logger.access_log.info("GET /search 200")
    captured = capsys.readouterr()
    booted = json.loads(captured.err.strip().splitlines()[-1])
    assert booted["logger"] == "gunicorn.error" and booted["msg"] == "Booting worker with pid: 42"
    assert booted["level"] == "INFO" and isinstance(booted["ts"], float)
    assert json.loads(captured.out.strip().splitlines()[-1])["msg"] == "GET /search 200"

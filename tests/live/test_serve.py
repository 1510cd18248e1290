"""`mmsearch serve`: gunicorn workers load the model once each and answer like the in-process app."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_service_answers_and_logs_json(search_index: str, search_settings: Any, model_dir: Path,
                                                tmp_path: Path) -> None:
    port = _free_port()
    log_path = tmp_path / "serve.log"
    ranking = tmp_path / "ranking.yaml"
    ranking.write_text("name: from-ranking-file\nlegs: {bm25: 1.0, text_text: 1.0}\nproxy: off\n")
    env = {**os.environ, "ES_URL": search_settings.es_hosts[0], "MMSEARCH_ALIAS": search_settings.products_alias,
           "MMSEARCH_MODEL_DIR": str(model_dir)}
    with log_path.open("w") as log:
        service = subprocess.Popen([sys.executable, "-m", "mmsearch.cli", "serve", "--port", str(port),
                                    "--workers", "2", "--ranking", str(ranking)], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                ready = requests.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert service.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert ready.json()["checks"]["alias"] == search_index
        result = requests.get(f"{base}/search", params={"q": "red dress", "size": 3}, timeout=30).json()
        assert len(result["hits"]) == 3 and result["degraded"] == []
        # The ranking file reached every worker: its default ranking answers, and its proxy is off.
        assert result["variant"] == "from-ranking-file" and set(result["legs"]) == {"bm25", "text_text"}
        proxied = requests.post(f"{base}/{search_settings.products_alias}/_search",
                                json={"query": {"match": {"title": "red dress"}}, "size": 3}, timeout=30)
        assert proxied.status_code == 200 and proxied.headers["X-Hybrid"].startswith("passthrough")
        assert requests.post(f"{base}/search", json={"size": 3}, timeout=10).status_code == 400
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert "mmsearch_requests_total" in metrics
    finally:
        service.terminate()
        service.wait(timeout=30)
    # Every line is JSON: the app's (one per request, no second plain-text access-log line) and
    # gunicorn's own (start-up, worker boots, shutdown).
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert any(r.get("msg") == "request" and r.get("path") == "/search" and r.get("status") == 200 for r in records)
    assert sum(1 for r in records if r.get("msg") == "request" and r.get("path") == "/search") == 2
    booted = [r for r in records if r["logger"] == "gunicorn.error" and r["msg"].startswith("Booting worker")]
    assert len(booted) == 2  # one model load per worker, after the fork

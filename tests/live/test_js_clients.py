"""Real, official JavaScript clients pointed at the query service instead of Elasticsearch.

The Node tests live in ``tests/live/js`` (``*.test.mjs``, node's built-in test runner) with their
exact dependencies pinned in its ``package.json`` and ``package-lock.json``:

- ``elasticsearch-client.test.mjs``: ``@elastic/elasticsearch`` (search, count, msearch, scroll,
  a refused write), what a legacy Node app would send us;
- ``searchkit.test.mjs``: Searchkit, a frontend search adapter that speaks ``_msearch``.

This test installs them (``npm ci``) when ``node_modules`` is missing or older than the lock,
serves the app on a free loopback port over the shared ``qs-live`` product index, runs
``node --test`` with ``MMSEARCH_URL``/``MMSEARCH_ALIAS``/``ES_URL`` and shows node's output when it
fails. Missing node or npm is a failure, not a skip: CI must run these.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmsearch.config import Settings
from query_service.app import create_app
from tests.live.serving import served

JS_DIR = Path(__file__).parent / "js"
LOCK = JS_DIR / "package-lock.json"
# npm ci writes this copy of the lock into node_modules: equal content means installed from this lock.
INSTALLED_LOCK = JS_DIR / "node_modules" / ".package-lock.json"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: the JavaScript client tests need Node.js 20+ and npm")
    return path


def _installed_matches_lock() -> bool:
    """node_modules was installed by ``npm ci`` from the current lock (npm's hidden lock lists the same packages)."""
    import json

    if not INSTALLED_LOCK.exists():
        return False
    wanted = {k: v.get("version") for k, v in json.loads(LOCK.read_text())["packages"].items() if k}
    have = {k: v.get("version") for k, v in json.loads(INSTALLED_LOCK.read_text())["packages"].items() if k}
    return wanted == have


@pytest.fixture(scope="module")
def js_deps() -> Path:
    npm = _tool("npm")
    if not _installed_matches_lock():
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"npm ci failed in {JS_DIR}:\n{done.stdout}\n{done.stderr}"
    return JS_DIR / "node_modules"


@pytest.fixture(scope="module")
def service_url(search_index: str, search_settings: Settings, encoder: Any) -> Iterator[str]:
    with served(create_app(search_settings, encoder=encoder)) as url:
        yield url


@pytest.mark.parametrize("test_file", sorted(p.name for p in JS_DIR.glob("*.test.mjs")))
def test_official_js_clients_against_the_service(test_file: str, js_deps: Path, service_url: str,
                                                 search_settings: Settings) -> None:
    node = _tool("node")
    env = {**os.environ, "MMSEARCH_URL": service_url, "MMSEARCH_ALIAS": search_settings.products_alias,
           "ES_URL": search_settings.es_hosts[0], "NO_COLOR": "1", "FORCE_COLOR": "0"}
    done = subprocess.run([node, "--test", "--test-reporter=spec", test_file], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"node --test {test_file} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"

"""The pages blueprint with a FAKE Elasticsearch: routing of GET / (page vs proxy), security headers,
static files, the admin-protected ops data, and the workbench's JSON endpoints.

The pages themselves run in a real browser against a live index in tests/live/test_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmsearch.config import PROJECT_ROOT, Settings
from query_service.app import create_app
from query_service.relevance.experiments import ExperimentConfig, ExperimentManager
from query_service.routes.pages import CONTENT_SECURITY_POLICY, prefers_html
from tests.unit.fakes import FakeGateway
from werkzeug.datastructures import MIMEAccept

NO_PLUGINS = SimpleNamespace(painless=False, native_rrf_usable=False)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
SHOPPER = PROJECT_ROOT / "docs" / "relevance" / "shopper"


def _client(token: str | None = None, experiments: Any = None, gateway: FakeGateway | None = None) -> Any:
    settings = Settings(products_alias="products", admin_token=token)
    app = create_app(settings, es=gateway or FakeGateway(), capabilities=NO_PLUGINS, experiments=experiments)
    return app.test_client()


@pytest.mark.parametrize("accept,html", [
    (BROWSER_ACCEPT, True), ("text/html", True),
    ("application/json", False), ("application/vnd.elasticsearch+json; compatible-with=9", False),
    ("*/*", False), ("", False), ("text/html;q=0.5, application/json", False),
])
def test_prefers_html_only_for_browsers(accept: str, html: bool) -> None:
    from werkzeug.http import parse_accept_header

    assert prefers_html(parse_accept_header(accept, MIMEAccept)) is html


def test_get_root_is_the_page_for_browsers_and_the_proxy_for_elasticsearch_clients() -> None:
    gateway = FakeGateway()
    client = _client(gateway=gateway)
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'id="search-form"' in page.data and gateway.forwarded == []
    for accept in ("application/json", "application/vnd.elasticsearch+json; compatible-with=9", "*/*"):
        info = client.get("/", headers={"Accept": accept})
        assert info.status_code == 200 and info.headers["X-Elastic-Product"] == "Elasticsearch", accept
    assert client.head("/", headers={"Accept": "application/json"}).status_code == 200
    assert gateway.forwarded == [("GET", "/")] * 3 + [("HEAD", "/")]
    metrics = client.get("/metrics").data.decode()
    assert 'mmsearch_requests_total{endpoint="proxy",status="200"} 4.0' in metrics  # counted as the proxy's


def test_proxied_root_keeps_the_proxys_error_shape() -> None:
    import elasticsearch

    client = _client(gateway=FakeGateway(error=elasticsearch.ConnectionError("down")))
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 503 and response.json["error"]["type"]  # ES's shape, not ours


@pytest.mark.parametrize("path", ["/", "/compare", "/ops"])
def test_pages_carry_security_headers_and_no_inline_script(path: str) -> None:
    response = _client().get(path, headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    html = response.data.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/ui/' in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html), "no inline event handlers"
    for field_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html):
        assert f'for="{field_id}"' in html or re.search(rf'<label[^>]*>[^<]*<input[^>]*id="{field_id}"', html) \
            or re.search(rf'<label>[^<]*<(?:input|select)[^>]*id="{field_id}"', html) \
            or re.search(rf'<label[^>]*>(?:(?!</label>).)*id="{field_id}"', html, re.S), f"{field_id} has no label"


def test_static_files_have_types_cache_headers_and_stay_in_their_folder() -> None:
    client = _client()
    script = client.get("/ui/search.js")
    assert script.status_code == 200 and script.mimetype in ("text/javascript", "application/javascript")
    assert "max-age=300" in script.headers["Cache-Control"] and script.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/ui/style.css").mimetype == "text/css"
    assert client.get("/ui/../routes/pages.py").status_code == 404
    assert client.get("/ui/..%2Froutes%2Fpages.py").status_code == 404


def test_scripts_never_write_html() -> None:
    static = Path(__file__).resolve().parents[2] / "query_service" / "web" / "static"
    for script in static.glob("*.js"):
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"


def test_ops_data_is_closed_without_a_configured_token() -> None:
    response = _client(token=None).get("/ops/data", headers={"Authorization": "Bearer guess"})
    assert response.status_code == 403
    assert "MMSEARCH_ADMIN_TOKEN" in response.json["message"]


def test_ops_data_needs_the_right_bearer_token() -> None:
    client = _client(token="s3cret")
    assert client.get("/ops/data").status_code == 401
    wrong = client.get("/ops/data", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "s3cret" not in wrong.get_data(as_text=True)
    assert client.get("/ops/data?token=s3cret").status_code == 401  # a token in the URL is not accepted
    ok = client.get("/ops/data", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    data = ok.json
    assert set(data) >= {"readiness", "index_status", "experiment", "model"}
    assert data["experiment"] == {"configured": False}
    assert client.get("/ops").status_code == 200  # the shell loads without the token


def test_ops_data_reports_the_experiment_even_when_its_events_cannot_be_read() -> None:
    config = ExperimentConfig.from_dict({"id": "exp1", "salt": "s", "variants": [
        {"name": "control", "share": 0.5}, {"name": "linear", "share": 0.5, "ranking": {"method": "linear"}}]})
    data = _client(token="t", experiments=ExperimentManager(config)).get(
        "/ops/data", headers={"Authorization": "Bearer t"}).json
    assert data["experiment"]["id"] == "exp1" and data["experiment"]["running"] is True
    assert data["experiment"]["shares"] == {"control": 0.5, "linear": 0.5}
    assert "error" in data["experiment"]  # the fake gateway has no client to read events with


def test_overlap_endpoint() -> None:
    client = _client()
    answer = client.post("/compare/overlap", json={"left": ["a", "b", "c"], "right": ["a", "c", "d"]}).json
    assert answer["jaccard"] == pytest.approx(0.5) and 0 < answer["rbo"] < 1
    assert client.post("/compare/overlap", json={"left": "a", "right": []}).status_code == 400
    assert client.post("/compare/overlap", json={"left": [], "right": [], "p": 1}).status_code == 400


def test_compare_run_names_both_sides_and_refuses_unknown_variants() -> None:
    config = ExperimentConfig.from_dict({"id": "exp1", "salt": "s", "variants": [
        {"name": "control", "share": 0.5}, {"name": "bm25", "share": 0.5, "ranking": {"legs": {"bm25": 1.0}}}]})
    client = _client(experiments=ExperimentManager(config))
    page = client.get("/compare").get_data(as_text=True)
    assert 'value="exp1:bm25"' in page and 'value="keyword"' in page
    answer = client.post("/compare/run", json={"text": "shirt", "size": 5, "left": {"variant": "default"},
                                               "right": {"variant": "exp1:bm25"}}).json
    assert answer["left"]["label"] == "default" and answer["right"]["ranking"]["legs"] == {"bm25": 1.0}
    assert set(answer["overlap"]) >= {"jaccard", "rbo", "movements", "counts"}
    bad = client.post("/compare/run", json={"text": "shirt", "left": {"variant": "nope"}, "right": {"variant": "default"}})
    assert bad.status_code == 400 and "nope" in bad.get_data(as_text=True)
    assert client.post("/compare/run", json={"text": "x", "size": 500, "left": {}, "right": {}}).status_code == 400


def test_compare_eval_reads_an_eval_run_output_with_its_queries_and_variants() -> None:
    import json

    per_query = json.loads((SHOPPER / "results_test" / "per_query.json").read_text())
    body = {"per_query": per_query, "baseline": "bm25-plain", "candidate": "default", "metric": "ndcg@10",
            "judgments": (SHOPPER / "test.jsonl").read_text(),
            "variants": (PROJECT_ROOT / "docs" / "relevance" / "variants" / "shopper.yaml").read_text()}
    answer = _client().post("/compare/eval", json=body).json
    rows = answer["rows"]
    assert len(rows) == len(per_query["default"]) and rows[0]["query"]
    assert [r["delta"] for r in rows] == sorted(r["delta"] for r in rows)
    first = rows[0]
    assert first["delta"] == pytest.approx(per_query["default"][first["qid"]]["ndcg@10"]
                                           - per_query["bm25-plain"][first["qid"]]["ndcg@10"])
    assert {v["name"] for v in answer["variants"]} >= {"bm25-plain", "default"}
    assert _client().post("/compare/eval", json={"per_query": {"a": {"q": {"m": "x"}}}}).status_code == 400
    assert _client().post("/compare/eval", json={**body, "metric": "nope"}).status_code == 400
    assert _client().post("/compare/eval", json={**body, "variants": "- {name: x, legs: {nope: 1}}"}).status_code == 400


def test_the_demo_prints_the_page_url_before_the_curl_examples(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    from mmsearch.demo import print_examples

    print_examples("http://127.0.0.1:8080", tmp_path, "tok")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0].startswith("== Open http://127.0.0.1:8080/ in a browser")
    assert "/compare" in lines[0] and "/ops" in lines[0] and "tok" in lines[1]
    assert all("curl" not in line for line in lines[:2]) and any("curl" in line for line in lines)

"""The three pages in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against
the real service over the live product index: searching by words, photo and both, facets, paging,
score breakdowns, click events reaching the events index, the degradation banner, the ranking
workbench with an offline eval file, the admin-protected ops page, safe photo URLs, and axe-core
with zero serious or critical violations on every page.

``MMSEARCH_SCREENSHOTS=docs/screenshots`` also saves a screenshot of each page there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmsearch.config import PROJECT_ROOT, Settings
from query_service.app import create_app
from tests.live.serving import served
from query_service.engine import EngineOptions
from query_service.overlap import rbo
from query_service.relevance.events import EventLogger
from query_service.relevance.experiments import ExperimentConfig, ExperimentManager

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
AXE = PROJECT_ROOT / "tests" / "live" / "js" / "node_modules" / "axe-core" / "axe.min.js"
ADMIN_TOKEN = "browser-test-admin-token"
#: Keys the event tickets /search hands the page, the click beacons' credential for /events.
EVENT_SECRET = "browser-test-event-ticket-secret"
SHOPPER = PROJECT_ROOT / "docs" / "relevance" / "shopper"
SCREENSHOTS = os.environ.get("MMSEARCH_SCREENSHOTS")
EXPERIMENT = {"id": "browser-exp", "salt": "s1", "variants": [
    {"name": "control", "share": 0.5}, {"name": "treatment", "share": 0.5, "ranking": {"rrf_k": 61}}]}


class _FailingEncoder:
    """The real encoder whose text side fails: the vector legs of a text query degrade, BM25 answers."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.identity, self.dim = inner, inner.identity, inner.dim

    def encode_texts(self, texts: list[str]) -> Any:
        raise RuntimeError("text encoder crashed (test)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def events_index() -> str:
    return f"t-browser-events-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def service(search_index: str, search_settings: Settings, encoder: Any, catalog_dir: Path, es_session_client: Any,
            events_index: str) -> Iterator[str]:
    settings = Settings(es_hosts=search_settings.es_hosts, products_alias=search_settings.products_alias,
                        state_dir=search_settings.state_dir, events_index=events_index, admin_token=ADMIN_TOKEN,
                        event_ticket_secret=EVENT_SECRET, image_root=catalog_dir)
    logger = EventLogger(es_session_client, events_index, flush_every=1, flush_interval_s=0.2)
    app = create_app(settings, encoder=encoder, event_logger=logger,
                     experiments=ExperimentManager(ExperimentConfig.from_dict(EXPERIMENT)))
    with served(app) as url:
        yield url
    logger.close()
    es_session_client.indices.delete(index=events_index, ignore_unavailable=True)


@pytest.fixture(scope="module")
def degraded_service(search_index: str, search_settings: Settings, encoder: Any, catalog_dir: Path) -> Iterator[str]:
    settings = Settings(es_hosts=search_settings.es_hosts, products_alias=search_settings.products_alias,
                        state_dir=search_settings.state_dir, image_root=catalog_dir)
    with served(create_app(settings, encoder=_FailingEncoder(encoder),
                           engine_options=EngineOptions(encoder_timeout_s=2.0))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (make browser-deps does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A page whose CSP is enforced; any console error (a CSP violation included) fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def _wait(page: Any, condition: str, arg: Any = None, timeout_s: float = 30.0) -> None:
    """Polls a JS expression from Python: Playwright's wait_for_function compiles its predicate with eval,
    which the pages' CSP (no 'unsafe-eval') rightly refuses."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(condition, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {condition}")
        time.sleep(0.05)


def _search(page: Any, text: str) -> None:
    page.fill("#q", text)
    page.click("#search-button")
    _wait(page, "() => document.querySelector('#summary').textContent.includes('results')")


def _hits(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all("#hits > li", """items => items.map(li => ({
        id: li.dataset.id, title: li.querySelector('.hit-open').textContent,
        attrs: Object.fromEntries([...li.querySelectorAll('dd[data-attr]')].map(d => [d.dataset.attr, d.textContent])),
        photo: li.querySelector('img') ? li.querySelector('img').getAttribute('src') : null}))""")


def _wait_for_new_results(page: Any, before: list[str]) -> None:
    _wait(page, "ids => JSON.stringify([...document.querySelectorAll('#hits > li')].map(li => li.dataset.id))"
                " !== JSON.stringify(ids)", before)


def _screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def test_text_query_shows_results_with_photos_and_the_variant(page: Any, service: str) -> None:
    page.goto(service + "/")
    _search(page, "tshirts for men")
    hits = _hits(page)
    assert len(hits) == 12 and all(h["title"] for h in hits)
    assert sum(h["attrs"].get("article_type") == "Tshirts" for h in hits) >= 8
    photos = [h["photo"] for h in hits if h["photo"]]
    assert photos and all(p.startswith("/photos/images/") for p in photos)
    _wait(page, "() => [...document.querySelectorAll('#hits img')].some(i => i.complete && i.naturalWidth > 0)")
    variant = page.text_content("#variant")
    assert "experiment browser-exp" in variant and ("control" in variant or "treatment" in variant)
    assert page.is_hidden("#degraded")
    understood = page.text_content("#understood")
    assert "article_type: Tshirts" in understood and "gender: Men" in understood


def _photo_of(es: Any, catalog_dir: Path, tmp_path: Path) -> tuple[str, Path]:
    """A white T-shirt's photo: T-shirts are the most photographed type here, Black the commonest colour."""
    hit = es.search(index="qs-live", size=1, sort=[{"id": "asc"}], query={"bool": {"filter": [
        {"term": {"has_image": True}}, {"term": {"article_type": "Tshirts"}},
        {"term": {"base_colour": "White"}}]}})["hits"]["hits"][0]
    copy = tmp_path / "my-photo.jpg"
    shutil.copy(catalog_dir / hit["_source"]["image"], copy)
    return hit["_id"], copy


def test_photo_search_then_in_black_changes_the_colour(page: Any, service: str, es_session_client: Any,
                                                      catalog_dir: Path, tmp_path: Path) -> None:
    photo_id, photo = _photo_of(es_session_client, catalog_dir, tmp_path)
    page.goto(service + "/")
    page.set_input_files("#photo", str(photo))
    assert page.is_visible("#photo-preview-img")
    page.click("#search-button")
    _wait(page, "() => document.querySelector('#summary').textContent.includes('results')")
    by_photo = _hits(page)
    assert by_photo[0]["id"] == photo_id  # the product's own photo finds it first
    assert sum(h["attrs"].get("article_type") == "Tshirts" for h in by_photo) >= 8

    _search(page, "in black")
    _wait_for_new_results(page, [h["id"] for h in by_photo])
    composed = _hits(page)

    def black(hits: list[dict[str, Any]]) -> float:
        return sum(h["attrs"].get("base_colour") == "Black" for h in hits) / len(hits)

    assert black(composed) >= 0.5 and black(composed) > black(by_photo), (black(composed), black(by_photo))
    assert sum(h["attrs"].get("article_type") == "Tshirts" for h in composed) >= 6  # still the photo's type
    assert "base_colour: Black" in page.text_content("#understood")
    _screenshot(page, "search")


def test_photo_by_drag_and_drop(page: Any, service: str, es_session_client: Any, catalog_dir: Path,
                                tmp_path: Path) -> None:
    photo_id, photo = _photo_of(es_session_client, catalog_dir, tmp_path)
    page.goto(service + "/")
    data = list(photo.read_bytes())
    page.evaluate("""bytes => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.jpg', {type: 'image/jpeg'}));
        document.querySelector('#drop-zone').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
    }""", data)
    page.click("#search-button")
    _wait(page, "() => document.querySelector('#summary').textContent.includes('results')")
    assert _hits(page)[0]["id"] == photo_id


def test_facet_filters_and_paging(page: Any, service: str) -> None:
    page.goto(service + "/")
    _search(page, "shoes")
    first_page = _hits(page)
    button = page.locator("fieldset[data-facet='gender'] button.facet-value", has_text="Women").first
    button.click()
    _wait_for_new_results(page, [h["id"] for h in first_page])
    filtered = _hits(page)
    assert filtered and all(h["attrs"]["gender"] == "Women" for h in filtered)
    assert page.locator("fieldset[data-facet='gender'] button[aria-pressed='true']").count() == 1
    page.click("#active-filters button")  # remove the filter again
    _wait_for_new_results(page, [h["id"] for h in filtered])
    assert {h["attrs"]["gender"] for h in _hits(page)} != {"Women"}

    page_one = [h["id"] for h in _hits(page)]
    assert page.is_visible("#pagination") and "Page 1 of" in page.text_content("#page-info")
    page.click("#next-page")
    _wait_for_new_results(page, page_one)
    page_two = [h["id"] for h in _hits(page)]
    assert "Page 2 of" in page.text_content("#page-info") and not set(page_one) & set(page_two)
    assert page.is_enabled("#prev-page")


def test_score_breakdown_on_demand(page: Any, service: str) -> None:
    page.goto(service + "/")
    _search(page, "black watch")
    toggle = page.locator("#hits > li").first.locator(".breakdown-toggle")
    panel_id = toggle.get_attribute("aria-controls")
    assert toggle.get_attribute("aria-expanded") == "false" and page.is_hidden(f"#{panel_id}")
    toggle.focus()
    page.keyboard.press("Enter")  # keyboard, not only the mouse
    assert toggle.get_attribute("aria-expanded") == "true" and page.is_visible(f"#{panel_id}")
    legs = page.eval_on_selector_all(f"#{panel_id} tbody th", "cells => cells.map(c => c.textContent)")
    assert legs and set(legs) <= {"bm25", "text_text", "text_image", "image_image", "image_text", "understood"}
    assert "Fused score" in page.text_content(f"#{panel_id} caption")


def test_clicking_a_result_stores_a_click_event(page: Any, service: str, es_session_client: Any,
                                                events_index: str) -> None:
    page.goto(service + "/")
    _search(page, "handbag")
    second = page.locator("#hits > li").nth(1)
    doc_id = second.get_attribute("data-id")
    second.locator(".hit-open").click()
    assert page.is_visible("#product-dialog") and page.text_content("#product-title")
    page.keyboard.press("Escape")
    assert page.is_hidden("#product-dialog")
    deadline = time.monotonic() + 15
    while True:
        es_session_client.indices.refresh(index=events_index)
        found = es_session_client.search(index=events_index, query={"bool": {"filter": [
            {"term": {"type": "click"}}, {"term": {"doc_id": doc_id}}]}})["hits"]["hits"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert found, "the click never reached the events index"
    click = found[0]["_source"]
    assert click["position"] == 2 and click["experiment_id"] == "browser-exp" and click["query_id"]
    assert "ticket" not in click  # the page's credential reached /events, and was not stored
    exposure = es_session_client.search(index=events_index, query={"bool": {"filter": [
        {"term": {"type": "exposure"}}, {"term": {"query_id": click["query_id"]}}]}})["hits"]["hits"]
    assert exposure and exposure[0]["_source"]["ids"][1] == doc_id and click["variant"] == exposure[0]["_source"]["variant"]


def test_degradation_is_a_visible_banner(page: Any, degraded_service: str) -> None:
    page.goto(degraded_service + "/")
    _search(page, "red dress")
    banner = page.locator("#degraded")
    assert banner.is_visible() and "text_vector" in banner.text_content()
    assert banner.get_attribute("role") == "alert"
    assert _hits(page)  # BM25 still answers


def test_user_text_is_never_html(page: Any, service: str) -> None:
    page.goto(service + "/")
    hostile = '<img src=x onerror="window.__injected=1"> black shirts'
    _search(page, hostile)
    assert page.evaluate("window.__injected") is None
    assert page.locator("img[src='x']").count() == 0


def test_compare_two_rankings_side_by_side(page: Any, service: str) -> None:
    page.goto(service + "/compare")
    page.fill("#cq", "black shoes")
    page.select_option("#left-variant", "default")
    page.select_option("#right-variant", "keyword")
    page.click("#compare-button")
    _wait(page, "() => document.querySelector('#overlap').textContent.includes('Jaccard')")
    left = page.eval_on_selector_all("#left-hits > li", "items => items.map(li => li.dataset.id)")
    right = page.eval_on_selector_all("#right-hits > li", "items => items.map(li => li.dataset.id)")
    assert len(left) == len(right) == 20 and left != right
    shown = float(page.get_attribute("#overlap", "data-rbo"))
    assert shown == pytest.approx(rbo(left, right))
    statuses = page.eval_on_selector_all("#right-hits > li", "items => items.map(li => li.dataset.status)")
    assert set(statuses) <= {"up", "down", "same", "new"} and len(set(statuses)) > 1
    assert ("new" in statuses) == bool(set(right) - set(left))
    dropped = page.eval_on_selector_all("#left-hits > li.dropped", "items => items.map(li => li.dataset.id)")
    assert set(dropped) == set(left) - set(right)


def test_eval_file_deltas_open_the_side_by_side_view(page: Any, service: str) -> None:
    page.goto(service + "/compare")
    page.set_input_files("#judgments-file", str(SHOPPER / "test.jsonl"))
    page.set_input_files("#variants-file", str(PROJECT_ROOT / "docs" / "relevance" / "variants" / "shopper.yaml"))
    page.set_input_files("#eval-file", str(SHOPPER / "results_test" / "per_query.json"))
    _wait(page, "() => document.querySelectorAll('#eval-plot rect').length > 0")
    page.select_option("#eval-baseline", "bm25-plain")
    page.select_option("#eval-candidate", "default")
    page.click("#eval-button")
    _wait(page, "() => document.querySelector('#eval-summary').textContent.startsWith('default vs bm25-plain')")
    per_query = json.loads((SHOPPER / "results_test" / "per_query.json").read_text())
    assert page.locator("#eval-plot rect").count() == len(per_query["default"])
    first = page.locator("#eval-table tbody tr").first
    qid = first.get_attribute("data-qid")
    delta = per_query["default"][qid]["ndcg@10"] - per_query["bm25-plain"][qid]["ndcg@10"]
    assert delta == min(per_query["default"][q]["ndcg@10"] - per_query["bm25-plain"][q]["ndcg@10"]
                        for q in per_query["default"])
    first.locator("button").click()
    _wait(page, "() => document.querySelectorAll('#right-hits > li').length > 0")
    query = next(json.loads(line)["query"] for line in (SHOPPER / "test.jsonl").read_text().splitlines()
                 if json.loads(line)["qid"] == qid)
    assert page.input_value("#cq") == query
    assert json.loads(page.input_value("#left-ranking"))["name"] == "bm25-plain"
    assert "Right: default" in page.text_content("#right-heading")
    if SCREENSHOTS:  # a query both rankings answer makes a more telling picture than the worst delta
        page.fill("#cq", "black shoes")
        page.select_option("#left-variant", "default")
        page.select_option("#right-variant", "keyword")
        page.click("#compare-button")
        _wait(page, "() => document.querySelector('#right-heading').textContent.includes('keyword')")
        _screenshot(page, "compare")


def test_ops_page_needs_the_token_and_shows_indices_readiness_and_experiments(page: Any, service: str,
                                                                            search_index: str) -> None:
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r))
    page.goto(service + "/ops")
    assert page.is_hidden("#ops-content")
    page.fill("#token", "wrong-token")
    page.click("#token-button")
    page.wait_for_selector("#ops-error:not([hidden])")
    assert "401" in page.text_content("#ops-error")
    page.fill("#token", ADMIN_TOKEN)
    page.click("#token-button")
    page.wait_for_selector("#ops-content:not([hidden])")
    indices = page.text_content("#indices")
    assert search_index in indices and "qs-live" in indices
    row = page.locator("#indices tbody tr", has_text=search_index)
    assert row.locator("td").nth(8).text_content() == "yes"  # built with the loaded model
    assert "ready (the loaded model matches the index)" in page.text_content("#readiness")
    assert "browser-exp" in page.text_content("#experiments")
    assert page.locator("[data-srm]").count() == 1 and "control" in page.text_content("#experiments")
    assert page.evaluate("sessionStorage.getItem('mmsearch-admin-token')") == ADMIN_TOKEN
    data_requests = [r for r in requests if "/ops/data" in r.url]
    assert data_requests and all(ADMIN_TOKEN not in r.url for r in requests)
    assert data_requests[-1].headers.get("authorization") == f"Bearer {ADMIN_TOKEN}"
    _screenshot(page, "ops")
    page.reload()  # the tab keeps its token
    page.wait_for_selector("#ops-content:not([hidden])")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_photo_urls_cannot_leave_the_catalog(service: str, search_settings: Settings, encoder: Any,
                                             catalog_dir: Path, tmp_path: Path) -> None:
    assert _status(service + "/photos/..%2F..%2Fetc%2Fpasswd") == 404
    assert _status(service + "/photos/images/..%2F..%2F..%2Fetc%2Fpasswd") == 404
    assert _status(service + "/photos/products.jsonl") == 404
    good = next((catalog_dir / "images").glob("*.jpg"))
    with urllib.request.urlopen(f"{service}/photos/images/{good.name}") as response:
        assert response.headers["Content-Type"] == "image/jpeg" and "max-age" in response.headers["Cache-Control"]
    root = tmp_path / "catalog"
    (root / "images").mkdir(parents=True)
    shutil.copy(good, root / "images" / "ok.jpg")
    (root / "images" / "evil.jpg").symlink_to("/etc/passwd")
    settings = Settings(es_hosts=search_settings.es_hosts, products_alias=search_settings.products_alias,
                        state_dir=search_settings.state_dir, image_root=root)
    client = create_app(settings, encoder=encoder).test_client()
    assert client.get("/photos/images/ok.jpg").status_code == 200
    evil = client.get("/photos/images/evil.jpg")
    assert evil.status_code == 404 and b"root:" not in evil.data


def _axe(browser: Any, url: str, prepare: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on a page after ``prepare(page)`` (bypass_csp: axe is injected)."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(url)
        prepare(page)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    finally:
        context.close()
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_violations_on_any_page(browser: Any, service: str) -> None:
    assert AXE.is_file(), "axe-core is missing: make js-deps"

    def searched(page: Any) -> None:
        _search(page, "black shoes")
        page.locator(".breakdown-toggle").first.click()
        page.click("#advanced summary")

    def compared(page: Any) -> None:
        page.fill("#cq", "black shoes")
        page.click("#compare-button")
        _wait(page, "() => document.querySelectorAll('#right-hits > li').length > 0")
        page.set_input_files("#eval-file", str(SHOPPER / "results_test" / "per_query.json"))
        _wait(page, "() => document.querySelectorAll('#eval-plot rect').length > 0")

    def ops(page: Any) -> None:
        page.fill("#token", ADMIN_TOKEN)
        page.click("#token-button")
        page.wait_for_selector("#ops-content:not([hidden])")

    found = {path: _axe(browser, service + path, prepare)
             for path, prepare in (("/", searched), ("/compare", compared), ("/ops", ops))}
    assert found == {"/": [], "/compare": [], "/ops": []}, found


def _get(url: str, accept: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def test_get_root_is_html_for_browsers_and_elasticsearchs_answer_for_its_clients(service: str, es_node: dict) -> None:
    status, content_type, body = _get(service + "/", "text/html,application/xhtml+xml,*/*;q=0.8")
    assert status == 200 and content_type.startswith("text/html") and b'id="search-form"' in body
    for accept in ("application/json", "application/vnd.elasticsearch+json; compatible-with=9"):
        relayed = _get(service + "/", accept)
        direct_status = _get(es_node["url"] + "/", "application/json")[0]
        assert relayed[0] == direct_status and "json" in relayed[1], (accept, relayed[:2])
        assert b"search-form" not in relayed[2]


def test_modes_and_the_advanced_panel_send_a_ranking(page: Any, service: str) -> None:
    bodies: list[dict[str, Any]] = []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/search")
            and r.method == "POST" and (r.headers.get("content-type") or "").startswith("application/json") else None)
    page.goto(service + "/")
    page.check("input[name='mode'][value='keyword']")
    page.focus("#q")
    page.keyboard.type("leather handbag")
    page.keyboard.press("Enter")  # the form submits from the keyboard
    _wait(page, "() => document.querySelector('#summary').textContent.includes('results')")
    assert bodies[-1]["ranking"] == {"legs": {"bm25": 1.0}}
    page.locator(".breakdown-toggle").first.click()
    legs = set(page.eval_on_selector_all("#hits .breakdown-panel:not([hidden]) tbody th", "c => c.map(x => x.textContent)"))
    assert legs and legs <= {"bm25", "understood"}
    assert "experiment" not in page.text_content("#variant")  # a client ranking is never bucketed

    page.click("#advanced summary")
    page.check("#advanced-on")
    page.fill("#w-bm25", "0")
    page.fill("#w-text_image", "0")
    page.select_option("#method", "linear")
    page.select_option("#normalization", "z_score")
    before = [h["id"] for h in _hits(page)]
    page.click("#search-button")
    _wait_for_new_results(page, before)
    ranking = bodies[-1]["ranking"]
    assert ranking["method"] == "linear" and ranking["normalization"] == "z_score"
    assert set(ranking["legs"]) == {"text_text", "image_image", "image_text"}
    page.locator(".breakdown-toggle").first.click()
    legs = set(page.eval_on_selector_all("#hits .breakdown-panel:not([hidden]) tbody th", "c => c.map(x => x.textContent)"))
    assert legs and legs <= {"text_text", "understood"}

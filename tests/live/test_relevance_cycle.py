"""A whole online experiment on the real node: service -> exposures -> simulated clicks -> events index -> report."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmsearch.config import Settings
from query_service.app import create_app
from query_service.relevance.events import EventLogger
from query_service.relevance.experiments import ExperimentManager
from query_service.relevance.judgments import generate
from query_service.relevance.report import ab_report, interleaving_report
from query_service.relevance.simulator import ClickModel, simulate_clicks
from query_service.relevance.store import fetch_experiment_events

BM25 = {"legs": {"bm25": 1.0}}
HYBRID = {"legs": {"bm25": 1.0, "text_text": 1.0, "text_image": 1.0}, "method": "rrf"}
EVENTS_TOKEN = "relevance-cycle-events-token"


def _events_settings(settings: Settings) -> Settings:
    """/events needs a credential: the simulated shoppers send their searches' tickets, the buffer test the
    token. The simulation is hundreds of shoppers through one client address, so no per-client limit."""
    return dataclasses.replace(settings, events_token=EVENTS_TOKEN, rate_limit="off")


@pytest.fixture()
def judged(search_index: str, es: Any, catalog_dir: Path) -> list:
    products = [hit["_source"] for hit in es.search(index=search_index, size=1000, query={"match_all": {}})["hits"]["hits"]]
    queries = [json.loads(line) for line in (catalog_dir / "dev_queries.jsonl").open()]
    judgments = [j for j in generate(products, queries) if j.grades]
    assert len(judgments) >= 5
    return judgments


def _run_sessions(client: Any, judgments: list, sessions: int, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    model = ClickModel()
    posted = searched = 0
    for session in range(sessions):
        judgment = rng.choice(judgments)
        unit = f"user-{session}"
        result = client.post("/search", json={"text": judgment.query, "size": 10, "user_id": unit}).json
        searched += 1
        assert "experiment" in result and result["variant"]
        ids = [h["_id"] for h in result["hits"]]
        clicks = [{"type": "click", "query_id": result["query_id"], "ticket": result["event_ticket"],
                   "doc_id": ids[p - 1], "position": p,
                   "unit_id": unit, "variant": result["variant"], "experiment_id": result["experiment"]["id"]}
                  for p in simulate_clicks(ids, judgment.grades, model, rng)]
        if clicks:
            assert client.post("/events", json=clicks).status_code == 202
            posted += len(clicks)
    return searched, posted


def _logger_and_app(es: Any, search_settings: Settings, encoder: Any, experiment: dict, tmp_path: Path):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    events_index = f"t-events-{uuid.uuid4().hex[:8]}"
    logger = EventLogger(es, events_index, flush_every=100, background=False)
    app = create_app(_events_settings(search_settings), encoder=encoder, experiments=ExperimentManager(path),
                     event_logger=logger)
    return app.test_client(), logger, events_index


def test_ab_experiment_cycle(es: Any, search_index: str, search_settings: Settings, encoder: Any, judged: list,
                             tmp_path: Path) -> None:
    experiment = {"id": "bm25-vs-hybrid", "salt": "t1", "mode": "ab",
                  "variants": [{"name": "control", "share": 0.5, "ranking": BM25},
                               {"name": "hybrid", "share": 0.5, "ranking": HYBRID}]}
    client, logger, events_index = _logger_and_app(es, search_settings, encoder, experiment, tmp_path)
    searched, posted = _run_sessions(client, judged, 240, seed=5)
    logger.close()  # shutdown flushes everything still buffered
    exposures, events = fetch_experiment_events(es, events_index, "bm25-vs-hybrid")
    assert len(exposures) == searched
    assert len(events) == posted > 0  # no event lost between POST /events and the index
    report = ab_report(exposures, events, {"control": 0.5, "hybrid": 0.5})
    assert report["srm"]["ok"]
    assert sum(v["impressions"] for v in report["variants"].values()) == searched
    assert {"ctr", "ctr_ci", "mrr", "mrr_ci", "zero_result_rate", "p95_latency_ms"} <= set(report["variants"]["hybrid"])
    assert "ctr_p" in report["variants"]["hybrid"]["vs_control"]
    # the same unit always sees the same variant
    by_unit: dict[str, set[str]] = {}
    for exposure in exposures:
        by_unit.setdefault(exposure["unit_id"], set()).add(exposure["variant"])
    assert all(len(v) == 1 for v in by_unit.values())


def test_interleaving_cycle(es: Any, search_index: str, search_settings: Settings, encoder: Any, judged: list,
                            tmp_path: Path) -> None:
    experiment = {"id": "tdi", "salt": "t2", "mode": "interleave",
                  "variants": [{"name": "A", "share": 0.5, "ranking": BM25},
                               {"name": "B", "share": 0.5, "ranking": HYBRID}]}
    client, logger, events_index = _logger_and_app(es, search_settings, encoder, experiment, tmp_path)
    searched, posted = _run_sessions(client, judged, 120, seed=9)
    logger.close()
    exposures, events = fetch_experiment_events(es, events_index, "tdi")
    assert len(exposures) == searched and len(events) == posted
    assert all(len(e["teams"]) == len(e["ids"]) for e in exposures)
    report = interleaving_report(exposures, events)
    assert report["wins_a"] + report["wins_b"] + report["ties"] == searched
    assert 0.0 <= report["p"] <= 1.0


def test_full_event_buffer_answers_503_instead_of_dropping(es: Any, search_index: str, search_settings: Settings,
                                                           encoder: Any) -> None:
    from elasticsearch import Elasticsearch

    logger = EventLogger(es, f"t-events-{uuid.uuid4().hex[:8]}", max_buffer=3, flush_every=3, background=False)
    logger.es = Elasticsearch("http://127.0.0.1:9", request_timeout=1, max_retries=0)  # ES goes away
    client = create_app(_events_settings(search_settings), encoder=encoder, event_logger=logger).test_client()
    event = {"type": "click", "query_id": "q", "doc_id": "d", "position": 1}
    token = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
    statuses = [client.post("/events", json=event, headers=token).status_code for _ in range(5)]
    assert statuses[:3] == [202, 202, 202] and statuses[3:] == [503, 503]
    assert logger.buffered == 3  # the failed flush put its batch back
    assert client.post("/events", json={"type": "view", "query_id": "q", "doc_id": "d"}, headers=token).status_code == 400
    logger.es = es
    assert logger.flush() == 3

"""Relevance metrics, statistics, bucketing, interleaving, simulator and reports (no server)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from mmsearch.exceptions import ConfigError, RequestValidationError
from query_service.relevance import metrics, stats
from query_service.relevance.experiments import ExperimentConfig, ExperimentManager, Variant, assign, bucket, \
    pick_variant
from query_service.relevance.http import validate_event
from query_service.relevance.interleaving import credit, tally, team_draft
from query_service.relevance.judgments import Judgment, generate, grade, import_csv, read_jsonl, write_jsonl
from query_service.relevance.report import ab_report, interleaving_report
from query_service.relevance.simulator import ClickModel, simulate_clicks

GRADES = {"a": 2, "b": 1, "c": 2}


def test_ndcg_by_hand() -> None:
    # ranking b, x, a: DCG = (2^1-1)/log2(2) + 0 + (2^2-1)/log2(4) = 1 + 1.5 = 2.5
    # ideal a, c, b:   IDCG = 3/1 + 3/log2(3) + 1/2
    expected = 2.5 / (3 + 3 / math.log2(3) + 0.5)
    assert metrics.ndcg_at(["b", "x", "a"], GRADES) == pytest.approx(expected)
    assert metrics.ndcg_at(["a", "c", "b"], GRADES) == pytest.approx(1.0)
    assert metrics.ndcg_at(["x", "y"], GRADES) == 0.0
    assert metrics.ndcg_at(["a"], {}) == 0.0


def test_mrr_map_recall_precision_by_hand() -> None:
    ranking = ["x", "b", "y", "a", "z"]
    assert metrics.mrr_at(ranking, GRADES) == pytest.approx(1 / 2)
    assert metrics.mrr_at(["x"] * 10 + ["a"], GRADES, k=10) == 0.0
    # relevant at 2 and 4 of 3 relevant: AP = (1/2 + 2/4) / 3
    assert metrics.average_precision_at(ranking, GRADES) == pytest.approx((0.5 + 0.5) / 3)
    assert metrics.recall_at(ranking, GRADES) == pytest.approx(2 / 3)
    assert metrics.precision_at(ranking, GRADES, k=10) == pytest.approx(2 / 10)
    assert set(metrics.all_metrics(ranking, GRADES)) == set(metrics.METRIC_NAMES)


def test_grade_rule_from_the_catalog_readme() -> None:
    intent = {"type": "Shirts", "colour": "Blue", "gender": "Men"}
    assert grade({"article_type": "Shirts", "gender": "Men", "base_colour": "Blue"}, intent) == 2
    assert grade({"article_type": "Shirts", "gender": "Unisex", "base_colour": "Blue"}, intent) == 2
    assert grade({"article_type": "Shirts", "gender": "Men", "base_colour": "Red"}, intent) == 1
    assert grade({"article_type": "Shirts", "gender": "Women", "base_colour": "Blue"}, intent) == 0
    assert grade({"article_type": "Tshirts", "gender": "Men", "base_colour": "Blue"}, intent) == 0
    assert grade({"article_type": "Shirts", "gender": "Women", "base_colour": "Red"},
                 {"type": "Shirts", "colour": None, "gender": None}) == 2


def test_judgments_roundtrip_and_csv(tmp_path) -> None:
    products = [{"id": "1", "article_type": "Shirts", "gender": "Men", "base_colour": "Blue"},
                {"id": "2", "article_type": "Shirts", "gender": "Men", "base_colour": "Red"},
                {"id": "3", "article_type": "Jeans", "gender": "Men", "base_colour": "Blue"}]
    judged = generate(products, [{"qid": "q1", "query": "blue shirt", "intent": {"type": "Shirts", "colour": "Blue",
                                                                                   "gender": "Men"}}])
    assert judged[0].grades == {"1": 2, "2": 1}
    write_jsonl(judged, tmp_path / "j.jsonl")
    assert read_jsonl(tmp_path / "j.jsonl")[0].grades == {"1": 2, "2": 1}
    (tmp_path / "h.csv").write_text("qid,query,doc_id,grade\nq1,red dress,10,2\nq1,red dress,11,0\nq2,hat,12,1\n")
    human = {j.qid: j for j in import_csv(tmp_path / "h.csv")}
    assert human["q1"].grades == {"10": 2} and human["q2"].query == "hat"
    (tmp_path / "bad.csv").write_text("qid,doc\nq1,1\n")
    with pytest.raises(ConfigError):
        import_csv(tmp_path / "bad.csv")
    with pytest.raises(ConfigError):
        Judgment(qid="q", query=None, grades={})


def test_bucketing_is_sticky_and_matches_shares_over_100k_ids() -> None:
    assert bucket("s", "user-1") == bucket("s", "user-1") != bucket("other-salt", "user-1")
    names, shares = ["control", "b", "c"], [0.5, 0.3, 0.2]
    counts = Counter(pick_variant("salt-1", f"u{i}", names, shares) for i in range(100_000))
    for name, share in zip(names, shares):
        assert abs(counts[name] / 100_000 - share) < 0.006
    assert pick_variant("salt-1", "u42", names, shares) == pick_variant("salt-1", "u42", names, shares)


def _config(**overrides) -> ExperimentConfig:
    data = {"id": "e1", "salt": "s", "variants": (Variant("control", 0.5, {"legs": {"bm25": 1.0}}),
                                                  Variant("hybrid", 0.5, {})), **overrides}
    return ExperimentConfig(**data)


def test_experiment_config_validation_and_window() -> None:
    import datetime as dt

    with pytest.raises(ConfigError):
        _config(variants=(Variant("a", 0.7, {}), Variant("b", 0.7, {})))
    with pytest.raises(ConfigError):
        _config(mode="interleave")  # needs variants A and B
    with pytest.raises(Exception):
        _config(variants=(Variant("a", 0.5, {"method": "nope"}), Variant("b", 0.5, {})))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    config = _config(start=start, stop=start + dt.timedelta(days=1))
    assert assign(config, "u", now=start - dt.timedelta(seconds=1)) is None
    assert assign(config, "u", now=start).variant in ("control", "hybrid")


def test_manager_hot_reloads_and_keeps_last_good_config(tmp_path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("id: e1\nsalt: s\nvariants:\n - {name: a, share: 0.5}\n - {name: b, share: 0.5}\n")
    manager = ExperimentManager(path)
    assert manager.assign("u1").experiment_id == "e1"
    path.write_text("id: e2\nsalt: s\nvariants:\n - {name: a, share: 0.5}\n - {name: b, share: 0.5}\n")
    manager.reload_now()
    assert manager.assign("u1").experiment_id == "e2"
    path.write_text("id: [broken\n")
    manager.reload_now()
    assert manager.assign("u1").experiment_id == "e2" and manager.last_error


def test_team_draft_alternates_fairly_and_is_deterministic() -> None:
    a, b = ["1", "2", "3", "4"], ["3", "5", "1", "6"]
    merged, teams = team_draft(a, b, seed=7)
    assert merged == team_draft(a, b, seed=7)[0]
    assert len(merged) == len(set(merged)) == len(set(a) | set(b))
    for i in range(0, len(teams) - 1, 2):  # each round gives one pick to each team
        assert sorted(teams[i:i + 2]) == ["A", "B"]
    for doc, team in zip(merged, teams):  # a team only contributes its own documents
        assert doc in (a if team == "A" else b)
    firsts = Counter(team_draft(a, b, seed=s)[1][0] for s in range(2000))
    assert 900 < firsts["A"] < 1100


def test_interleaving_credit_rules() -> None:
    teams = ["A", "B", "A", "B"]
    assert credit(teams, [1]) == "A"
    assert credit(teams, [2, 4]) == "B"
    assert credit(teams, [1, 2]) == "tie"
    assert credit(teams, []) == "tie"
    assert credit(teams, [9]) == "tie"  # a click outside the list credits nobody
    assert tally(["A", "B", "B", "tie"]).wins_b == 2


def test_srm_detects_a_skewed_split_and_passes_a_fair_one() -> None:
    _, p_fair = stats.srm_chi_square([5023, 4977], [0.5, 0.5])
    _, p_skew = stats.srm_chi_square([5300, 4700], [0.5, 0.5])
    assert p_fair > 0.5 and p_skew < 1e-6
    # chi2 survival function against known values
    assert stats.chi2_sf(3.841459, 1) == pytest.approx(0.05, abs=1e-5)
    assert stats.chi2_sf(5.991465, 2) == pytest.approx(0.05, abs=1e-5)
    assert stats.chi2_sf(20.0, 10) == pytest.approx(0.0292527, abs=1e-5)


def test_binomial_and_randomization_tests() -> None:
    assert stats.binomial_two_sided(5, 5) == 1.0
    assert stats.binomial_two_sided(9, 1) == pytest.approx(2 * 11 / 1024)
    assert stats.paired_randomization([0, 0, 0], [1, 1, 1]) == pytest.approx(2 / 8)
    assert stats.paired_randomization([1, 2], [1, 2]) == 1.0
    rng = random.Random(0)
    a = [rng.random() for _ in range(200)]
    assert stats.paired_randomization(a, [x + 0.05 for x in a]) < 0.001
    low, high = stats.bootstrap_ci([1.0] * 50 + [0.0] * 50)
    assert low < 0.5 < high
    diff, p = stats.two_proportion_z(100, 1000, 150, 1000)
    assert diff == pytest.approx(0.05) and p < 0.001


def test_simulator_prefers_relevant_results() -> None:
    model = ClickModel()
    rng = random.Random(3)
    good = sum(len(simulate_clicks(["a", "c", "b"], GRADES, model, rng)) for _ in range(2000))
    bad = sum(len(simulate_clicks(["x", "y", "z"], GRADES, model, rng)) for _ in range(2000))
    assert good > 5 * bad
    with pytest.raises(ValueError):
        ClickModel(patience=0)


def test_ab_and_interleaving_reports() -> None:
    exposures = [{"query_id": f"q{i}", "unit_id": f"u{i}", "variant": "control" if i % 2 else "hybrid",
                  "ids": ["a"], "total": 1, "took_ms": 10.0 + i % 7} for i in range(400)]
    events = [{"type": "click", "query_id": f"q{i}", "position": 1} for i in range(400)
              if (i % 2 == 0 and i % 3 != 0) or (i % 2 == 1 and i % 10 == 1)]
    report = ab_report(exposures, events, {"control": 0.5, "hybrid": 0.5})
    assert report["srm"]["ok"]
    assert report["variants"]["hybrid"]["ctr"] > report["variants"]["control"]["ctr"]
    assert report["variants"]["hybrid"]["vs_control"]["ctr_significant"]
    skewed = ab_report(exposures[:300] + [e for e in exposures[300:] if e["variant"] == "hybrid"], events,
                       {"control": 0.5, "hybrid": 0.5})
    assert skewed["srm"]["p"] < report["srm"]["p"]
    inter = interleaving_report([{"query_id": f"q{i}", "teams": ["A", "B"]} for i in range(30)],
                                [{"type": "click", "query_id": f"q{i}", "position": 2} for i in range(25)])
    assert (inter["wins_b"], inter["wins_a"], inter["ties"]) == (25, 0, 5) and inter["winner"] == "B"


def test_event_validation() -> None:
    ok = validate_event({"type": "click", "query_id": "q", "doc_id": "d", "position": 3})
    assert ok["position"] == 3
    for bad in ({"type": "view", "query_id": "q", "doc_id": "d"}, {"type": "click", "doc_id": "d"},
                {"type": "click", "query_id": "q", "doc_id": "d", "position": 0},
                {"type": "click", "query_id": "q", "doc_id": "d", "evil": 1}, ["not", "an", "object"]):
        with pytest.raises(RequestValidationError):
            validate_event(bad)

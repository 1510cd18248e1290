"""Lifecycle decisions: versioned names, atomic swap plans, rollback target, prune selection, model check."""

from __future__ import annotations

import datetime as dt

import pytest

from indexer.naming import check_model, new_version_name, parse_version, pick_rollback, plan_prune, \
    plan_replace_legacy, plan_swap, versions_newest_first
from mmsearch.exceptions import IndexingError, ModelMismatchError

T0 = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def test_version_names_are_utc_and_unique():
    assert new_version_name("products", T0, set()) == "products-v20250301120000"
    taken = {"products-v20250301120000", "products-v20250301120001"}
    assert new_version_name("products", T0, taken) == "products-v20250301120002"
    local = T0.astimezone(dt.timezone(dt.timedelta(hours=5)))
    assert new_version_name("products", local, set()) == "products-v20250301120000"


def test_parse_and_order_versions():
    assert parse_version("products-v20250301120000", "products") == T0
    assert parse_version("products-v2025", "products") is None
    assert parse_version("other-v20250301120000", "products") is None
    assert parse_version("products-x-v20250301120000", "products") is None
    names = ["products-v20250101000000", "legacy", "products-v20250301000000", "products-v20250201000000"]
    assert versions_newest_first("products", names) == ["products-v20250301000000", "products-v20250201000000",
                                                        "products-v20250101000000"]


def test_swap_is_one_body_removing_every_current_index():
    assert plan_swap("p", "p-v2", ["p-v1"]) == [{"remove": {"index": "p-v1", "alias": "p"}},
                                                 {"add": {"index": "p-v2", "alias": "p"}}]
    assert plan_swap("p", "p-v2", []) == [{"add": {"index": "p-v2", "alias": "p"}}]
    assert plan_swap("p", "p-v2", ["p-v1", "p-v0", "p-v2"])[:2] == [{"remove": {"index": "p-v0", "alias": "p"}},
                                                                   {"remove": {"index": "p-v1", "alias": "p"}}]


def test_replace_legacy_plan():
    assert plan_replace_legacy("shop", "shop-v1") == [{"remove_index": {"index": "shop"}},
                                                      {"add": {"index": "shop-v1", "alias": "shop"}}]


def test_rollback_prefers_recorded_origin_then_next_older():
    names = ["p-v20250101000000", "p-v20250201000000", "p-v20250301000000"]
    assert pick_rollback("p", "p-v20250301000000", names, "p-v20250101000000") == "p-v20250101000000"
    assert pick_rollback("p", "p-v20250301000000", names, None) == "p-v20250201000000"
    assert pick_rollback("p", "p-v20250301000000", names, "p-deleted") == "p-v20250201000000"
    with pytest.raises(IndexingError, match="no previous"):
        pick_rollback("p", "p-v20250101000000", names, None)


def test_prune_never_deletes_aliased_indices():
    names = [f"p-v2025010{i}000000" for i in range(1, 6)]
    aliased = {"p-v20250102000000": ["p"]}
    assert plan_prune("p", names, aliased, keep=2) == ["p-v20250103000000", "p-v20250101000000"]
    assert plan_prune("p", names, {}, keep=5) == []
    assert plan_prune("p", names + ["unrelated"], {}, keep=4) == ["p-v20250101000000"]
    with pytest.raises(IndexingError):
        plan_prune("p", names, {}, keep=0)


def test_model_check():
    check_model("i", "abc", "abc", force=False)
    check_model("i", "abc", "xyz", force=True)
    with pytest.raises(ModelMismatchError, match="different model"):
        check_model("i", "abc", "xyz", force=False)
    with pytest.raises(ModelMismatchError, match="cannot check"):
        check_model("i", "abc", None, force=False)
    assert ModelMismatchError.http_status == 409

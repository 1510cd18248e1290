"""The one ``--catalog`` rule (indexer.catalog.resolve_catalog) and the one bad-record rule of its readers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from indexer.catalog import (CATALOG_HELP, CatalogConfig, SkippedRecords, catalog_or_default,
                             iter_jsonl_records, iter_product_records, resolve_catalog)
from mmsearch.config import PROJECT_ROOT
from mmsearch.exceptions import ConfigError
from onnx_models.catalog import image_records, iter_records


def _catalog_dir(root: Path, lines: list[str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = lines if lines is not None else ['{"id": 1, "title": "A", "image": "images/1.jpg"}',
                                             '{"id": "2", "title": "B"}']
    (root / "products.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# --- resolver -----------------------------------------------------------------------


def test_directory_means_its_products_jsonl_and_images_in_it(tmp_path):
    root = _catalog_dir(tmp_path / "cat")
    location = resolve_catalog(root)
    assert location.products_file == root / "products.jsonl"
    assert location.root_dir == root and location.directory == root and location.source == root
    assert location.format == "jsonl" and location.name == "cat"
    assert location.dev_queries_file == root / "dev_queries.jsonl"


def test_file_means_itself_and_images_beside_it_unless_image_root(tmp_path):
    csv_file = tmp_path / "export" / "items.csv"
    csv_file.parent.mkdir()
    csv_file.write_text("id,title\n1,A\n")
    location = resolve_catalog(csv_file)
    assert location.products_file == csv_file and location.root_dir == csv_file.parent
    assert location.format == "csv" and location.directory is None and location.name == "items.csv"
    assert location.dev_queries_file is None
    assert resolve_catalog(csv_file, image_root=tmp_path / "photos").root_dir == tmp_path / "photos"
    odd = tmp_path / "dump.txt"
    odd.write_text('{"id": 1}\n')
    assert resolve_catalog(odd, fmt="jsonl").format == "jsonl"
    assert resolve_catalog(location) is location


def test_missing_path_names_the_path_and_what_was_expected(tmp_path):
    with pytest.raises(ConfigError, match="catalog not found") as caught:
        resolve_catalog(tmp_path / "nope")
    assert caught.value.context["path"] == str(tmp_path / "nope")
    assert "products.jsonl" in caught.value.context["expected"]


def test_directory_without_products_jsonl_is_refused(tmp_path):
    (tmp_path / "products.csv").write_text("id\n1\n")
    with pytest.raises(ConfigError, match="no products.jsonl") as caught:
        resolve_catalog(tmp_path)
    assert caught.value.context["path"] == str(tmp_path)


def test_file_of_unknown_format_is_refused(tmp_path):
    odd = tmp_path / "catalog.xml"
    odd.write_text("<x/>")
    with pytest.raises(ConfigError, match="format"):
        resolve_catalog(odd)


def test_catalog_config_takes_a_directory_too(tmp_path):
    root = _catalog_dir(tmp_path)
    config = CatalogConfig(path=root)
    assert config.path == root / "products.jsonl" and config.image_root == root.resolve()


def test_dev_queries_only_by_rule_for_a_directory(tmp_path):
    root = _catalog_dir(tmp_path / "cat")
    with pytest.raises(ConfigError, match="dev_queries.jsonl not found"):
        resolve_catalog(root).require_dev_queries()
    (root / "dev_queries.jsonl").write_text('{"qid": "q1"}\n')
    assert resolve_catalog(root).require_dev_queries() == root / "dev_queries.jsonl"
    with pytest.raises(ConfigError, match="--queries"):
        resolve_catalog(root / "products.jsonl").require_dev_queries()


def test_scripts_default_to_the_shared_catalog_or_say_how_to_find_one(monkeypatch, tmp_path):
    import mmsearch.config

    root = _catalog_dir(tmp_path / "shared")
    monkeypatch.setattr(mmsearch.config, "default_catalog_dir", lambda: root)
    assert catalog_or_default(None).products_file == root / "products.jsonl"
    assert catalog_or_default(root / "products.jsonl").directory is None
    monkeypatch.setattr(mmsearch.config, "default_catalog_dir", lambda: None)
    with pytest.raises(ConfigError, match="MMSEARCH_CATALOG_DIR"):
        catalog_or_default(None)


def test_help_text_is_the_documented_one():
    assert CATALOG_HELP == "catalog directory (with products.jsonl) or catalog file (JSONL, CSV, Parquet)"


# --- one bad-record rule ------------------------------------------------------------


def test_bad_lines_are_skipped_counted_and_reported_once(tmp_path, capsys):
    root = _catalog_dir(tmp_path, ['{"id": "1"}', "{bad json", "", "[1, 2]", '{"id": "2"}'])
    skipped = SkippedRecords()
    records = list(iter_product_records(root, skipped))
    assert records == [{"id": "1"}, {"id": "2"}]
    assert skipped.count == 2 and skipped.examples[0].startswith("products.jsonl:2: bad JSON")
    err = capsys.readouterr().err
    assert err.count("warning: skipped 2 bad record(s)") == 1 and "products.jsonl:4" in err


def test_valid_catalog_reads_like_plain_json_loads(tmp_path, capsys):
    lines = ['{"id": 1, "title": "Caf\\u00e9", "year": 2012}', '{"id": "2", "title": "B", "image": null}']
    root = _catalog_dir(tmp_path, lines)
    assert list(iter_product_records(root)) == [json.loads(line) for line in lines]
    assert capsys.readouterr().err == ""


def test_csv_misaligned_row_follows_the_same_rule(tmp_path, capsys):
    path = tmp_path / "p.csv"
    path.write_text("id,title\n1,A\n2,B,EXTRA\n3,C\n")
    assert [r["id"] for r in iter_product_records(path)] == ["1", "3"]
    assert "skipped 1 bad record(s)" in capsys.readouterr().err


def test_model_tools_skip_bad_lines_instead_of_failing(tmp_path, capsys):
    root = _catalog_dir(tmp_path, ['{"id": 7, "image": "a.jpg"}', "{oops", '{"title": "no id"}',
                                   '{"id": 8, "image": "missing.jpg"}'])
    (root / "a.jpg").write_bytes(b"jpeg")
    assert [r["id"] for r in iter_records(root)] == ["7", "8"]
    assert [r["id"] for r in image_records(root / "products.jsonl")] == ["7"]
    assert "skipped 1 bad record(s)" in capsys.readouterr().err


def test_dev_queries_use_the_same_reader(tmp_path, capsys):
    path = tmp_path / "dev_queries.jsonl"
    path.write_text('{"qid": "q1"}\nnot json\n')
    assert list(iter_jsonl_records(path)) == [{"qid": "q1"}]
    assert "skipped 1 bad record(s)" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="file not found"):
        list(iter_jsonl_records(tmp_path / "none.jsonl"))


# --- no machine paths ---------------------------------------------------------------


def test_no_tracked_text_file_hard_codes_a_machine_path():
    # Built from pieces so this file does not match itself.
    needles = ("/work" + "/shared", "/work" + "/main")
    tracked = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "-z"], capture_output=True, check=True,
                             ).stdout.decode().split("\0")
    offenders = []
    for name in filter(None, tracked):
        # docs/*.json are recorded benchmark outputs: the paths in them are what that run saw.
        if name.startswith("docs/") and name.endswith(".json"):
            continue
        path = PROJECT_ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        offenders += [f"{name}: {needle}" for needle in needles if needle in text]
    assert offenders == []

"""Catalog readers and the field-mapping config: bad records are data, not exceptions."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from indexer.catalog import CatalogConfig, count_records, read_catalog
from mmsearch.exceptions import ConfigError


def _jsonl(tmp_path, lines):
    path = tmp_path / "products.jsonl"
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return path


def test_jsonl_yields_records_and_reasons(tmp_path):
    path = _jsonl(tmp_path, ['{"id": "1", "title": "A"}', "{bad json", "", "[1, 2]", b'{"id": "\xff"}',
                             '{"id": 2}'])
    items = list(read_catalog(CatalogConfig(path=path)))
    assert [i.position for i in items] == ["products.jsonl:1", "products.jsonl:2", "products.jsonl:4",
                                           "products.jsonl:5", "products.jsonl:6"]
    assert items[0].record == {"id": "1", "title": "A"}
    assert items[1].error.startswith("bad JSON") and items[1].raw == "{bad json"
    assert "not an object" in items[2].error
    assert "UTF-8" in items[3].error
    assert items[4].ok
    assert count_records(CatalogConfig(path=path)) == 5


def test_csv_empty_cells_are_missing_and_misaligned_rows_are_bad(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("sku,name,colour\n10,Red Shirt,\n11,Blue Shirt,Blue,EXTRA\n")
    items = list(read_catalog(CatalogConfig(path=path, fields={"id": "sku", "title": "name",
                                                                "base_colour": "colour"})))
    assert items[0].record == {"sku": "10", "name": "Red Shirt", "colour": None}
    assert not items[1].ok and "more cells" in items[1].error


def test_parquet_rows(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [1, 2], "title": ["A", None]}), path)
    items = list(read_catalog(CatalogConfig(path=path)))
    assert [i.record for i in items] == [{"id": 1, "title": "A"}, {"id": 2, "title": None}]
    assert count_records(CatalogConfig(path=path)) == 2


def test_config_validation(tmp_path):
    path = _jsonl(tmp_path, ['{"id": "1"}'])
    with pytest.raises(ConfigError, match="not found"):
        CatalogConfig(path=tmp_path / "nope.jsonl")
    odd = tmp_path / "p.xml"
    odd.write_text("<x/>")
    with pytest.raises(ConfigError, match="format"):
        CatalogConfig(path=odd)
    assert CatalogConfig(path=odd, format="jsonl").format == "jsonl"
    with pytest.raises(ConfigError, match="unknown schema fields"):
        CatalogConfig(path=path, fields={"colour": "c"})
    with pytest.raises(ConfigError, match="image_kind"):
        CatalogConfig(path=path, image_kind="ftp")
    assert CatalogConfig(path=path).image_root == tmp_path.resolve()


def test_config_from_file_resolves_relative_paths(tmp_path):
    _jsonl(tmp_path, ['{"id": "1"}'])
    config_file = tmp_path / "catalog.yaml"
    config_file.write_text("path: products.jsonl\nfields:\n  id: sku\ncategory_levels: [article_type]\n")
    config = CatalogConfig.from_file(config_file)
    assert config.path == tmp_path / "products.jsonl" and config.column("id") == "sku"
    assert config.category_levels == ("article_type",)
    config_file.write_text(json.dumps({"path": "products.jsonl", "colour_field": "x"}))
    with pytest.raises(ConfigError, match="unknown keys"):
        CatalogConfig.from_file(config_file)
    config_file.write_text("path: [unclosed")
    with pytest.raises(ConfigError, match="not valid"):
        CatalogConfig.from_file(config_file)


def test_config_file_path_may_be_a_catalog_directory(tmp_path):
    """The field-mapping file's ``path`` follows the --catalog rule (docs/indexing.md, "Catalog location")."""
    catalog_dir = tmp_path / "cat"
    catalog_dir.mkdir()
    _jsonl(catalog_dir, ['{"id": "1"}'])
    config_file = tmp_path / "catalog.yaml"
    config_file.write_text("path: cat\n")
    config = CatalogConfig.from_file(config_file)
    assert config.path == catalog_dir / "products.jsonl" and config.image_root == catalog_dir.resolve()
    config_file.write_text("path: .\n")
    with pytest.raises(ConfigError, match="no products.jsonl"):
        CatalogConfig.from_file(config_file)


# --- parts (--shard i/n) -------------------------------------------------------------

from indexer.catalog import CatalogItem, CatalogPart, part_of  # noqa: E402


def test_every_id_is_in_exactly_one_part_and_parts_are_balanced():
    ids = [str(n) for n in range(10_000)] + [f"sku-{n}" for n in range(2_000)]
    for count in (1, 2, 3, 7):
        parts = [CatalogPart(number, count) for number in range(1, count + 1)]
        owners = [[p.number for p in parts if p.owns(product_id)] for product_id in ids]
        assert all(len(owner) == 1 for owner in owners), count
        sizes = [sum(1 for owner in owners if owner == [p.number]) for p in parts]
        # sha256 spreads ids evenly: no part is more than 10 % off the mean at 12,000 ids.
        assert max(sizes) - min(sizes) < 0.1 * len(ids) / count * 2, sizes


def test_split_is_stable_pinned_values_and_independent_of_other_products():
    # Pinned: a change of the hash would silently re-shuffle every running multi-part build.
    assert [part_of(key, 3) for key in ("15970", "39386", "59263", "sku-1")] == [1, 2, 3, 2]
    import hashlib

    for key in ("15970", "39386", "x"):
        expected = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 5 + 1
        assert part_of(key, 5) == expected
    items = [CatalogItem(f"f:{n}", record={"id": str(n)}) for n in range(50)]
    part = CatalogPart(2, 3)
    chosen = {i.record["id"] for i in part.select(items, lambda r: r["id"])}
    # Adding products and reversing the file does not move any existing product between parts.
    more = [CatalogItem(f"f:{n}", record={"id": str(n)}) for n in range(50, 120)]
    rechosen = {i.record["id"] for i in part.select(list(reversed(items + more)), lambda r: r["id"])}
    assert chosen == rechosen & {str(n) for n in range(50)}
    assert chosen and chosen != {str(n) for n in range(50)}


def test_records_without_an_id_go_to_exactly_one_part():
    items = [CatalogItem(f"f:{n}", error="bad JSON") for n in range(30)] + \
        [CatalogItem(f"g:{n}", record={"title": "no id"}) for n in range(30)]
    picked = [item.position for number in (1, 2, 3)
              for item in CatalogPart(number, 3).select(items, lambda r: r.get("id"))]
    assert sorted(picked) == sorted(item.position for item in items)


@pytest.mark.parametrize("text,expected", [("1/1", (1, 1)), ("2/3", (2, 3)), (" 3 / 3 ", (3, 3))])
def test_part_parse(text, expected):
    part = CatalogPart.parse(text)
    assert (part.number, part.count) == expected
    assert part.label == f"part{expected[0]}of{expected[1]}"


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "-1/3", "1/5000", ""])
def test_part_parse_rejects_bad_values(text):
    with pytest.raises(ConfigError):
        CatalogPart.parse(text)

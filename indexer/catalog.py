"""Catalog readers (JSONL, CSV, Parquet) and the field-mapping config that maps columns to the schema.

Readers never raise on a bad record: they yield :class:`CatalogItem` objects
that carry either a parsed record or the reason it could not be parsed, so the
pipeline can send the bad ones to the dead-letter file and keep going. Only a
catalog that cannot be opened at all (missing file, unknown format, unreadable
Parquet footer) is an error for the whole run.

``--catalog`` means the same thing in every command (docs/indexing.md,
"Catalog location"): a catalog directory holding ``products.jsonl`` or a
catalog file; :func:`resolve_catalog` is the one place that decides which.
Commands other than the indexer read records through
:func:`iter_product_records`, which applies the same bad-record rule: skip,
count, report once on stderr.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch.config import read_mapping_file
from mmsearch.exceptions import ConfigError, IndexingError

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet",
             ".pq": "parquet"}
IMAGE_KINDS = ("auto", "path", "base64", "url")
#: Schema fields a column can be mapped to (architecture.md, index schema).
SCHEMA_FIELDS = ("id", "title", "category_path", "gender", "master_category", "sub_category", "article_type",
                 "base_colour", "season", "usage", "brand", "year", "image")
#: Raw text kept in a dead letter, so a 50 MB garbage line does not bloat the file.
MAX_RAW_CHARS = 2000
#: Elasticsearch refuses _id values longer than 512 bytes.
MAX_ID_BYTES = 512
#: What a catalog directory holds (products) and may hold (the dev queries of the relevance tools).
PRODUCTS_FILE = "products.jsonl"
DEV_QUERIES_FILE = "dev_queries.jsonl"
#: The one help text of every command's ``--catalog``.
CATALOG_HELP = "catalog directory (with products.jsonl) or catalog file (JSONL, CSV, Parquet)"
_EXPECTED = "a catalog directory containing products.jsonl, or a catalog file (.jsonl, .csv, .parquet)"


@dataclass(frozen=True)
class CatalogLocation:
    """Where a catalog's records and images are, whichever form ``--catalog`` took.

    ``source`` is the path as given (kept unresolved: the model trainer keys its
    feature cache on it). ``directory`` is set only when a directory was given.
    """

    source: Path
    products_file: Path
    root_dir: Path
    format: str
    directory: Path | None = None

    @property
    def name(self) -> str:
        """Short label for manifests and demo model names: the directory's or the file's name."""
        return (self.directory or self.products_file).name

    @property
    def dev_queries_file(self) -> Path | None:
        """``<dir>/dev_queries.jsonl`` of a catalog directory; None for a catalog file (pass --queries)."""
        return self.directory / DEV_QUERIES_FILE if self.directory is not None else None

    def require_dev_queries(self) -> Path:
        path = self.dev_queries_file
        if path is None:
            raise ConfigError("a catalog file has no dev queries beside it by rule; pass --queries FILE",
                              catalog=str(self.source))
        if not path.is_file():
            raise ConfigError(f"{DEV_QUERIES_FILE} not found in the catalog directory; pass --queries FILE",
                              path=str(path))
        return path

    def config(self, **options: Any) -> CatalogConfig:
        """A :class:`CatalogConfig` reading this location (``options``: the other CatalogConfig fields)."""
        return CatalogConfig(path=self.products_file, format=self.format, image_root=self.root_dir, **options)


def resolve_catalog(path: str | Path | CatalogLocation, image_root: str | Path | None = None,
                    fmt: str | None = None) -> CatalogLocation:
    """Turn a ``--catalog`` value into a :class:`CatalogLocation`, or raise a ConfigError saying why not.

    A directory must contain ``products.jsonl``; a file must have a known suffix
    (or ``fmt``). Relative image paths resolve in ``image_root`` if given, else
    in the directory, else in the file's directory.
    """
    if isinstance(path, CatalogLocation):
        return path
    source = Path(path)
    if source.is_dir():
        products = source / PRODUCTS_FILE
        if not products.is_file():
            raise ConfigError(f"catalog directory has no {PRODUCTS_FILE}", path=str(source), expected=_EXPECTED)
        directory: Path | None = source
    elif source.is_file():
        products, directory = source, None
    else:
        raise ConfigError("catalog not found", path=str(source), expected=_EXPECTED)
    chosen = fmt if fmt not in (None, "auto") else _SUFFIXES.get(products.suffix.lower())
    if chosen not in FORMATS:
        raise ConfigError("cannot tell the catalog format from the file name; pass format jsonl, csv or parquet",
                          setting="format", path=str(products), value=fmt, expected=_EXPECTED)
    root = Path(image_root) if image_root is not None else (directory or products.parent)
    return CatalogLocation(source=source, products_file=products, root_dir=root, format=str(chosen),
                           directory=directory)


def catalog_or_default(path: str | Path | None, image_root: str | Path | None = None) -> CatalogLocation:
    """``--catalog`` of the scripts that default to the shared catalog, found as ``make demo`` finds it."""
    if path is None:
        from mmsearch.config import default_catalog_dir

        path = default_catalog_dir()
        if path is None:
            raise ConfigError("no --catalog given and no shared catalog found: set MMSEARCH_CATALOG_DIR or put "
                              "it at ../shared/data/fashion-products beside the checkout", setting="catalog",
                              expected=_EXPECTED)
    return resolve_catalog(path, image_root=image_root)


@dataclass(frozen=True)
class CatalogConfig:
    """Where the catalog is and which column feeds which schema field.

    ``fields`` maps schema field -> source column; unmapped schema fields are
    read from a column of the same name. ``category_path`` is either a column
    (mapped explicitly) or built from ``category_levels`` joined with " > ".
    """

    path: Path
    format: str = "auto"
    fields: Mapping[str, str] = field(default_factory=dict)
    category_levels: tuple[str, ...] = ("master_category", "sub_category", "article_type")
    derive_brand: bool = True
    image_root: Path | None = None
    image_kind: str = "auto"
    allow_url_fetch: bool = False
    max_image_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "fields", dict(self.fields))
        object.__setattr__(self, "category_levels", tuple(self.category_levels))
        # A directory means its products.jsonl, exactly as on the command line.
        location = resolve_catalog(self.path, fmt=self.format)
        object.__setattr__(self, "path", location.products_file)
        object.__setattr__(self, "format", location.format)
        unknown = sorted(set(self.fields) - set(SCHEMA_FIELDS))
        if unknown:
            raise ConfigError("field mapping names unknown schema fields", setting="fields", unknown=unknown,
                              known=list(SCHEMA_FIELDS))
        for target, column in self.fields.items():
            if not isinstance(column, str) or not column:
                raise ConfigError("field mapping values must be column names", setting="fields", field=target)
        bad_levels = [lvl for lvl in self.category_levels if lvl not in SCHEMA_FIELDS]
        if bad_levels:
            raise ConfigError("category_levels must be schema fields", setting="category_levels", value=bad_levels)
        root = Path(self.image_root) if self.image_root is not None else self.path.parent
        object.__setattr__(self, "image_root", root.resolve())
        if self.image_kind not in IMAGE_KINDS:
            raise ConfigError("image_kind must be one of " + ", ".join(IMAGE_KINDS), setting="image_kind",
                              value=self.image_kind)
        if not 1024 <= self.max_image_bytes <= 256 * 1024 * 1024:
            raise ConfigError("max_image_bytes must be in [1 KiB, 256 MiB]", setting="max_image_bytes",
                              value=self.max_image_bytes)

    def column(self, schema_field: str) -> str:
        return self.fields.get(schema_field, schema_field)

    @classmethod
    def from_file(cls, config_path: str | Path, **overrides: Any) -> CatalogConfig:
        """Read a JSON/YAML field-mapping file; relative paths in it are relative to the file."""
        config_path = Path(config_path)
        data = read_mapping_file(config_path, "catalog config")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("unknown keys in catalog config", path=str(config_path), unknown=unknown,
                              known=sorted(known))
        for key in ("path", "image_root"):
            if data.get(key) is not None and not Path(data[key]).is_absolute():
                data[key] = config_path.parent / data[key]
        data.update({k: v for k, v in overrides.items() if v is not None})
        if "path" not in data:
            raise ConfigError("catalog config needs a path (or pass --catalog)", path=str(config_path))
        if "category_levels" in data:
            data["category_levels"] = tuple(data["category_levels"])
        return cls(**data)


@dataclass(frozen=True)
class CatalogItem:
    """One catalog record, or the reason it could not be read. ``position`` is file:line (or :row)."""

    position: str
    record: dict[str, Any] | None = None
    error: str | None = None
    raw: str | None = None

    @property
    def ok(self) -> bool:
        return self.record is not None


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "...[truncated]"


def read_jsonl(path: Path) -> Iterator[CatalogItem]:
    # Binary mode + per-line decode: one line of invalid UTF-8 is a bad record, not a dead run.
    with open(path, "rb") as handle:
        for number, line_bytes in enumerate(handle, start=1):
            position = f"{path.name}:{number}"
            try:
                line = line_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield CatalogItem(position, error=f"invalid UTF-8: {exc}", raw=_truncate(repr(line_bytes)))
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield CatalogItem(position, error=f"bad JSON: {exc.msg} at column {exc.colno}",
                                  raw=_truncate(line.rstrip("\n")))
                continue
            if not isinstance(record, dict):
                yield CatalogItem(position, error=f"record is a JSON {type(record).__name__}, not an object",
                                  raw=_truncate(line.rstrip("\n")))
                continue
            yield CatalogItem(position, record=record)


def read_csv(path: Path) -> Iterator[CatalogItem]:
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            return
        for row in reader:
            position = f"{path.name}:{reader.line_num}"
            if None in row:  # more cells than header columns: the row is misaligned
                yield CatalogItem(position, error="CSV row has more cells than the header",
                                  raw=_truncate(json.dumps(row, default=str)))
                continue
            # Empty cells are "no value" in CSV; None keeps them out of the document.
            yield CatalogItem(position, record={k: (v if v != "" else None) for k, v in row.items()})


def read_parquet(path: Path, batch_rows: int = 2048) -> Iterator[CatalogItem]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses
        raise IndexingError("cannot open Parquet catalog", path=str(path), detail=str(exc)) from exc
    row = 0
    for batch in parquet.iter_batches(batch_size=batch_rows):
        for record in batch.to_pylist():
            row += 1
            yield CatalogItem(f"{path.name}:row{row}", record=record)


def read_catalog(config: CatalogConfig) -> Iterator[CatalogItem]:
    reader = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}[config.format]
    return reader(config.path)


@dataclass
class SkippedRecords:
    """Bad records a reader skipped (bad JSON, invalid UTF-8, not an object, misaligned CSV row)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, item: CatalogItem) -> None:
        self.count += 1
        if len(self.examples) < 3:  # enough to find the problem, short enough for one line
            self.examples.append(f"{item.position}: {item.error}")


def _good_records(items: Iterator[CatalogItem], source: Path,
                  skipped: SkippedRecords | None) -> Iterator[dict[str, Any]]:
    # The indexer dead-letters bad records; every other reader skips them the same way and
    # says so once, on stderr (stdout is the commands' JSON result).
    local = SkippedRecords()
    for item in items:
        if item.record is not None:
            yield item.record
            continue
        local.add(item)
        if skipped is not None:
            skipped.add(item)
    if local.count:
        print(f"warning: skipped {local.count} bad record(s) in {source}: " + "; ".join(local.examples)
              + ("; ..." if local.count > len(local.examples) else ""), file=sys.stderr)


def iter_product_records(catalog: str | Path | CatalogLocation,
                         skipped: SkippedRecords | None = None) -> Iterator[dict[str, Any]]:
    """The raw records of a catalog (directory or file) for tools outside the indexer.

    Same readers as ``mmsearch index build``; a bad record is skipped, counted
    (into ``skipped`` if given) and reported on stderr after the last record.
    No field mapping is applied: columns must carry the schema names.
    """
    location = resolve_catalog(catalog)
    return _good_records(read_catalog(location.config()), location.products_file, skipped)


def iter_jsonl_records(path: str | Path, skipped: SkippedRecords | None = None) -> Iterator[dict[str, Any]]:
    """Another JSONL file of a catalog (``dev_queries.jsonl``): the same reader and bad-line rule."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found", path=str(path))
    return _good_records(read_jsonl(path), path, skipped)


def count_records(config: CatalogConfig) -> int | None:
    """Cheap record count for the progress bar (None when it would need a full parse)."""
    if config.format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(config.path).metadata.num_rows)
    if config.format == "jsonl":
        with open(config.path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    return None


# --- parts: one catalog split over several indexer processes ----------------------

_PART = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
#: More parts than this is a typo (each part is a process with its own encoder).
MAX_PARTS = 4096


def part_of(key: str, count: int) -> int:
    """The 1-based part (of ``count``) that owns ``key``.

    A stable hash of the key alone, not Python's salted ``hash()`` and not the line number: every
    process, on every machine, puts a product in the same part, and adding or reordering products
    never moves the others to another part (which would re-index them or leave stale copies).
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class CatalogPart:
    """Part ``number`` of ``count`` (``--shard i/n``, 1-based): the products whose id hashes to it."""

    number: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.count, int) and 1 <= self.count <= MAX_PARTS):
            raise ConfigError(f"the number of parts must be in [1, {MAX_PARTS}]", setting="shard", count=self.count)
        if not (isinstance(self.number, int) and 1 <= self.number <= self.count):
            raise ConfigError("the part must be in [1, n] (parts are numbered from 1)", setting="shard",
                              part=self.number, count=self.count)

    @classmethod
    def parse(cls, text: str) -> CatalogPart:
        """``"2/3"`` -> part 2 of 3."""
        match = _PART.match(text or "")
        if not match:
            raise ConfigError("--shard takes i/n, e.g. 2/3 (part i of n, from 1)", setting="shard", value=text)
        return cls(number=int(match.group(1)), count=int(match.group(2)))

    @property
    def whole(self) -> bool:
        return self.count == 1

    @property
    def label(self) -> str:
        """``part2of3``: what per-part file names (dead letters) carry."""
        return f"part{self.number}of{self.count}"

    def owns(self, product_id: str) -> bool:
        return part_of(product_id, self.count) == self.number

    def select(self, items: Iterable[CatalogItem], id_of: Callable[[dict[str, Any]], str | None]
               ) -> Iterator[CatalogItem]:
        """The items of this part; ``id_of`` is the product id of a record (None when it has none).

        A record without a usable id (or a line that could not be read) belongs to the part its
        position hashes to, so exactly one part dead-letters it instead of every part.
        """
        for item in items:
            if self.whole:
                yield item
                continue
            key = id_of(item.record) if item.record is not None else None
            if key is None:
                key = "position:" + item.position
            if self.owns(key):
                yield item

"""Catalog readers (JSONL, CSV, Parquet) and the field-mapping config that maps columns to the schema.

Readers never raise on a bad record: they yield :class:`CatalogItem` objects
that carry either a parsed record or the reason it could not be parsed, so the
pipeline can send the bad ones to the dead-letter file and keep going. Only a
catalog that cannot be opened at all (missing file, unknown format, unreadable
Parquet footer) is an error for the whole run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
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
        if not self.path.is_file():
            raise ConfigError("catalog file not found", setting="catalog", path=str(self.path))
        fmt = self.format if self.format != "auto" else _SUFFIXES.get(self.path.suffix.lower())
        if fmt not in FORMATS:
            raise ConfigError("cannot tell the catalog format; pass format jsonl, csv or parquet",
                              setting="format", path=str(self.path), value=self.format)
        object.__setattr__(self, "format", fmt)
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


def count_records(config: CatalogConfig) -> int | None:
    """Cheap record count for the progress bar (None when it would need a full parse)."""
    if config.format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(config.path).metadata.num_rows)
    if config.format == "jsonl":
        with open(config.path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    return None

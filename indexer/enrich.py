"""Drop-in upgrade of an existing keyword index into a hybrid one (``index enrich --from``).

Reads every document of the legacy index with point-in-time + search_after (no
reindex module needed), keeps every original field, adds ``text_vector``,
``image_vector`` and ``content_hash``, and writes into a new index whose mapping
is the legacy mapping plus those fields. The application keeps sending the
same queries to the same name:

* if it queries an alias, that alias moves to the new index in one ``_aliases`` call;
* if it queries the legacy index *name*, ``--replace-legacy`` (explicit, because
  it deletes the legacy index) runs, only after the new index validated, one
  ``_aliases`` call that removes the legacy index and adds an alias with its name.
  Writes to the legacy index are blocked during the copy so none can be lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.documents import BuildSummary
from indexer.images import ImageSource
from indexer.lifecycle import alias_targets, index_exists, iter_hits, spec_for, validate
from indexer.naming import check_model, new_version_name, plan_replace_legacy, plan_swap
from indexer.pipeline import DeadLetterWriter, PipelineConfig, Prepared, run_pipeline
from mappings import ModelFacts, VectorConfig, build_enriched_body
from mmsearch.exceptions import ConfigError, IndexingError
from mmsearch.gateway import body_of, guarded


@dataclass(frozen=True)
class EnrichConfig:
    """Which legacy fields feed the encoders, and where the application's name should end up."""

    source_index: str
    alias: str | None = None
    text_fields: tuple[str, ...] = ()
    text_separator: str = ", "
    image_field: str | None = None
    image_root: Path | None = None
    image_kind: str = "auto"
    allow_url_fetch: bool = False
    max_image_bytes: int = 16 * 1024 * 1024
    replace_legacy: bool = False
    switch: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.source_index or any(c in self.source_index for c in "*,?"):
            raise ConfigError("--from must name one index (no wildcards or lists)", value=self.source_index)
        object.__setattr__(self, "text_fields", tuple(f for f in self.text_fields if f))
        if self.image_root is not None:
            object.__setattr__(self, "image_root", Path(self.image_root).resolve())
            if not self.image_root.is_dir():
                raise ConfigError("image root is not a directory", setting="image_root", path=str(self.image_root))
        if self.image_field and self.image_root is None and not self.allow_url_fetch:
            # Without a root there is nothing local to read from; base64 values still work.
            object.__setattr__(self, "image_root", Path.cwd().resolve())


def get_path(source: Mapping[str, Any], dotted: str) -> Any:
    """``a.b`` lookup in a _source (objects only; the first element of a list)."""
    value: Any = source
    for part in dotted.split("."):
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def legacy_text(source: Mapping[str, Any], fields: Sequence[str], separator: str) -> str:
    parts = []
    for name in fields:
        value = get_path(source, name)
        values = value if isinstance(value, list) else [value]
        parts.extend(str(v).strip() for v in values if v not in (None, "") and str(v).strip())
    return separator.join(parts)


def enriched_source(doc: Mapping[str, Any], text_vector: Any, image_vector: Any, digest: str) -> dict[str, Any]:
    """The original _source untouched, plus vectors and content hash (legacy mappings may be strict)."""
    out = dict(doc)
    out["content_hash"] = digest
    if text_vector is not None:
        out["text_vector"] = text_vector.tolist() if hasattr(text_vector, "tolist") else list(text_vector)
    if image_vector is not None:
        out["image_vector"] = image_vector.tolist() if hasattr(image_vector, "tolist") else list(image_vector)
    return out


def _legacy_docs(es: Any, config: EnrichConfig, summary: BuildSummary) -> Iterator[Prepared]:
    for hit in iter_hits(es, config.source_index, source=True):
        summary.read += 1
        source = hit.get("_source") or {}
        ref = get_path(source, config.image_field) if config.image_field else None
        yield Prepared(position=f"{config.source_index}/{hit['_id']}", doc_id=hit["_id"], doc=source,
                       image_ref=str(ref) if isinstance(ref, str) and ref.strip() else None)


def _application_name(es: Any, config: EnrichConfig) -> tuple[str, bool, list[str]]:
    """(the name the application queries, whether that is the legacy index's own name, its aliases)."""
    legacy = config.source_index
    if not index_exists(es, legacy) or alias_targets(es, legacy):
        raise IndexingError("--from must be an existing concrete index (not an alias)", index=legacy)
    aliases_body = body_of(guarded("read legacy aliases", lambda: es.indices.get_alias(index=legacy), index=legacy))
    legacy_aliases = sorted((aliases_body.get(legacy) or {}).get("aliases") or {})
    app_name = config.alias or (legacy_aliases[0] if len(legacy_aliases) == 1 else None)
    if app_name is None and len(legacy_aliases) > 1:
        raise ConfigError("the legacy index has several aliases; say which one the application queries with "
                          "--alias", aliases=legacy_aliases)
    direct = app_name is None
    if direct and config.switch and not config.replace_legacy:
        raise ConfigError(f"the application queries {legacy!r} by name; pass --replace-legacy to replace that "
                          "index by an alias of the same name once the new index validates, or --no-switch "
                          "to only build the new index", index=legacy)
    return app_name or legacy, direct, legacy_aliases  # direct: the application queries the index name itself


def _create_target(es: Any, encoder: Any, legacy: str, app_name: str, vectors: VectorConfig,
                   capabilities: Any) -> str:
    """A new version of ``app_name`` whose mapping is the legacy one plus the vector fields."""
    raw = body_of(guarded("read legacy index", lambda: es.indices.get(index=legacy), index=legacy))[legacy]
    spec = spec_for(es, encoder, vectors, None, f"enrich:{legacy}", capabilities)
    body = build_enriched_body(raw.get("mappings") or {}, raw.get("settings") or {}, spec)
    taken = set(body_of(guarded("list indices", lambda: es.indices.get(index=f"{app_name}-v*", expand_wildcards="all"),
                                alias=app_name)))
    target = new_version_name(app_name, dt.datetime.now(dt.timezone.utc), taken)
    guarded("create enriched index", lambda: es.indices.create(index=target, settings=body["settings"],
                                                               mappings=body["mappings"]), index=target)
    return target


def enrich(es: Any, encoder: Any, config: EnrichConfig, *, state_dir: Path,
           vectors: VectorConfig = VectorConfig(), pipeline: PipelineConfig = PipelineConfig(),
           loaded_identity: str | None = None, force: bool = False, capabilities: Any = None) -> dict[str, Any]:
    legacy = config.source_index
    app_name, direct, legacy_aliases = _application_name(es, config)
    target = _create_target(es, encoder, legacy, app_name, vectors, capabilities)
    blocked = False
    if direct and config.replace_legacy:
        # The legacy index will be deleted: a write landing after the copy would be lost.
        guarded("block writes on legacy index",
                lambda: es.indices.put_settings(index=legacy, settings={"index.blocks.write": True}), index=legacy)
        blocked = True
    summary = BuildSummary()
    dead = DeadLetterWriter(Path(state_dir) / "deadletter" / f"{target}.jsonl")
    images = ImageSource(root=config.image_root or Path.cwd(), kind=config.image_kind,
                         allow_url_fetch=config.allow_url_fetch, max_bytes=config.max_image_bytes)
    fields = config.text_fields

    def text_of(doc: Mapping[str, Any]) -> str:
        return legacy_text(doc, fields, config.text_separator) if fields else encoder.product_text(doc)

    try:
        guarded("disable refresh", lambda: es.indices.put_settings(
            index=target, settings={"index": {"refresh_interval": "-1"}}), index=target)
        legacy_count = int(body_of(guarded("count", lambda: es.count(index=legacy), index=legacy))["count"])
        run_pipeline(es, encoder, _legacy_docs(es, config, summary), target, images, dead, pipeline,
                     summary=summary, total=legacy_count if pipeline.progress else None, text_of=text_of,
                     source_of=enriched_source)
        guarded("restore refresh interval", lambda: es.indices.put_settings(
            index=target, settings={"index": {"refresh_interval": None}}), index=target)
        report = validate(es, target, expected_docs=legacy_count, model=ModelFacts.from_encoder(encoder))
        if not report["ok"]:
            raise IndexingError("enriched index failed validation; nothing was switched", index=target,
                                checks=report["checks"], dead_letters=str(dead.path))
        result: dict[str, Any] = {"legacy_index": legacy, "index": target, "app_name": app_name,
                                  "summary": summary.to_dict(), "validation": report, "switched": False}
        if not config.switch:
            result["next_step"] = (f"mmsearch index swap --alias {app_name} --index {target}" if not direct else
                                   f"mmsearch index enrich --from {legacy} --replace-legacy (or delete {legacy} "
                                   f"and add alias {legacy} -> {target} in one _aliases call)")
            return result
        if loaded_identity is not None:
            check_model(target, str(encoder.identity), loaded_identity, force)
        if direct:
            actions = plan_replace_legacy(legacy, target)
            # Other aliases the legacy index carried must survive its deletion.
            actions += [{"add": {"index": target, "alias": name}} for name in legacy_aliases]
        else:
            actions = plan_swap(app_name, target, alias_targets(es, app_name))
        guarded("switch application name", lambda: es.indices.update_aliases(actions=actions), alias=app_name)
        blocked = False  # the legacy index is gone (replace) or keeps its block state below
        result["switched"] = True
        result["aliases_actions"] = actions
        return result
    finally:
        dead.close()
        if blocked and index_exists(es, legacy):
            guarded("unblock writes on legacy index",
                    lambda: es.indices.put_settings(index=legacy, settings={"index.blocks.write": None}), index=legacy)

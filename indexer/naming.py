"""Pure lifecycle decisions: versioned names, alias swap plans, rollback and prune targets.

Kept apart from the ES calls in ``indexer.lifecycle`` so the rules (one atomic
``_aliases`` body, never prune an aliased index, roll back to the index the
alias came from) are unit-tested exactly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from mmsearch.exceptions import IndexingError, ModelMismatchError

VERSION_FORMAT = "%Y%m%d%H%M%S"
_VERSION = re.compile(r"^(?P<alias>.+)-v(?P<stamp>\d{14})$")


def version_name(alias: str, when: dt.datetime) -> str:
    return f"{alias}-v{when.astimezone(dt.timezone.utc).strftime(VERSION_FORMAT)}"


def new_version_name(alias: str, now: dt.datetime, existing: Collection[str]) -> str:
    """``<alias>-v<UTC timestamp>``, moved forward a second at a time past names already taken."""
    when = now
    name = version_name(alias, when)
    while name in existing:
        when += dt.timedelta(seconds=1)
        name = version_name(alias, when)
    return name


def parse_version(name: str, alias: str) -> dt.datetime | None:
    match = _VERSION.match(name)
    if not match or match.group("alias") != alias:
        return None
    try:
        return dt.datetime.strptime(match.group("stamp"), VERSION_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def versions_newest_first(alias: str, names: Iterable[str]) -> list[str]:
    dated = [(parse_version(n, alias), n) for n in names]
    return [n for when, n in sorted(((w, n) for w, n in dated if w is not None), reverse=True)]


def plan_swap(alias: str, target: str, current: Collection[str]) -> list[dict[str, Any]]:
    """One ``_aliases`` body: remove the alias from every index it is on and add it to ``target``.

    ES applies the whole list atomically, so searches on the alias see either
    the old index or the new one, never neither and never both.
    """
    actions: list[dict[str, Any]] = [{"remove": {"index": name, "alias": alias}}
                                     for name in sorted(current) if name != target]
    actions.append({"add": {"index": target, "alias": alias}})
    return actions


def plan_replace_legacy(legacy_index: str, target: str) -> list[dict[str, Any]]:
    """Delete the legacy concrete index and give its name to ``target`` as an alias, atomically."""
    return [{"remove_index": {"index": legacy_index}}, {"add": {"index": target, "alias": legacy_index}}]


def pick_rollback(alias: str, current: str, candidates: Iterable[str], swapped_from: str | None) -> str:
    """Where ``rollback`` goes: the index the alias was swapped away from, else the next older version."""
    existing = set(candidates)
    if swapped_from and swapped_from in existing and swapped_from != current:
        return swapped_from
    ordered = versions_newest_first(alias, existing | {current})
    if current in ordered:
        older = ordered[ordered.index(current) + 1:]
        if older:
            return older[0]
    raise IndexingError("no previous version to roll back to", alias=alias, current=current)


def plan_prune(alias: str, names: Iterable[str], aliased: Mapping[str, Collection[str]], keep: int) -> list[str]:
    """Versioned indices to delete: all but the ``keep`` newest, and never one that carries any alias."""
    if keep < 1:
        raise IndexingError("--keep must be at least 1", keep=keep)
    ordered = versions_newest_first(alias, names)
    return [name for name in ordered[keep:] if not aliased.get(name)]


def check_model(index: str, index_identity: str | None, loaded_identity: str | None, force: bool) -> None:
    """Refuse to serve an index built with another model than the query service runs (unless forced)."""
    if force:
        return
    if loaded_identity is None:
        raise ModelMismatchError("cannot check the model: give --model (or set MMSEARCH_MODEL_DIR) or --force",
                                 index=index)
    if index_identity != loaded_identity:
        raise ModelMismatchError("index was built with a different model than the one loaded; use --force to "
                                 "override", index=index, index_model=str(index_identity)[:16],
                                 loaded_model=loaded_identity[:16])

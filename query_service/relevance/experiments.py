"""Online experiments: config, deterministic sticky bucketing, hot reload.

Config file (YAML or JSON)::

    id: hybrid-vs-bm25
    salt: 2026-11
    mode: ab               # or "interleave" (exactly two variants, named A and B)
    start: 2026-11-01T00:00:00Z   # optional
    stop:  2026-12-01T00:00:00Z   # optional
    variants:
      - {name: control, share: 0.5, ranking: {legs: {bm25: 1.0}}}
      - {name: hybrid,  share: 0.5, ranking: {method: rrf}}

A unit (user or session id) always lands in the same variant: the bucket is
``sha256(salt + ":" + unit)`` read as a number in [0, 1), compared against the
cumulative shares. Changing the salt reshuffles everyone; changing shares moves
only the units near the boundaries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch.config import read_mapping_file
from mmsearch.exceptions import ConfigError

MODES = ("ab", "interleave")
RELOAD_CHECK_S = 1.0  # stat() the file at most once a second


def bucket(salt: str, unit_id: str) -> float:
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick_variant(salt: str, unit_id: str, names: Sequence[str], shares: Sequence[float]) -> str:
    point = bucket(salt, unit_id) * sum(shares)
    cumulative = 0.0
    for name, share in zip(names, shares):
        cumulative += share
        if point < cumulative:
            return name
    return names[-1]


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    ranking: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    id: str
    salt: str
    variants: tuple[Variant, ...]
    mode: str = "ab"
    start: dt.datetime | None = None
    stop: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not self.id or not self.salt:
            raise ConfigError("an experiment needs an id and a salt")
        if self.mode not in MODES:
            raise ConfigError("mode must be ab or interleave", mode=self.mode)
        names = [v.name for v in self.variants]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ConfigError("an experiment needs at least two uniquely named variants", variants=names)
        if any(not 0 < v.share <= 1 for v in self.variants) or abs(sum(v.share for v in self.variants) - 1) > 1e-6:
            raise ConfigError("variant shares must be in (0, 1] and sum to 1",
                              shares=[v.share for v in self.variants])
        if self.mode == "interleave" and sorted(names) != ["A", "B"]:
            raise ConfigError("interleaving needs exactly two variants named A and B", variants=names)
        if self.start and self.stop and self.stop <= self.start:
            raise ConfigError("stop must be after start")
        from query_service.ranking import RankingConfig

        for variant in self.variants:  # fail at load time, not on the first request
            RankingConfig.from_dict({"name": variant.name, **dict(variant.ranking)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        try:
            variants = tuple(Variant(name=str(v["name"]), share=float(v["share"]), ranking=dict(v.get("ranking") or {}))
                             for v in data["variants"])
            return cls(id=str(data["id"]), salt=str(data["salt"]), variants=variants, mode=data.get("mode", "ab"),
                       start=_time(data.get("start")), stop=_time(data.get("stop")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError("malformed experiment config", error=str(exc)) from exc

    def active(self, now: dt.datetime) -> bool:
        return (self.start is None or now >= self.start) and (self.stop is None or now < self.stop)

    @property
    def shares(self) -> dict[str, float]:
        return {v.name: v.share for v in self.variants}


def _time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Assignment:
    experiment_id: str
    variant: str
    mode: str
    rankings: dict[str, dict[str, Any]]


def assign(config: ExperimentConfig, unit_id: str, now: dt.datetime | None = None) -> Assignment | None:
    if not config.active(now or dt.datetime.now(dt.timezone.utc)):
        return None
    rankings = {v.name: dict(v.ranking) for v in config.variants}
    if config.mode == "interleave":
        return Assignment(config.id, "interleave", "interleave", rankings)
    name = pick_variant(config.salt, unit_id, [v.name for v in config.variants], [v.share for v in config.variants])
    return Assignment(config.id, name, "ab", rankings)


def load_config(path: Path) -> ExperimentConfig:
    return ExperimentConfig.from_dict(read_mapping_file(Path(path), "experiment file"))


class ExperimentManager:
    """Serves assignments from a config file, reloading it when its mtime changes.

    A broken edit keeps the last good config running (and records the error),
    so a typo cannot take the experiment, or the service, down.
    """

    def __init__(self, source: str | Path | ExperimentConfig) -> None:
        self._lock = threading.Lock()
        self.path = None if isinstance(source, ExperimentConfig) else Path(source)
        self.last_error: str | None = None
        self._mtime = 0.0
        self._checked = 0.0
        if isinstance(source, ExperimentConfig):
            self.config = source
        else:
            self.config = load_config(self.path)
            self._mtime = os.stat(self.path).st_mtime

    def _maybe_reload(self) -> None:
        if self.path is None or time.monotonic() - self._checked < RELOAD_CHECK_S:
            return
        with self._lock:
            self._checked = time.monotonic()
            try:
                mtime = os.stat(self.path).st_mtime
                if mtime != self._mtime:
                    self.config = load_config(self.path)
                    self._mtime = mtime
                    self.last_error = None
            except (OSError, ConfigError) as exc:
                self.last_error = str(exc)

    def reload_now(self) -> None:
        self._checked = 0.0
        self._mtime = -1.0
        self._maybe_reload()

    def assign(self, unit_id: str) -> Assignment | None:
        self._maybe_reload()
        return assign(self.config, unit_id)

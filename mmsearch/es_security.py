"""Least-privilege API keys for the query service and the indexer.

The role descriptors are plain data (``service_role``, ``indexer_role``); ``create_api_key``
is the one call that mints a key with them, made with whatever (admin) credentials the client
holds. Each privilege below was kept only because a live test failed without it
(``tests/live/test_secure_node.py``); the *why* sits next to it.

Product indices are ``<alias>`` and its versions ``<alias>-v<YYYYmmddHHMMSS>`` (``indexer.naming``),
so both roles name the alias and a regular expression for exactly those versions, nothing wider: a
key for alias ``products`` cannot touch ``products-vault``, ``products_other`` or any other index.

The same descriptors serve two kinds of credentials: API keys (``create_api_key``, for clusters whose
``.security`` index works) and the local node's file-realm users (``LocalNode.add_file_user``, which
writes them to ``roles.yml``). Why both: the local node runs the integ-test-zip distribution, whose
``.security`` index cannot be created (its mapping needs the analysis-common module), so it can mint
no API keys at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmsearch.exceptions import ClusterError, ConfigError
from mmsearch.gateway import body_of, guarded

ROLES = ("service", "indexer")


def product_indices(alias: str) -> list[str]:
    """The alias and its versioned indices (``indexer.naming.version_name``) as an ES index-privilege
    regular expression (``/.../``, Lucene syntax): ``products-v`` and 14 digits, never ``products-v*``."""
    escaped = "".join(f"\\{char}" if char in ".-" else char for char in alias)
    return [alias, f"/{escaped}\\-v[0-9]{{14}}/"]


def service_role(alias: str, events_index: str | None = None,
                 extra_read_indices: Sequence[str] = ()) -> dict[str, Any]:
    """What the query service may do: read the product alias, nothing else unless asked.

    - cluster ``monitor``: ``/readyz`` calls ``_cluster/health``, and capability detection at start
      reads ``_nodes/plugins`` (without it detection falls back to probes that report rank_rrf and
      reindex as missing).
    - ``read`` on the product indices: ``_search`` / ``_msearch`` / ``_count`` / PIT for every search leg
      and the ES-compatible proxy.
    - ``view_index_metadata``: ``_alias`` (which index the alias points at) and ``_mapping`` (the index's
      ``_meta``, the model identity readiness compares) and the proxy's ``_mapping`` / ``_field_caps``.
    - ``monitor`` on the product indices: the /ops page's index status (``_stats`` docs and size).
    - events (only with ``events_index``): ``create_doc`` for the exposure/click bulk writes (append
      only: ``EventLogger`` sends ``create`` actions with its own event ids; an ``index`` action, which
      could overwrite an event, is refused), ``view_index_metadata`` for the logger's start-up existence
      check, and ``read`` for the /ops page's experiment report. No update, no delete. The events index itself is created by whoever
      mints the key (``mmsearch node api-key --events-index``), so the service needs no ``create_index``.
    - ``extra_read_indices``: ``Settings.proxy_indices``, relayed read-only by the proxy.
    """
    indices: list[dict[str, Any]] = [
        {"names": product_indices(alias), "privileges": ["read", "view_index_metadata", "monitor"]},
    ]
    if events_index:
        indices.append({"names": [events_index], "privileges": ["create_doc", "view_index_metadata", "read"]})
    if extra_read_indices:
        indices.append({"names": list(extra_read_indices), "privileges": ["read", "view_index_metadata"]})
    return {"cluster": ["monitor"], "indices": indices}


def indexer_role(alias: str) -> dict[str, Any]:
    """What ``mmsearch index build|swap|rollback|status|prune|enrich`` may do, on the product indices only.

    - cluster ``monitor``: capability detection (``_nodes/plugins``) decides the index's analysis
      (server-side English analysis or client-side) before the index is created.
    - ``manage``: create the versioned index, put settings (refresh off during the load), refresh,
      force merge, put ``_meta``, ``_aliases`` swaps and rollbacks (ES asks ``manage`` on both the index
      and the alias name), stats for ``status``, deleting old versions in ``prune``.
    - ``index``: the bulk load (``index`` actions with our ids; ``write`` would add delete, never used).
    - ``read``: resumable builds read the existing content hashes (PIT search); ``validate`` counts.
    """
    return {"cluster": ["monitor"], "indices": [
        {"names": product_indices(alias), "privileges": ["manage", "index", "read"]},
    ]}


@dataclass(frozen=True)
class ApiKey:
    """A freshly minted key. ``encoded`` is the secret (``Settings.api_key``); kept out of repr."""

    id: str
    name: str
    encoded: str
    expiration_ms: int | None = None

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, name={self.name!r}, encoded='***')"


def role_name(role: str, alias: str) -> str:
    """One role per (kind, alias): ``mmsearch_service_products``."""
    return f"mmsearch_{role}_{alias}"


def role_for(role: str, alias: str, events_index: str | None = None,
             extra_read_indices: Sequence[str] = ()) -> dict[str, Any]:
    if role == "service":
        return service_role(alias, events_index, extra_read_indices)
    if role == "indexer":
        if events_index or extra_read_indices:
            raise ConfigError("--events-index and --read-index apply to the service key only", role=role)
        return indexer_role(alias)
    raise ConfigError(f"unknown role; choose one of {', '.join(ROLES)}", role=role)


def create_api_key(es: Any, name: str, role_descriptors: Mapping[str, Any],
                   expiration: str | None = None) -> ApiKey:
    """Mint one API key limited to ``role_descriptors`` (and, as ES always does, to the caller's own rights)."""
    kwargs: dict[str, Any] = {"name": name, "role_descriptors": dict(role_descriptors),
                              "metadata": {"created_by": "mmsearch"}}
    if expiration:
        kwargs["expiration"] = expiration
    try:
        body = body_of(guarded("create API key", lambda: es.security.create_api_key(**kwargs), name=name))
    except ClusterError as exc:
        if "pattern_capture" not in str(exc.context.get("error", "")):
            raise
        # ES could not create its .security index: its mapping uses analysis-common's filters.
        raise ClusterError("this cluster cannot store API keys: its .security index needs the analysis-common "
                           "module, which the integ-test-zip distribution (the local node) lacks; on the local "
                           "node use `mmsearch node credentials` (a file-realm user with the same role)",
                           name=name) from exc
    return ApiKey(id=str(body["id"]), name=str(body["name"]), encoded=str(body["encoded"]),
                  expiration_ms=body.get("expiration"))


def ensure_index(es: Any, index: str, mappings: Mapping[str, Any]) -> bool:
    """Create ``index`` with ``mappings`` unless it exists; True when created here."""
    if guarded("check index", lambda: es.indices.exists(index=index), index=index):
        return False
    guarded("create index", lambda: es.indices.create(index=index, mappings=dict(mappings)), index=index)
    return True

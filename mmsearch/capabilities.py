"""What the connected cluster can do, so later code picks analyzers and query paths that exist.

The integ-test distribution we run locally has only a handful of modules (no
analysis-common, painless, rank-rrf or reindex) and not even the ``GET /``
endpoint; the official image has all of them. Detection therefore reads the
node module lists (``_nodes/plugins``) and, where that API is forbidden (hosted
clusters with restricted users), falls back to probing behaviour.

Every call runs in ``mmsearch.gateway.guarded``: an unreachable node raises
``ClusterUnavailableError`` (503) as everywhere else; an answer that refuses one
call (403, 400, ...) only degrades what that call would have told us.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mmsearch.exceptions import ClusterAuthError, ClusterError
from mmsearch.gateway import body_of, guarded, is_authorization_error, status_of

# module names as ES reports them -> our feature names
_FEATURE_MODULES = {
    "analysis_common": "analysis-common",
    "painless": "lang-painless",
    "rank_rrf": "rank-rrf",
    "reindex": "reindex",
}
# Licenses under which the rrf/linear retrievers may be used.
_RETRIEVER_LICENSES = {"enterprise", "trial"}


@dataclass(frozen=True)
class ClusterCapabilities:
    version: str
    version_tuple: tuple[int, int, int]
    license_type: str
    security_enabled: bool | None
    modules: frozenset[str] = field(default_factory=frozenset)
    analysis_common: bool = False
    painless: bool = False
    rank_rrf: bool = False
    reindex: bool = False
    detected_by: str = "nodes_api"

    @property
    def native_rrf_usable(self) -> bool:
        """The rrf retriever needs the module and a license that allows it."""
        return self.rank_rrf and self.license_type in _RETRIEVER_LICENSES

    @property
    def english_analyzer_available(self) -> bool:
        return self.analysis_common

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["modules"] = sorted(self.modules)
        data["version_tuple"] = list(self.version_tuple)
        data["native_rrf_usable"] = self.native_rrf_usable
        return data


def capabilities_from_responses(nodes_plugins: dict[str, Any], license_body: dict[str, Any] | None,
                                security_enabled: bool | None = None) -> ClusterCapabilities:
    """Pure parsing of ``_nodes/plugins`` and ``_license``; a feature counts only if every node has it."""
    nodes = list((nodes_plugins.get("nodes") or {}).values())
    if not nodes:
        raise ClusterError("the _nodes/plugins response lists no nodes")
    per_node = [
        {m["name"] for m in node.get("modules", [])} | {p["name"] for p in node.get("plugins", [])}
        for node in nodes
    ]
    common = frozenset(set.intersection(*per_node))
    version = min((node.get("version", "0.0.0") for node in nodes), key=_version_tuple)
    license_type = ((license_body or {}).get("license") or {}).get("type", "unknown")
    flags = {feature: module in common for feature, module in _FEATURE_MODULES.items()}
    return ClusterCapabilities(version=version, version_tuple=_version_tuple(version), license_type=license_type,
                               security_enabled=security_enabled, modules=common, **flags)


def detect_capabilities(es: Any) -> ClusterCapabilities:
    """Ask the cluster. ``es`` is an ``elasticsearch.Elasticsearch`` client."""
    license_body = _license(es)
    security = _security_enabled(es)
    try:
        plugins = _body(guarded("read node plugins", lambda: es.nodes.info(metric="plugins")))
    except ClusterAuthError as exc:
        if not is_authorization_error(exc):  # 401: wrong credentials, probing would fail the same way
            raise
        return _probe(es, license_body, security)  # 403: a restricted user, behaviour still tells
    return capabilities_from_responses(plugins, license_body, security)


def _license(es: Any) -> dict[str, Any] | None:
    # Any refusal (forbidden, no license API) leaves the license unknown; it is not an error.
    return _answer("read license", lambda: es.license.get())


def _answer(what: str, call: Callable[[], Any]) -> dict[str, Any] | None:
    """The body of one call, or None when ES answered with a refusal; an unreachable node still raises
    (``ClusterUnavailableError``): nothing else would answer either."""
    try:
        return _body(guarded(what, call))
    except ClusterError as exc:
        if status_of(exc) is None:
            raise
        return None


def _security_enabled(es: Any) -> bool | None:
    try:
        guarded("authenticate", lambda: es.security.authenticate())
        return True
    except ClusterError as exc:
        status = status_of(exc)
        if status is None:
            raise
        # With security off the security APIs answer 400/500 "security is not enabled".
        if "not enabled" in str(exc).lower() or status in (400, 500):
            return False
        return None


def _probe(es: Any, license_body: dict[str, Any] | None, security: bool | None) -> ClusterCapabilities:
    """Behavioural detection for users who may not call the nodes API; a refused probe means "missing"."""

    def works(what: str, call: Callable[[], Any]) -> bool:
        return _answer(what, call) is not None

    version = _answer("read node version", lambda: es.nodes.info(node_id="_local", metric="_none",
                                                                   filter_path="nodes.*.version")) or {}
    version_str = next(iter((version.get("nodes") or {"x": {"version": "0.0.0"}}).values()))["version"]
    analysis_common = works("probe analysis-common", lambda: es.indices.analyze(
        tokenizer="standard", filter=["porter_stem"], text="running"))
    painless = works("probe painless", lambda: es.scripts_painless_execute(script={"source": "1 + 1"}))
    return ClusterCapabilities(
        version=version_str, version_tuple=_version_tuple(version_str),
        license_type=((license_body or {}).get("license") or {}).get("type", "unknown"),
        security_enabled=security, analysis_common=analysis_common, painless=painless,
        rank_rrf=False, reindex=False, detected_by="probe",
    )


def _body(response: Any) -> dict[str, Any]:
    return dict(body_of(response))


def _version_tuple(version: str) -> tuple[int, int, int]:
    parts = (version.split("-")[0].split(".") + ["0", "0", "0"])[:3]
    return tuple(int(p) if p.isdigit() else 0 for p in parts)  # type: ignore[return-value]

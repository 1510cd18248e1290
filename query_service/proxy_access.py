"""What the Elasticsearch-compatible proxy relays: an allowlist of read endpoints on allowed indices. Pure.

The service faces shoppers and holds Elasticsearch credentials, so it relays
nothing it was not configured to serve. Allowed:

==========================================  ===========================  =================================
request                                     route                        note
==========================================  ===========================  =================================
``GET /``, ``HEAD /``                       ``info``                     what clients call to check the product
``GET|POST /<target>/_search``              ``search``                   hybrid on the product alias
``GET|POST [/<target>]/_msearch``           ``msearch``                  every item's index is checked
``GET|POST /<target>/_count``               ``count``
``POST /<target>/_pit``                     ``pit_open``                 point in time on an allowed index
``DELETE /_pit``                            ``pit_close``
``GET|POST /_search`` with a ``pit``        ``pit_search``               the PIT names its indices
``GET|POST|DELETE /_search/scroll[/<id>]``  ``scroll``                   continues a search opened here
``GET /<target>/_mapping``                  ``mapping``
``GET|POST /<target>/_field_caps``          ``field_caps``
``HEAD /<target>``                          ``exists``
``GET|HEAD /<target>/_doc/<id>``            ``doc``                      a product page reads one product
==========================================  ===========================  =================================

``<target>`` is one or more comma-separated names, each the product alias, one of
its versioned indices (``<alias>-v<timestamp>``), or a name in ``proxy_indices``
(``MMSEARCH_PROXY_INDICES``; forwarded unchanged, never hybrid). Wildcards, ``_all``
and the events index are never allowed. Everything else (cluster and node APIs,
``_cat``, other indices, every write) is refused with 403 in Elasticsearch's
error shape, naming the setting that would allow it where one exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

INDICES_SETTING = "MMSEARCH_PROXY_INDICES"
FORBIDDEN_TYPE = "security_exception"

_ROUTES: tuple[tuple[str, frozenset[str], str], ...] = (
    # (path pattern with {target}, methods, route) — first match wins
    (r"/", frozenset({"GET", "HEAD"}), "info"),
    (r"/_search/scroll(?:/[^/]+)?", frozenset({"GET", "POST", "DELETE"}), "scroll"),
    (r"/_pit", frozenset({"DELETE"}), "pit_close"),
    (r"/_search", frozenset({"GET", "POST"}), "pit_search"),
    (r"/_msearch", frozenset({"GET", "POST"}), "msearch"),
    (r"/{target}/_search", frozenset({"GET", "POST"}), "search"),
    (r"/{target}/_msearch", frozenset({"GET", "POST"}), "msearch"),
    (r"/{target}/_count", frozenset({"GET", "POST"}), "count"),
    (r"/{target}/_pit", frozenset({"POST"}), "pit_open"),
    (r"/{target}/_mapping", frozenset({"GET"}), "mapping"),
    (r"/{target}/_field_caps", frozenset({"GET", "POST"}), "field_caps"),
    (r"/{target}/_doc/[^/]+", frozenset({"GET", "HEAD"}), "doc"),
    (r"/{target}", frozenset({"HEAD"}), "exists"),
)
_COMPILED = tuple((re.compile("^" + pattern.replace("{target}", r"(?P<target>[^/_][^/]*)") + "/?$"), methods, route)
                  for pattern, methods, route in _ROUTES)
_VERSIONED = re.compile(r"^(?P<alias>.+)-v\d{14}$")


@dataclass(frozen=True)
class Route:
    """An allowed request: which kind, on which target (None for index-less endpoints)."""

    kind: str
    target: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a request is not relayed, and the setting that would allow it (None: nothing does)."""

    reason: str
    setting: str | None = None

    def message(self) -> str:
        if self.setting:
            return f"{self.reason}; add it to {self.setting} to let the proxy relay reads of it"
        return f"{self.reason}; the proxy relays only the read endpoints listed in docs/query_service.md " \
               f"(no setting widens them: call Elasticsearch directly for anything else)"


@dataclass(frozen=True)
class ProxyAccess:
    """The allowlist: the product alias (hybrid) and the extra indices that are only forwarded."""

    product_alias: str
    extra_indices: tuple[str, ...] = ()
    events_index: str | None = None

    def is_product_name(self, name: str) -> bool:
        match = _VERSIONED.match(name)
        return name == self.product_alias or bool(match and match.group("alias") == self.product_alias)

    def target_refusal(self, target: str | None) -> Refusal | None:
        """None when every name of ``target`` may be read through the proxy."""
        if not target:
            return Refusal("a search without an index reaches every index")
        for name in (unquote(part).strip() for part in target.split(",")):
            if not name or any(c in name for c in "*?") or name.startswith(("_", "-", ".")):
                return Refusal(f"index pattern [{name}] may reach other indices")
            if name == self.events_index:
                return Refusal(f"[{name}] is the events index (shopper ids)")
            if not (self.is_product_name(name) or name in self.extra_indices):
                return Refusal(f"index [{name}] is not served by this proxy", INDICES_SETTING)
        return None

    def is_product_target(self, target: str | None) -> bool:
        """Every name is the product alias or one of its versions: these searches can be hybrid."""
        return bool(target) and all(self.is_product_name(unquote(part).strip()) for part in (target or "").split(","))

    def route(self, method: str, path: str) -> Route | Refusal:
        for pattern, methods, kind in _COMPILED:
            match = pattern.match(path)
            if match is None:
                continue
            if method not in methods:
                return Refusal(f"{method} {path} is not a read the proxy relays")
            target = match.groupdict().get("target")
            if target is not None:
                refusal = self.target_refusal(target)
                if refusal is not None:
                    return refusal
            return Route(kind, target)
        return Refusal(f"{method} {path} is not on the proxy's read allowlist")

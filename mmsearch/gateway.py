"""The one boundary to Elasticsearch: every client call, body unwrapping and error translation.

Modules above it (the search engine, the proxy, readiness) speak to a
:class:`SearchGateway` and receive plain ``dict`` bodies or the project's own
exceptions; unit tests hand them a fake that implements the same protocol.

One rule for every failure, whoever makes the call (the HTTP status is what the
query service answers when the error reaches a client):

================================================  ==========================  ====
failure                                           exception                   HTTP
================================================  ==========================  ====
no connection, timeout, TLS failure               ``ClusterUnavailableError``  503
ES answers 429 / 502 / 503 / 504 (busy, starting)  ``ClusterUnavailableError``  503
the index or alias does not exist (404)           ``IndexNotFoundError``       503
ES refuses our credentials (401 / 403)            ``ClusterAuthError``         502
ES rejects the request otherwise (4xx / 5xx)      ``ClusterError``             502
================================================  ==========================  ====

Why 503 for a missing alias: the service is up but has nothing to serve until an
index is built and swapped in; clients retry, like they do while the node starts.
The proxy's pass-through is the one exception to raising: :meth:`forward` hands
Elasticsearch's own error status and body back, because a relayed request must
fail exactly as it would against Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mmsearch import retries
from mmsearch.exceptions import ClusterAuthError, ClusterError, ClusterUnavailableError, IndexNotFoundError

T = TypeVar("T")

#: ES statuses that mean "busy or restarting, try again" rather than "your request is wrong".
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class ForwardedResponse:
    """Elasticsearch's answer to a relayed request, success or error, as it came."""

    status: int
    body: Any  # a dict/list for JSON, str for text (``_cat`` without ``format``), None for HEAD
    headers: Mapping[str, str] = field(default_factory=dict)


class SearchGateway(Protocol):
    """What the query service needs from Elasticsearch. Bodies in and out are plain JSON values."""

    def msearch(self, searches: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """One ``_msearch``: ``searches`` alternates header and body; returns each item's response (or error)."""
        ...

    def search(self, index: str, body: Mapping[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]: ...

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int: ...

    def mappings(self, index: str) -> dict[str, dict[str, Any]]:
        """Concrete index -> its ``mappings`` for every index behind ``index`` (an alias or a name)."""
        ...

    def alias_targets(self, alias: str) -> list[str]:
        """The concrete indices behind an alias, sorted ([] when the alias does not exist)."""
        ...

    def cluster_health(self, timeout: str = "2s") -> dict[str, Any]: ...

    def forward(self, method: str, path: str, params: Mapping[str, str], body: Any) -> ForwardedResponse:
        """Relay one request unchanged; ES's own errors come back as a status, not an exception.
        ``body``: a JSON value, or a list of lines for an NDJSON endpoint (``_msearch``)."""
        ...


def body_of(response: Any) -> Any:
    """The JSON body of a client response (``ObjectApiResponse`` or an already plain value)."""
    return getattr(response, "body", response)


def translate(exc: Exception, what: str, **context: Any) -> Exception:
    """The project exception for a client exception (the table in the module docstring).

    Anything that is not an Elasticsearch client error is returned unchanged, so
    callers can ``raise translate(exc, ...) from exc`` inside a broad ``except``.
    """
    from elasticsearch import ApiError, TransportError

    if isinstance(exc, TransportError):
        return ClusterUnavailableError(f"{what} failed: Elasticsearch is unreachable",
                                       error=str(exc)[:MAX_DETAIL_CHARS], **context)
    if not isinstance(exc, ApiError):
        return exc
    status = int(getattr(exc.meta, "status", 0) or 0)
    detail = _error_reason(exc)
    if status == 404 and "index_not_found" in detail:
        return IndexNotFoundError(f"{what} failed: the index or alias does not exist (yet)", status=status,
                                  **context)
    if status in RETRYABLE_STATUSES:
        return ClusterUnavailableError(f"{what} failed: Elasticsearch is busy or restarting", status=status,
                                       error=detail, **context)
    if status in (401, 403):
        return ClusterAuthError(f"{what} failed: Elasticsearch refused the service's credentials", status=status,
                                error=detail, **context)
    return ClusterError(f"{what} failed: Elasticsearch rejected the request", status=status, error=detail, **context)


def _error_reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
        return f"{error.get('type', '')}: {error.get('reason', '')}"[:MAX_DETAIL_CHARS]
    return str(exc)[:MAX_DETAIL_CHARS]


def is_outage(error: BaseException) -> bool:
    """True for an ES that cannot answer now (unreachable, busy, restarting): worth waiting for.

    A missing index is not an outage, though it shares the 503 class: waiting will not create it.
    """
    return isinstance(error, ClusterUnavailableError) and not isinstance(error, IndexNotFoundError)


def guarded(what: str, call: Callable[[], T], **context: Any) -> T:
    """Run one client call; client errors leave as project exceptions (see ``translate``)."""
    try:
        return call()
    except Exception as exc:
        translated = translate(exc, what, **context)
        if translated is exc:
            raise
        raise translated from exc


class ElasticsearchGateway:
    """:class:`SearchGateway` over the official Python client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._timeout_clients: dict[float, Any] = {}
        self._probe_client: Any = None  # /readyz's one short attempt (retries.READINESS_TIMEOUT_S)

    def _with_timeout(self, timeout_s: float | None) -> Any:
        # client.options() copies the client (~0.3 ms per call), so one copy per timeout is kept.
        if timeout_s is None:
            return self.client
        if timeout_s not in self._timeout_clients:
            self._timeout_clients[timeout_s] = self.client.options(
                request_timeout=timeout_s, retry_on_timeout=retries.SEARCH_RETRY_ON_TIMEOUT)
        return self._timeout_clients[timeout_s]

    def msearch(self, searches: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None) -> list[dict[str, Any]]:
        client = self._with_timeout(timeout_s)
        response = guarded("search", lambda: client.msearch(searches=list(searches)))
        return list(body_of(response)["responses"])

    def search(self, index: str, body: Mapping[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]:
        client = self._with_timeout(timeout_s)
        return dict(body_of(guarded("search", lambda: client.search(index=index, body=dict(body)), index=index)))

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        response = guarded("count", lambda: self.client.count(index=index, query=dict(query or {"match_all": {}})),
                           index=index)
        return int(body_of(response)["count"])

    def mappings(self, index: str) -> dict[str, dict[str, Any]]:
        body = body_of(guarded("get mapping", lambda: self.client.indices.get_mapping(index=index), index=index))
        return {name: dict(info.get("mappings") or {}) for name, info in body.items()}

    def alias_targets(self, alias: str) -> list[str]:
        try:
            return sorted(body_of(guarded("get alias", lambda: self.client.indices.get_alias(name=alias),
                                          alias=alias)))
        except IndexNotFoundError:
            return []
        except ClusterError as exc:
            if exc.context.get("status") == 404:  # "alias [x] missing" is a 404 without index_not_found
                return []
            raise

    def cluster_health(self, timeout: str = "2s") -> dict[str, Any]:
        if self._probe_client is None:  # made once: client.options() copies the client
            self._probe_client = self.client.options(request_timeout=retries.READINESS_TIMEOUT_S, max_retries=0)
        client = self._probe_client
        return dict(body_of(guarded("cluster health", lambda: client.cluster.health(timeout=timeout))))

    def forward(self, method: str, path: str, params: Mapping[str, str], body: Any) -> ForwardedResponse:
        from elasticsearch import ApiError

        headers = {"accept": "application/json"}
        if body is not None:  # a list is an NDJSON body (_msearch): the client serialises it line by line
            headers["content-type"] = "application/x-ndjson" if isinstance(body, list) else "application/json"
        try:
            response = self.client.perform_request(method, path, params=dict(params), headers=headers, body=body)
            return ForwardedResponse(response.meta.status, response.body, _content_type(response.meta))
        except ApiError as exc:
            return ForwardedResponse(exc.meta.status, exc.body, _content_type(exc.meta))
        except Exception as exc:
            translated = translate(exc, "relay", path=path)
            if translated is exc:
                raise
            raise translated from exc


def _content_type(meta: Any) -> dict[str, str]:
    headers = getattr(meta, "headers", None) or {}
    value = headers.get("content-type") if hasattr(headers, "get") else None
    return {"content-type": value} if value else {}


def as_gateway(es: Any) -> Any:
    """A gateway for ``es``: itself when it already is one (a fake, a wrapper), else one over the client."""
    return es if isinstance(es, ElasticsearchGateway) or getattr(es, "is_search_gateway", False) \
        else ElasticsearchGateway(es)


# --- for callers that hold a raw client (indexing, capability detection, event logging) ----------
# They wrap each call in ``guarded`` and decide on the project exception it raised; these
# predicates answer the questions they used to ask of client exception classes, so no
# module outside this one imports ``elasticsearch``'s exceptions.


def status_of(exc: BaseException) -> int | None:
    """The HTTP status Elasticsearch answered with: for a client ``ApiError`` or an error ``translate``
    made from one. None when Elasticsearch did not answer (unreachable, timeout) or ``exc`` is not about it."""
    from elasticsearch import ApiError

    if isinstance(exc, ApiError):
        return int(getattr(exc.meta, "status", 0) or 0) or None
    if isinstance(exc, ClusterError):
        status = exc.context.get("status")
        return status if isinstance(status, int) else None
    return None


def is_authorization_error(exc: BaseException) -> bool:
    """ES knows the credentials but forbids this action (403, the client's ``AuthorizationException``).
    Unlike a 401 this is normal for restricted users, so callers may fall back to another way."""
    return status_of(exc) == 403


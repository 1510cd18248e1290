"""One small exception hierarchy for the whole project.

Every error carries a human-readable message plus a ``context`` dict, so that
the CLI can print it and the query service can turn it into JSON without
parsing strings. Catch :class:`MMSearchError` to catch everything we raise.
"""

from __future__ import annotations

from typing import Any


class MMSearchError(Exception):
    """Base class. ``context`` holds the structured facts behind the message."""

    #: HTTP status the query service uses when this error reaches a client.
    http_status: int = 500

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context

    def __str__(self) -> str:
        if not self.context:
            return self.message
        details = ", ".join(f"{key}={value!r}" for key, value in self.context.items())
        return f"{self.message} ({details})"

    def to_dict(self) -> dict[str, Any]:
        # Context never overrides the two fields clients dispatch on.
        return {**{k: _jsonable(v) for k, v in self.context.items()}, "error": type(self).__name__,
                "message": self.message}


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)


# --- configuration and environment -------------------------------------------------


class ConfigError(MMSearchError):
    """A setting is missing, malformed or contradicts another one."""

    http_status = 500


class NodeError(MMSearchError):
    """The local Elasticsearch node could not be provisioned, started or stopped."""


class ToolMissingError(NodeError):
    """A required external tool (Maven, a JDK >= 21) is absent. The message names what to install."""


# --- cluster ----------------------------------------------------------------------


class ClusterError(MMSearchError):
    """Elasticsearch answered with an error we cannot work around."""

    http_status = 502


class ClusterUnavailableError(ClusterError):
    """Elasticsearch cannot be reached at all; callers should retry later."""

    http_status = 503


class BuildInterruptedError(ClusterUnavailableError):
    """Elasticsearch stayed unreachable past the build's outage window; the build can be resumed.

    Its message is one line naming the index and the ``--resume`` option: the CLI prints
    it as is, and what was acknowledged before the outage stays in the index.
    """


class IndexNotFoundError(ClusterUnavailableError):
    """The index or alias does not exist (yet): nothing to serve until one is built and swapped in."""


class ClusterAuthError(ClusterError):
    """Elasticsearch refused the credentials the project was configured with (401/403)."""


# --- models -----------------------------------------------------------------------


class ModelError(MMSearchError):
    """A model package is missing, corrupt, or inconsistent with its manifest."""


class ImageDecodeError(ModelError):
    """An image is corrupt, of a forbidden format, or too large to decode safely."""

    http_status = 400


class EncoderUnavailableError(ModelError):
    """The encoder failed or timed out and no other leg can answer the request."""

    http_status = 503


# --- indexing ---------------------------------------------------------------------


class IndexingError(MMSearchError):
    """An index lifecycle operation failed or was refused."""


class ModelMismatchError(IndexingError):
    """An index was built with a different model than the one in use (refused unless forced)."""

    http_status = 409


class BadRecordError(IndexingError):
    """One catalog record cannot be indexed; it goes to the dead-letter file, the run goes on."""


# --- requests ---------------------------------------------------------------------


class RequestValidationError(MMSearchError):
    """A client request is malformed or exceeds a limit."""

    http_status = 400


class PayloadTooLargeError(RequestValidationError):
    """The request body or an uploaded image exceeds the configured size cap."""

    http_status = 413


class ForbiddenRequestError(RequestValidationError):
    """The request is well-formed but not one this service is configured to serve (the proxy allowlist)."""

    http_status = 403

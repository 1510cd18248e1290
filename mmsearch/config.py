"""Client configuration: one validated object built from the environment and an optional file.

Precedence: explicit keyword arguments > environment (``MMSEARCH_*``) > config
file (JSON or YAML, path in ``MMSEARCH_CONFIG``) > defaults. Validation runs in
``__post_init__`` so a bad setting fails at start-up with a message that names
the setting, never later inside a request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mmsearch import retries
from mmsearch.exceptions import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = PROJECT_ROOT / ".state"

#: Per client address and route: a shopper typing and paging stays far below (a results page is one
#: /search and ~24 /photos requests), a scraper or a retry loop does not.
DEFAULT_RATE_LIMIT = "50/second;1000/minute"
DEFAULT_RATE_LIMIT_STORAGE = "memory://"

# ES index names: lowercase, no spaces or \ / * ? " < > | , # : and not starting with - _ +
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,254}$")

# env var -> field name; values are strings and are coerced by _coerce().
ENV_VARS: dict[str, str] = {
    "MMSEARCH_ES_HOSTS": "es_hosts",
    "ES_URL": "es_hosts",
    "MMSEARCH_ES_API_KEY": "api_key",
    "MMSEARCH_ES_USERNAME": "username",
    "MMSEARCH_ES_PASSWORD": "password",
    "MMSEARCH_ES_CA_CERTS": "ca_certs",
    "MMSEARCH_ES_VERIFY_CERTS": "verify_certs",
    "MMSEARCH_ES_TIMEOUT": "request_timeout_s",
    "MMSEARCH_ALIAS": "products_alias",
    "MMSEARCH_EVENTS_INDEX": "events_index",
    "MMSEARCH_EVENTS_FLUSH_INTERVAL_S": "events_flush_interval_s",
    "MMSEARCH_MODEL_DIR": "model_dir",
    "MMSEARCH_STATE_DIR": "state_dir",
    "MMSEARCH_RANKING": "ranking_file",
    "MMSEARCH_PROXY_INDICES": "proxy_indices",
    "MMSEARCH_ADMIN_TOKEN": "admin_token",
    "MMSEARCH_IMAGE_ROOT": "image_root",
    "MMSEARCH_EVENTS_TOKEN": "events_token",
    "MMSEARCH_EVENT_SECRET": "event_ticket_secret",
    "MMSEARCH_METRICS_PUBLIC": "metrics_public",
    "MMSEARCH_RATE_LIMIT": "rate_limit",
    "MMSEARCH_RATE_LIMIT_STORAGE": "rate_limit_storage",
    "MMSEARCH_TRUSTED_PROXIES": "trusted_proxies",
}

#: Secrets: kept out of repr (field(repr=False)) and masked by Settings.redacted().
SECRET_SETTINGS = ("api_key", "password", "admin_token", "events_token", "event_ticket_secret",
                   "rate_limit_storage")
#: Shortest event ticket secret: it keys an HMAC that anyone can probe with forged tickets.
MIN_EVENT_SECRET_CHARS = 16


@dataclass(frozen=True)
class Settings:
    """Everything needed to talk to Elasticsearch and find the model."""

    es_hosts: tuple[str, ...] = ("http://127.0.0.1:9200",)
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout_s: float = 30.0
    products_alias: str = "products"
    events_index: str = "mmsearch-events"
    #: How often buffered events are written (also when the buffer reaches its flush size, and at
    #: shutdown). Longer means fewer bulk requests; nothing accepted is dropped either way.
    events_flush_interval_s: float = 1.0
    model_dir: Path | None = None
    state_dir: Path = field(default=DEFAULT_STATE_DIR)
    #: The query service's default ranking and proxy options (query_service.ranking.load_service_ranking).
    ranking_file: Path | None = None
    #: Indices besides the product alias (and its versioned indices) whose reads the ES-compatible
    #: proxy relays unchanged (never hybrid). Empty: only the product alias is served.
    proxy_indices: tuple[str, ...] = ()
    #: Bearer token of the service's admin surface (the /ops page's data). None: that surface answers 403.
    #: Kept out of repr so it never reaches a log line.
    admin_token: str | None = field(default=None, repr=False)
    #: Where the catalog's relative image paths resolve (the build's image_root): the only directory
    #: the pages' /photos route serves from. None: the shared catalog (default_catalog_dir).
    image_root: Path | None = None
    #: Bearer token a storefront backend sends with its ``POST /events``. Kept out of repr.
    events_token: str | None = field(default=None, repr=False)
    #: Key of the per-query event tickets that ``/search`` hands the built-in page (its click
    #: beacons cannot hold a server token). None: derived from events_token; both None: /events is 403.
    event_ticket_secret: str | None = field(default=None, repr=False)
    #: True: ``/metrics`` answers anyone (a private network's Prometheus, no credentials); False: it
    #: needs the admin token. Public by default: it holds only counters and latencies with bounded
    #: labels (endpoints, statuses, legs, variant names), no query, id, index content or secret.
    metrics_public: bool = True
    #: Per-client request limits of the shopper-facing routes, in the ``limits`` library's notation
    #: ("50/second;1000/minute"), or "off". Each route has its own budget per client address.
    rate_limit: str = DEFAULT_RATE_LIMIT
    #: Where the counts live: "memory://" is per gunicorn worker (a client may get workers x the
    #: limit); a shared storage (redis://host:6379) makes it one limit. Kept out of repr: a storage
    #: URI may carry a password.
    rate_limit_storage: str = field(default=DEFAULT_RATE_LIMIT_STORAGE, repr=False)
    #: How many proxies in front of the service append to X-Forwarded-For (0: the socket's peer is the
    #: client; never trust the header then, any client could name itself anyone).
    trusted_proxies: int = 0

    def __post_init__(self) -> None:
        hosts = self.es_hosts
        if isinstance(hosts, str):
            hosts = tuple(h.strip() for h in hosts.split(",") if h.strip())
            object.__setattr__(self, "es_hosts", hosts)
        if not hosts:
            raise ConfigError("es_hosts is empty: give at least one http(s):// URL", setting="es_hosts")
        for host in hosts:
            parsed = urlparse(host)
            if parsed.username is not None or parsed.password is not None:
                # Hosts are shown in repr, redacted() and the client's log lines; credentials have their
                # own settings, which never are. The value is not echoed: it holds the password.
                raise ConfigError("es_hosts URLs must not carry credentials: use MMSEARCH_ES_USERNAME / "
                                  "MMSEARCH_ES_PASSWORD or MMSEARCH_ES_API_KEY", setting="es_hosts")
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(
                    "es_hosts entries must be http:// or https:// URLs with a host", setting="es_hosts", value=host
                )
        if self.api_key and (self.username or self.password):
            raise ConfigError("give either api_key or username/password, not both", setting="api_key")
        if bool(self.username) != bool(self.password):
            raise ConfigError("username and password must be given together", setting="username")
        if self.ca_certs is not None and not Path(self.ca_certs).is_file():
            raise ConfigError("ca_certs file does not exist", setting="ca_certs", value=self.ca_certs)
        if self.ca_certs and not self.verify_certs:
            raise ConfigError("ca_certs given but verify_certs is false; drop one", setting="verify_certs")
        if not (0 < float(self.request_timeout_s) <= 600):
            raise ConfigError("request_timeout_s must be in (0, 600]", setting="request_timeout_s",
                              value=self.request_timeout_s)
        if not (0 < float(self.events_flush_interval_s) <= 86_400):
            raise ConfigError("events_flush_interval_s must be in (0, 86400]", setting="events_flush_interval_s",
                              value=self.events_flush_interval_s)
        for name in ("products_alias", "events_index"):
            value = getattr(self, name)
            if not _INDEX_NAME.match(value or ""):
                raise ConfigError(
                    "not a valid Elasticsearch index/alias name (lowercase letters, digits, . _ -)",
                    setting=name, value=value,
                )
        proxy_indices = self.proxy_indices
        if isinstance(proxy_indices, str):
            proxy_indices = tuple(name.strip() for name in proxy_indices.split(",") if name.strip())
        object.__setattr__(self, "proxy_indices", tuple(proxy_indices))
        for name in self.proxy_indices:
            if not _INDEX_NAME.match(name) or name == self.events_index:
                raise ConfigError("proxy_indices entries must be index or alias names (no wildcards), and never "
                                  "the events index", setting="proxy_indices", value=name)
        if self.model_dir is not None:
            object.__setattr__(self, "model_dir", Path(self.model_dir))
        if self.ranking_file is not None:
            object.__setattr__(self, "ranking_file", Path(self.ranking_file))
        if self.image_root is not None:
            object.__setattr__(self, "image_root", Path(self.image_root))
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        self._validate_access_settings()

    def _validate_access_settings(self) -> None:
        """Tokens, rate limits and proxies: a typo fails at start-up, not as an open or closed door later."""
        for name in ("admin_token", "events_token", "event_ticket_secret"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or value != value.strip() or not value):
                raise ConfigError("tokens are non-empty strings without surrounding spaces", setting=name)
        if self.event_ticket_secret is not None and len(self.event_ticket_secret) < MIN_EVENT_SECRET_CHARS:
            raise ConfigError(f"event_ticket_secret needs at least {MIN_EVENT_SECRET_CHARS} characters",
                              setting="event_ticket_secret")
        if not isinstance(self.metrics_public, bool):
            raise ConfigError("metrics_public must be true or false", setting="metrics_public")
        if not isinstance(self.trusted_proxies, int) or isinstance(self.trusted_proxies, bool) \
                or not 0 <= self.trusted_proxies <= 10:
            raise ConfigError("trusted_proxies is a count of proxies in [0, 10]", setting="trusted_proxies",
                              value=str(self.trusted_proxies))
        object.__setattr__(self, "rate_limit", str(self.rate_limit).strip())
        # The defaults are known good; importing ``limits`` (~70 ms) is left to the settings that need it,
        # so that every CLI command does not pay for it.
        if self.rate_limit_enabled and self.rate_limit != DEFAULT_RATE_LIMIT:
            from limits import parse_many

            try:
                parse_many(self.rate_limit)
            except ValueError as exc:
                raise ConfigError("rate_limit is like '50/second;1000/minute' or 'off'", setting="rate_limit",
                                  value=self.rate_limit) from exc
        if self.rate_limit_storage != DEFAULT_RATE_LIMIT_STORAGE:
            from limits.storage import SCHEMES

            scheme = str(self.rate_limit_storage).partition("://")[0]
            if "://" not in str(self.rate_limit_storage) or scheme not in SCHEMES or scheme.startswith("async+"):
                # The value itself is not echoed: it may carry a password.
                raise ConfigError("rate_limit_storage is a storage URI such as memory:// or redis://host:6379",
                                  setting="rate_limit_storage", scheme=scheme[:40])

    @property
    def rate_limit_enabled(self) -> bool:
        return self.rate_limit.lower() != "off"

    # -- construction -----------------------------------------------------------------

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, config_file: str | Path | None = None,
             **overrides: Any) -> Settings:
        """Build settings from file, then environment, then ``overrides`` (highest)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config_file or environ.get("MMSEARCH_CONFIG")
        if path:
            values.update(_read_file(Path(path)))
        for env_name, field_name in ENV_VARS.items():
            if environ.get(env_name):
                values[field_name] = environ[env_name]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))

    # -- use ----------------------------------------------------------------------------

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``elasticsearch.Elasticsearch``."""
        from mmsearch.serializers import client_serializers  # imports elasticsearch: only when a client is made

        kwargs: dict[str, Any] = {
            "hosts": list(self.es_hosts),
            "request_timeout": float(self.request_timeout_s),
            "max_retries": retries.ES_CLIENT_MAX_RETRIES,
            "retry_on_timeout": True,
            "retry_on_status": retries.ES_CLIENT_RETRY_ON_STATUS,
            "serializers": client_serializers(),
        }
        if self.api_key:
            kwargs["api_key"] = self.api_key
        elif self.username:
            kwargs["basic_auth"] = (self.username, self.password)
        if self.ca_certs:
            kwargs["ca_certs"] = self.ca_certs
        if not self.verify_certs:
            # Only reachable when the user set MMSEARCH_ES_VERIFY_CERTS=false on purpose;
            # the client itself warns on every connection, which we want.
            kwargs["verify_certs"] = False
        return kwargs

    def es_client(self) -> Any:
        from elasticsearch import Elasticsearch

        return Elasticsearch(**self.client_kwargs())

    def redacted(self) -> dict[str, Any]:
        """Settings for logs and ``status`` output, with secrets masked."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in SECRET_SETTINGS:
            if out[secret] and not (secret == "rate_limit_storage" and out[secret] == DEFAULT_RATE_LIMIT_STORAGE):
                out[secret] = "***"
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


def read_mapping_file(path: Path, what: str = "config file") -> dict[str, Any]:
    """A JSON or YAML (by suffix) file holding one mapping; every failure is a ConfigError naming ``what``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found", path=str(path))
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # both parsers raise their own types
        raise ConfigError(f"{what} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}",
                          path=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must hold a mapping", path=str(path))
    return data


def _read_file(path: Path) -> dict[str, Any]:
    data = read_mapping_file(path, "config file")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError("unknown settings in config file", path=str(path), unknown=unknown)
    return data


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for name in ("es_hosts", "proxy_indices"):
        if isinstance(out.get(name), list):
            out[name] = tuple(out[name])
    for name in ("verify_certs", "metrics_public"):
        if isinstance(out.get(name), str):
            text = out[name].strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{name} must be true or false", setting=name, value=text)
            out[name] = text in ("true", "1", "yes")
    if isinstance(out.get("trusted_proxies"), str):
        try:
            out["trusted_proxies"] = int(out["trusted_proxies"])
        except ValueError as exc:
            raise ConfigError("trusted_proxies must be a whole number", setting="trusted_proxies",
                              value=out["trusted_proxies"]) from exc
    for name in ("request_timeout_s", "events_flush_interval_s"):
        if isinstance(out.get(name), str):
            try:
                out[name] = float(out[name])
            except ValueError as exc:
                raise ConfigError(f"{name} must be a number of seconds", setting=name, value=out[name]) from exc
    return out


def default_catalog_dir() -> Path | None:
    """Where the shared fashion catalog is, if anywhere: ``MMSEARCH_CATALOG_DIR``, then
    ``../shared/data/fashion-products`` beside the checkout, then beside the repository this
    checkout was cloned from (CI and reviewers clone into a temporary directory)."""
    relative = Path("shared") / "data" / "fashion-products"
    candidates: list[Path] = []
    if os.environ.get("MMSEARCH_CATALOG_DIR"):
        candidates.append(Path(os.environ["MMSEARCH_CATALOG_DIR"]))
    candidates.append(PROJECT_ROOT.parent / relative)
    try:
        import subprocess

        origin = subprocess.run(["git", "-C", str(PROJECT_ROOT), "remote", "get-url", "origin"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        if origin and Path(origin).is_dir():
            candidates.append(Path(origin).resolve().parent / relative)
    except (OSError, subprocess.SubprocessError):
        pass
    return next((c for c in candidates if (c / "products.jsonl").is_file()), None)

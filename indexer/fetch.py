"""SSRF-safe image URL fetching (off by default; enabled per catalog).

A catalog can be written by someone else, so an image URL is untrusted input
that would otherwise let it make our indexer talk to internal services
(cloud metadata at 169.254.169.254, an admin port on localhost...). The rules:

* http and https only, no credentials in the URL;
* the host is resolved exactly once and every address it resolves to must be
  globally routable (a DNS name that also resolves to 10.x is refused, which
  defeats the "one public, one private record" trick);
* the TCP connection goes to that pinned address (TLS still verifies the
  certificate against the host name), so a second DNS answer cannot rebind it;
* redirects are followed by hand, each hop passing the same checks;
* connect/read timeouts from :mod:`mmsearch.retries`, an overall deadline and a
  byte cap enforced while streaming, before anything is decoded.

``is_forbidden_ip`` and ``check_url`` are pure; ``fetch_image_url`` is the I/O.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from mmsearch import retries
from mmsearch.exceptions import ImageDecodeError

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_REDIRECTS = 3
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)

Resolver = Callable[[str, int], list[str]]


class FetchRefused(ImageDecodeError):
    """The URL is not allowed (scheme, address, redirect, size); nothing was fetched from it."""


def is_forbidden_ip(address: str) -> bool:
    """True for anything that is not a plain public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever its spelling
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None and is_forbidden_ip(str(ip.sixtofour)):
        return True  # 2002:7f00:1::/48 tunnels to 127.0.0.1
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local \
        or ip.is_private or ip.is_unspecified


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


def check_url(url: str) -> Target:
    """Parse and validate a URL's shape (not its addresses); raise FetchRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchRefused("malformed image URL", url=url[:200], detail=str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise FetchRefused("image URL scheme not allowed", url=url[:200], allowed=list(ALLOWED_SCHEMES))
    if not parts.hostname:
        raise FetchRefused("image URL has no host", url=url[:200])
    if parts.username or parts.password:
        raise FetchRefused("image URL must not carry credentials", url=url[:200])
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=parts.hostname, port=port or DEFAULT_PORTS[scheme], path=path)


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchRefused("image URL host does not resolve", host=host, detail=str(exc)) from exc
    return sorted({info[4][0] for info in infos})


def pin_address(target: Target, resolver: Resolver, is_forbidden: Callable[[str], bool]) -> str:
    """Resolve once; refuse if ANY address is forbidden; return the one we will connect to."""
    addresses = resolver(target.host, target.port)
    if not addresses:
        raise FetchRefused("image URL host does not resolve", host=target.host)
    bad = [a for a in addresses if is_forbidden(a)]
    if bad:
        raise FetchRefused("image URL resolves to a non-public address", host=target.host, addresses=bad)
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), timeout=retries.URL_FETCH_CONNECT_TIMEOUT_S)
        self.sock.settimeout(self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), timeout=retries.URL_FETCH_CONNECT_TIMEOUT_S)
        raw.settimeout(self.timeout)
        # SNI and certificate verification use the URL's host name, the socket the pinned IP.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch_image_url(url: str, max_bytes: int, resolver: Resolver = system_resolver,
                    is_forbidden: Callable[[str], bool] = is_forbidden_ip,
                    deadline_s: float | None = None) -> bytes:
    """GET ``url`` under the rules in the module docstring; bytes or FetchRefused/ImageDecodeError."""
    deadline = time.monotonic() + (deadline_s or retries.URL_FETCH_CONNECT_TIMEOUT_S + retries.URL_FETCH_READ_TIMEOUT_S)
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        target = check_url(current)
        address = pin_address(target, resolver, is_forbidden)
        cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = cls(target.host, target.port, address, timeout=retries.URL_FETCH_READ_TIMEOUT_S)
        try:
            conn.request("GET", target.path, headers={"Accept": "image/*", "User-Agent": "mmsearch-indexer",
                                                      "Accept-Encoding": "identity"})
            response = conn.getresponse()
            if response.status in _REDIRECT_STATUSES:
                location = response.getheader("Location")
                if not location:
                    raise FetchRefused("redirect without Location", url=current[:200])
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise ImageDecodeError("image URL answered with an error status", url=current[:200],
                                       status=response.status)
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchRefused("image at URL exceeds the byte cap", url=current[:200], bytes=int(declared),
                                   max_bytes=max_bytes)
            chunks: list[bytes] = []
            total = 0
            while True:
                if time.monotonic() > deadline:
                    raise ImageDecodeError("image download exceeded its deadline", url=current[:200])
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise FetchRefused("image at URL exceeds the byte cap", url=current[:200], max_bytes=max_bytes)
                chunks.append(chunk)
            return b"".join(chunks)
        except (OSError, http.client.HTTPException) as exc:
            raise ImageDecodeError("image URL could not be fetched", url=current[:200], detail=str(exc)) from exc
        finally:
            conn.close()
    raise FetchRefused("too many redirects", url=url[:200], max_redirects=MAX_REDIRECTS)

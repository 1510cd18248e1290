"""Image references: SSRF rules for URLs, path confinement, base64; the fetcher against a local server."""

from __future__ import annotations

import base64
import http.server
import io
import threading

import pytest
from PIL import Image

from indexer.fetch import FetchRefused, check_url, fetch_image_url, is_forbidden_ip, pin_address
from indexer.images import ImageSource, classify_image_ref, decode_base64_ref, load_and_decode, resolve_local_path
from mmsearch.exceptions import ImageDecodeError


@pytest.mark.parametrize("address,forbidden", [
    ("93.184.216.34", False), ("2606:2800:220:1:248:1893:25c8:1946", False),
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
    ("169.254.169.254", True), ("0.0.0.0", True), ("100.64.0.1", True), ("224.0.0.1", True),
    ("::1", True), ("fe80::1", True), ("fc00::1", True), ("::ffff:127.0.0.1", True), ("::ffff:10.0.0.1", True),
    ("2002:7f00:1::1", True), ("not-an-ip", True), ("255.255.255.255", True),
])
def test_forbidden_ips(address, forbidden):
    assert is_forbidden_ip(address) is forbidden


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "ftp://host/a.jpg", "http:///nohost",
                                 "http://user:pw@example.com/a.jpg", "http://example.com:99999/"])
def test_check_url_refuses(url):
    with pytest.raises(FetchRefused):
        check_url(url)


def test_check_url_accepts_http_and_https():
    assert check_url("https://Example.com/a.jpg?x=1").path == "/a.jpg?x=1"
    assert check_url("http://example.com").port == 80


def test_pin_refuses_if_any_address_is_private():
    target = check_url("http://mixed.example/a.jpg")
    with pytest.raises(FetchRefused, match="non-public"):
        pin_address(target, lambda host, port: ["93.184.216.34", "10.0.0.5"], is_forbidden_ip)
    assert pin_address(target, lambda host, port: ["93.184.216.34"], is_forbidden_ip) == "93.184.216.34"


def _png(size=(4, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 (http.server API)
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def _only_test_server(address: str) -> bool:
    # The test server is on loopback; treat exactly 127.0.0.1 as "public" for these tests.
    return address != "127.0.0.1" and is_forbidden_ip(address)


def test_fetch_follows_checked_redirects_and_pins_ip(server):
    png = _png()
    _Handler.routes = {"/a.jpg": (302, {"Location": "/b.jpg"}, b""), "/b.jpg": (200, {}, png)}
    resolved = []

    def resolver(host, port):
        resolved.append(host)
        return ["127.0.0.1"]

    data = fetch_image_url(f"http://shop.test:{server}/a.jpg", max_bytes=10_000, resolver=resolver,
                           is_forbidden=_only_test_server)
    assert data == png and resolved == ["shop.test", "shop.test"]  # resolved once per hop


def test_fetch_refuses_redirect_to_metadata_address(server):
    _Handler.routes = {"/a.jpg": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")}

    def resolver(host, port):
        return ["127.0.0.1"] if host == "shop.test" else [host]

    with pytest.raises(FetchRefused, match="non-public"):
        fetch_image_url(f"http://shop.test:{server}/a.jpg", max_bytes=10_000, resolver=resolver,
                        is_forbidden=_only_test_server)


def test_fetch_byte_cap_and_status(server):
    _Handler.routes = {"/big.jpg": (200, {}, b"x" * 5000), "/gone.jpg": (404, {}, b"")}
    with pytest.raises(FetchRefused, match="byte cap"):
        fetch_image_url(f"http://shop.test:{server}/big.jpg", max_bytes=1024,
                        resolver=lambda h, p: ["127.0.0.1"], is_forbidden=_only_test_server)
    with pytest.raises(ImageDecodeError, match="error status"):
        fetch_image_url(f"http://shop.test:{server}/gone.jpg", max_bytes=1024,
                        resolver=lambda h, p: ["127.0.0.1"], is_forbidden=_only_test_server)


def test_fetch_refuses_loopback_with_default_policy(server):
    with pytest.raises(FetchRefused, match="non-public"):
        fetch_image_url(f"http://127.0.0.1:{server}/a.jpg", max_bytes=1024)


def test_classify_refs():
    assert classify_image_ref("images/1.jpg") == "path"
    assert classify_image_ref("C:/x.jpg") == "path"
    assert classify_image_ref("https://x/y.jpg") == "url"
    assert classify_image_ref("file:///etc/passwd") == "url"  # then refused by the scheme check
    assert classify_image_ref("data:image/png;base64,AAAA") == "base64"
    assert classify_image_ref(base64.b64encode(b"x" * 300).decode()) == "base64"
    assert classify_image_ref("images/1.jpg", kind="base64") == "base64"


def test_base64_decoding():
    png = _png()
    assert decode_base64_ref(base64.b64encode(png).decode()) == png
    assert decode_base64_ref("data:image/png;base64," + base64.b64encode(png).decode()) == png
    with pytest.raises(ImageDecodeError):
        decode_base64_ref("data:image/png,rawtext")
    with pytest.raises(ImageDecodeError):
        decode_base64_ref("!!!notbase64!!!")


def test_local_paths_stay_inside_the_catalog(tmp_path):
    root = tmp_path / "catalog"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(_png())
    (tmp_path / "secret.png").write_bytes(_png())
    (root / "images" / "link.png").symlink_to(tmp_path / "secret.png")
    assert resolve_local_path("images/a.png", root) == (root / "images" / "a.png").resolve()
    for escape in ("../secret.png", str(tmp_path / "secret.png"), "images/link.png", "images/../../secret.png"):
        with pytest.raises(ImageDecodeError, match="escapes"):
            resolve_local_path(escape, root)


def test_image_source_rules(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    source = ImageSource(root=tmp_path, max_bytes=1024)
    assert source.load("a.png") == _png()
    with pytest.raises(ImageDecodeError, match="disabled"):
        source.load("https://example.com/a.jpg")
    with pytest.raises(ImageDecodeError, match="not found"):
        source.load("missing.png")
    (tmp_path / "big.png").write_bytes(b"x" * 2048)
    with pytest.raises(ImageDecodeError, match="byte cap"):
        source.load("big.png")


def test_load_and_decode_never_raises(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    source = ImageSource(root=tmp_path)
    good = load_and_decode("a.png", None, source)
    assert good.image is not None and good.error is None and len(good.digest) == 64
    bad = load_and_decode("bad.jpg", None, source)
    assert bad.image is None and "image" in bad.error and bad.digest
    missing = load_and_decode("nope.png", None, source)
    assert missing.error and missing.digest.startswith("unloaded:")
    assert load_and_decode(None, None, source).digest is None
    skipped = load_and_decode("a.png", None, source, skip=lambda digest: True)
    assert skipped.image is None and skipped.error is None and skipped.digest == good.digest

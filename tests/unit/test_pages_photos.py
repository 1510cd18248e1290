"""``/photos``: only image files under the configured image root, nothing else, never outside it."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmsearch.config import Settings
from query_service.app import create_app
from query_service.routes.photos import resolve_photo
from tests.unit.fakes import FakeGateway

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog"
    (catalog / "images").mkdir(parents=True)
    (catalog / "images" / "1.jpg").write_bytes(JPEG)
    (catalog / "images" / "2 b.png").write_bytes(PNG)
    (catalog / "images" / ".hidden.jpg").write_bytes(JPEG)
    (catalog / "products.jsonl").write_text('{"id": "1"}\n')
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"outside the catalog")
    os.symlink(secret, catalog / "images" / "escape.jpg")
    os.symlink("/etc/passwd", catalog / "images" / "passwd.jpg")
    os.symlink(catalog / "images" / "1.jpg", catalog / "images" / "inside.jpg")
    return catalog


@pytest.fixture()
def client(root: Path) -> object:
    settings = Settings(products_alias="products", image_root=root)
    return create_app(settings, es=FakeGateway(), capabilities=SimpleNamespace(painless=False,
                                                                              native_rrf_usable=False)).test_client()


def test_photos_are_served_with_their_type_and_cache_headers(client: object) -> None:
    jpeg = client.get("/photos/images/1.jpg")
    assert jpeg.status_code == 200 and jpeg.data == JPEG and jpeg.mimetype == "image/jpeg"
    assert "max-age=86400" in jpeg.headers["Cache-Control"] and jpeg.headers["X-Content-Type-Options"] == "nosniff"
    assert jpeg.headers.get("ETag")
    assert client.get("/photos/images/1.jpg", headers={"If-None-Match": jpeg.headers["ETag"]}).status_code == 304
    png = client.get("/photos/images/2%20b.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert client.get("/photos/images/inside.jpg").status_code == 200  # a link that stays inside is fine


@pytest.mark.parametrize("path", [
    "/photos/..%2F..%2Fetc%2Fpasswd", "/photos/../../etc/passwd", "/photos/images/..%2F..%2Fsecret.jpg",
    "/photos/images/escape.jpg", "/photos/images/passwd.jpg",
    "/photos/products.jsonl", "/photos/images/.hidden.jpg", "/photos/images/missing.jpg", "/photos/images",
    "/photos/images%5C1.jpg", "/photos/images/1.jpg%00.png",
])
def test_traversal_symlink_escapes_and_non_images_are_404(client: object, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, path
    assert b"root:" not in response.data and b"outside the catalog" not in response.data


@pytest.mark.parametrize("path", ["/photos/%2Fetc%2Fpasswd", "/photos//etc/passwd"])
def test_absolute_references_never_reach_a_file(client: object, path: str) -> None:
    # No route of ours matches a reference starting with "/": the proxy's allowlist refuses it (403).
    response = client.get(path)
    assert response.status_code in (403, 404) and b"root:" not in response.data
    assert resolve_photo(Path("/"), "/etc/passwd") is None


def test_resolve_photo_without_a_root_serves_nothing(root: Path) -> None:
    assert resolve_photo(None, "images/1.jpg") is None
    assert resolve_photo(root, "images/1.jpg") == ((root / "images" / "1.jpg").resolve(), "image/jpeg")

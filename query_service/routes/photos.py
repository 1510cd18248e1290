"""``/photos/<ref>``: the catalog's product photos, for the pages' result grids.

Only image files under the configured image root (``Settings.image_root``, else the
shared catalog) are served: the reference is refused when absolute, when a segment is
hidden (``.``-prefixed, which also covers ``..``), when its suffix is not an image type,
or when it resolves outside the root (``indexer.images.resolve_local_path`` follows
symlinks, so a link inside the catalog pointing at /etc is refused too). Every refusal
is a plain 404: saying why would tell a prober what exists.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from flask import Blueprint, Response, abort, current_app, send_file

from mmsearch.exceptions import ImageDecodeError
from query_service.service import context

blueprint = Blueprint("photos", __name__)

#: suffix -> content type; nothing else under the catalog (products.jsonl, READMEs) is served.
PHOTO_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif"}
#: A day: catalog photos change only with a new catalog build, and a grid shows dozens at once.
PHOTO_MAX_AGE_S = 86_400


def resolve_photo(root: Path | None, ref: str) -> tuple[Path, str] | None:
    """(file, content type) that ``ref`` names under ``root``, or None when it must not be served."""
    if root is None or not ref or "\x00" in ref or "\\" in ref:
        return None
    parts = PurePosixPath(ref)
    if parts.is_absolute() or any(part.startswith(".") for part in parts.parts):
        return None
    content_type = PHOTO_TYPES.get(parts.suffix.lower())
    if content_type is None:
        return None
    from indexer.images import resolve_local_path

    try:
        path = resolve_local_path(ref, root)
    except ImageDecodeError:  # outside the root, through ``..`` or a symlink
        return None
    return (path, content_type) if path.is_file() else None


def photo_root() -> Path | None:
    """The configured image root, resolved once per app (the shared catalog's lookup runs git)."""
    cache = current_app.extensions.setdefault("mmsearch_photo_root", {})
    if "root" not in cache:
        configured = getattr(context().settings, "image_root", None)
        if configured is None:
            from mmsearch.config import default_catalog_dir

            configured = default_catalog_dir()
        cache["root"] = Path(configured).resolve() if configured is not None else None
    return cache["root"]


@blueprint.get("/photos/<path:ref>")
def photo(ref: str) -> Response:
    found = resolve_photo(photo_root(), ref)
    if found is None:
        abort(404)
    path, content_type = found
    response = send_file(path, mimetype=content_type, max_age=PHOTO_MAX_AGE_S, conditional=True, etag=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # An image is never a document: nothing in it may run or be framed, whatever the file holds.
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response

"""Safe image decoding and ONNX-side preprocessing (PIL + numpy only, no torch).

Uploaded images come from untrusted clients, so decoding is defensive: only a few
formats are allowed, the pixel count is checked from the header *before* any
pixel data is decompressed (decompression bombs), and every failure becomes an
:class:`~mmsearch.exceptions.ImageDecodeError` with context instead of a PIL
exception the caller would have to know about.
"""

from __future__ import annotations

import io
import warnings
from struct import error as struct_error
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps

from mmsearch.exceptions import ImageDecodeError

#: Formats we decode. Others (TIFF, BMP, PSD, EPS...) are refused: they add parser
#: attack surface and product photos never need them. Animated GIF, PNG (APNG) and WebP are
#: accepted and decoded to their first frame only: a shop's product photo is sometimes saved
#: animated, the first frame is the still a browser shows first, and later frames are never read
#: (so their number costs nothing). The frame's size is the header's canvas, checked like any image.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF")
#: 40 MP: a 24 MP camera photo passes, a crafted 50k x 50k PNG does not.
DEFAULT_MAX_PIXELS = 40_000_000
#: Refuse absurd payloads before PIL sees them (the HTTP layer has its own, usually lower, cap).
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
RESIZE_MODES = ("pad", "squash", "center_crop")


def safe_decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES) -> Image.Image:
    """Decode untrusted bytes into an RGB image, or raise ImageDecodeError.

    Transparent pixels are composited on white, because catalog photos have
    white backgrounds and the model was trained on those.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError("image data must be bytes", got=type(data).__name__)
    size = len(data)
    if size == 0:
        raise ImageDecodeError("empty image data")
    if size > max_bytes:
        raise ImageDecodeError("image payload too large", bytes=size, max_bytes=max_bytes)
    try:
        with warnings.catch_warnings():
            # PIL only *warns* between MAX_IMAGE_PIXELS and 2x; we refuse on our own cap below.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(data)), formats=list(ALLOWED_FORMATS))
            width, height = image.size
            # The header is parsed, no pixel data has been decompressed yet.
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise ImageDecodeError("image too large to decode safely", width=width, height=height,
                                       max_pixels=max_pixels)
            if getattr(image, "is_animated", False):
                image.seek(0)
            image.load()
    except ImageDecodeError:
        raise
    except Image.UnidentifiedImageError as exc:
        raise ImageDecodeError("unsupported or unrecognised image format", allowed=list(ALLOWED_FORMATS),
                               bytes=size) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError("image too large to decode safely (decompression bomb)", detail=str(exc)) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Truncated or corrupt streams surface as OSError/ValueError/SyntaxError from the plugins.
        raise ImageDecodeError("corrupt image data", detail=str(exc), bytes=size) from exc
    return to_rgb(upright(image))


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF Orientation tag says (phones store photos sideways and set
    the tag). A broken EXIF block is the metadata's fault, not the pixels': the image is kept as stored."""
    try:
        # Only a tag that asks for a turn costs a copy; exif_transpose copies even when none is needed.
        if image.getexif().get(ExifTags.Base.Orientation, 1) in (1, None):
            return image
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct_error):
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of any PIL image; alpha is composited on white (catalog backgrounds are white)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I"):
        # 16-bit grayscale PNGs open as "I;16" (or "I"); PIL's own conversion clips them at 255,
        # which turned every pixel brighter than 255/65535 white. Scale the 16-bit range to 8 bits.
        # (A tRNS colour in 16-bit units is dropped: such files are not product photos.)
        # point() maps in place of a float copy (8 bytes a pixel); +0.5 rounds to nearest.
        return image.point(lambda value: value * (1 / 257) + 0.5, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode in ("P", "L") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


@dataclass(frozen=True)
class ImageSpec:
    """How pixels are prepared for the image graph. Stored in the manifest, so the
    runtime reproduces training-time preprocessing exactly."""

    size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    resize_mode: str = "pad"  # pad to square with pad_colour, then resize: keeps the product's aspect ratio
    pad_colour: tuple[int, int, int] = (255, 255, 255)
    resample: str = "bicubic"

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 1024:
            raise ValueError(f"image size must be in [16, 1024], got {self.size}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError("mean and std need 3 values, std > 0")
        if self.resample not in _RESAMPLE:
            raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std", "pad_colour"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "lanczos": Image.Resampling.LANCZOS}


def resize(image: Image.Image, spec: ImageSpec) -> Image.Image:
    """Square ``spec.size`` RGB image according to ``spec.resize_mode``."""
    image = to_rgb(image)
    width, height = image.size
    resample = _RESAMPLE[spec.resample]
    if spec.resize_mode == "pad" and width != height:
        side = max(width, height)
        canvas = Image.new("RGB", (side, side), spec.pad_colour)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        image = canvas
    elif spec.resize_mode == "center_crop" and width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if image.size != (spec.size, spec.size):
        image = image.resize((spec.size, spec.size), resample)
    return image


def preprocess(images: list[Image.Image], spec: ImageSpec) -> np.ndarray:
    """(N, 3, size, size) float32 ``pixel_values`` for the image graph."""
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, 1, 3)
    std = np.asarray(spec.std, dtype=np.float32).reshape(1, 1, 3)
    out = np.empty((len(images), 3, spec.size, spec.size), dtype=np.float32)
    for i, image in enumerate(images):
        array = np.asarray(resize(image, spec), dtype=np.float32) / 255.0
        out[i] = ((array - mean) / std).transpose(2, 0, 1)
    return out

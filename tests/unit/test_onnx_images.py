"""Safe decoding and preprocessing of untrusted images."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mmsearch.exceptions import ImageDecodeError
from onnx_models.images import ImageSpec, preprocess, safe_decode


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_decode_to_rgb(fmt: str) -> None:
    image = Image.new("RGB", (30, 20), (200, 10, 10))
    decoded = safe_decode(_encode(image, fmt))
    assert decoded.mode == "RGB" and decoded.size == (30, 20)
    assert decoded.getpixel((5, 5))[0] > 150


def test_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    pixel = safe_decode(buffer.getvalue()).getpixel((2, 2))
    assert pixel[0] > 200 and pixel[2] < 50


def test_transparency_becomes_white() -> None:
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert safe_decode(_encode(image, "PNG")).getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_formats_refused(fmt: str) -> None:
    with pytest.raises(ImageDecodeError, match="unsupported"):
        safe_decode(_encode(Image.new("RGB", (4, 4)), fmt))


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_garbage_raises_typed_error(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        safe_decode(data)


def test_truncated_jpeg_raises_typed_error() -> None:
    rng = np.random.default_rng(0)
    data = _encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ImageDecodeError, match="corrupt"):
        safe_decode(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size; the (tiny) pixel data is never reached if we check first."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header() -> None:
    with pytest.raises(ImageDecodeError, match="too large"):
        safe_decode(_png_header_only(100_000, 100_000))


def test_pixel_cap_is_configurable() -> None:
    data = _encode(Image.new("RGB", (100, 100)), "PNG")
    assert safe_decode(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageDecodeError, match="too large"):
        safe_decode(data, max_pixels=9_999)


def test_byte_cap() -> None:
    with pytest.raises(ImageDecodeError, match="payload too large"):
        safe_decode(b"x" * 101, max_bytes=100)


def test_preprocess_pad_keeps_aspect_with_white_border() -> None:
    spec = ImageSpec(size=32, resize_mode="pad")
    tall = Image.new("RGB", (10, 40), (0, 0, 0))
    pixels = preprocess([tall], spec)
    assert pixels.shape == (1, 3, 32, 32) and pixels.dtype == np.float32
    # (1 - 0.5) / 0.5 = 1 for white padding, (0 - 0.5) / 0.5 = -1 for the black product
    assert pixels[0, :, 16, 0] == pytest.approx([1.0, 1.0, 1.0])
    assert pixels[0, :, 16, 16] == pytest.approx([-1.0, -1.0, -1.0])


def test_preprocess_squash_fills_frame() -> None:
    pixels = preprocess([Image.new("RGB", (10, 40), (0, 0, 0))], ImageSpec(size=32, resize_mode="squash"))
    assert np.allclose(pixels, -1.0)


def test_image_spec_validation_and_roundtrip() -> None:
    with pytest.raises(ValueError):
        ImageSpec(resize_mode="stretch")
    with pytest.raises(ValueError):
        ImageSpec(std=(0.5, 0.0, 0.5))
    spec = ImageSpec(size=240, mean=(0.1, 0.2, 0.3))
    assert ImageSpec.from_dict(spec.to_dict()) == spec

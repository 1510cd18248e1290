"""Hostile and unusual uploads through the photo decoder (``onnx_models.images.safe_decode``) and
through ``POST /search``: every input is either decoded to a correct RGB image or refused with
``ImageDecodeError`` (HTTP 400, JSON), never another exception or a 500; header-declared giants are
refused with bounded memory.

All images are made with Pillow here; nothing is read from disk.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mmsearch.config import Settings
from mmsearch.exceptions import ImageDecodeError
from onnx_models.images import DEFAULT_MAX_PIXELS, safe_decode
from query_service.app import create_app
from tests.unit.fakes import FakeGateway

# --- making images ------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 64, height: int = 48) -> Image.Image:
    """Noise, so the compressed stream is long and a cut lands inside pixel data."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` and whose data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + png_chunk(b"IEND", b""))


def patched_png(width: int, height: int, fix_crc: bool) -> bytes:
    """A real 1x1 PNG with its IHDR size rewritten (CRC recomputed or left stale)."""
    data = bytearray(encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    if fix_crc:
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def patched_jpeg(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8), (9, 9, 9)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def patched_gif(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8), (9, 9, 9)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


def patched_webp(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8), (9, 9, 9)), "WEBP"))
    assert data[12:16] == b"VP8 " and data[23:26] == b"\x9d\x01\x2a"
    data[26:30] = struct.pack("<HH", width, height)  # 14-bit sizes of the lossy key frame
    return bytes(data)


#: Header-declared giants; each must be refused before pixel memory is allocated.
HUGE: dict[str, bytes] = {
    "png header 100000x100000": png_claiming(100_000, 100_000),
    "png header 65535x65535": png_claiming(65_535, 65_535),
    "png header 1x2^31-1": png_claiming(1, 2**31 - 1),
    "real 1x1 png patched to 100000x100000": patched_png(100_000, 100_000, fix_crc=True),
    "real 1x1 png patched, stale crc": patched_png(100_000, 100_000, fix_crc=False),
    "real 8x8 jpeg patched to 65000x65000": patched_jpeg(65_000, 65_000),
    "real 8x8 gif patched to 65535x65535": patched_gif(65_535, 65_535),
    "real 8x8 webp patched to 16383x16383": patched_webp(16_383, 16_383),
}


def expect_refusal(data: bytes, match: str) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError, match=match) as caught:
        safe_decode(data)
    assert caught.value.http_status == 400
    return caught.value


# --- truncation ---------------------------------------------------------------------------------

CUTS = (1, 8, 16, 40, 0.1, 0.3, 0.5, 0.75, 0.9, 0.99)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
@pytest.mark.parametrize("cut", CUTS)
def test_truncated_images_are_refused(fmt: str, cut: float) -> None:
    data = encode(photo(), fmt)
    keep = cut if isinstance(cut, int) else int(len(data) * cut)
    expect_refusal(data[:keep], "corrupt|unsupported|unrecognised")


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_an_image_missing_only_its_end_marker_decodes_completely(fmt: str) -> None:
    # PNG's IEND chunk / GIF's trailer byte carry no pixels: with them cut off every pixel is
    # still there, so the decode is complete and correct (not a partial image).
    source = photo()
    data = encode(source, fmt)
    decoded = safe_decode(data[:-1])
    assert decoded.mode == "RGB" and decoded == safe_decode(data)
    if fmt == "PNG":
        assert np.array_equal(np.asarray(decoded), np.asarray(source))


# --- huge declared dimensions, bounded memory -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_declared_dimensions_are_refused(name: str) -> None:
    expect_refusal(HUGE[name], "too large|corrupt|unrecognised")  # a stale IHDR CRC: PIL does not identify it


MEMORY_PROBE = """
import json, pathlib, sys
from onnx_models.images import safe_decode
from mmsearch.exceptions import ImageDecodeError

def status_mb(field):
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)

def peak_of(data):
    # Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS, so each case is measured
    # on its own, whatever the imports or an earlier case peaked at.
    pathlib.Path("/proc/self/clear_refs").write_text("5")
    before = status_mb("VmRSS")
    try:
        safe_decode(data)
        outcome = "decoded"
    except ImageDecodeError:
        outcome = "refused"
    return outcome, status_mb("VmHWM") - before

out = {}
for path in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    out[path.stem] = peak_of(path.read_bytes())
print(json.dumps(out))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS reset")
def test_refusing_huge_declared_dimensions_stays_within_100_mb(tmp_path: Path) -> None:
    # Peak RSS (VmHWM) over the RSS before the call, per case, in a fresh interpreter. The control,
    # a real 4000 x 3000 PNG (flat, so a few kB, 36 MB of RGB once decoded), shows the meter sees a
    # pixel buffer of that size: a bound that holds is a measurement, not a blind spot.
    for index, name in enumerate(sorted(HUGE)):
        (tmp_path / f"huge-{index}").write_bytes(HUGE[name])
    (tmp_path / "control").write_bytes(encode(Image.new("RGB", (4000, 3000), (120, 30, 200)), "PNG"))
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path)], capture_output=True, text=True,
                            timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    peaks = json.loads(result.stdout)
    print("peak RSS over the RSS before the call, MB:",
          {name: round(peaks[f"huge-{i}"][1], 1) for i, name in enumerate(sorted(HUGE))},
          "control:", round(peaks["control"][1], 1))
    outcome, control_mb = peaks.pop("control")
    assert outcome == "decoded" and control_mb > 30, (outcome, control_mb)
    assert all(outcome == "refused" for outcome, _ in peaks.values()), peaks
    assert max(mb for _, mb in peaks.values()) < 100, peaks


# --- valid but unusual images decode to correct RGB ------------------------------------------------


def test_animated_images_decode_to_their_first_frame() -> None:
    # Deliberate (onnx_models.images.ALLOWED_FORMATS): GIF, APNG and animated WebP give frame 1.
    for fmt in ("GIF", "PNG", "WEBP"):
        data = animated(fmt)
        assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2, fmt  # really animated
        decoded = safe_decode(data)
        red, green, blue = decoded.getpixel((8, 8))
        assert decoded.mode == "RGB" and decoded.size == (16, 16) and red > 200 and blue < 50, (fmt, red, blue)


def test_cmyk_jpeg_decodes_to_its_rgb_colour() -> None:
    source = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # full magenta + yellow = red
    decoded = safe_decode(encode(source, "JPEG", quality=95))
    red, green, blue = decoded.getpixel((8, 8))
    assert decoded.mode == "RGB" and red > 230 and green < 25 and blue < 25


@pytest.mark.parametrize(("value", "grey"), [(0, 0), (32768, 128), (65535, 255), (12850, 50)])
def test_16_bit_grayscale_png_keeps_its_brightness(value: int, grey: int) -> None:
    # Regression: PIL's I;16 -> RGB conversion clipped at 255, so mid-grey (32768) came out white.
    source = Image.fromarray(np.full((8, 8), value, dtype=np.uint16))
    assert source.mode == "I;16"
    data = encode(source, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # stored and reopened as 16-bit
    decoded = safe_decode(data)
    assert decoded.mode == "RGB" and decoded.getpixel((3, 3)) == (grey, grey, grey)


def test_16_bit_rgb_png_decodes() -> None:
    # 16-bit-per-channel colour PNG (written by hand: Pillow cannot save one).
    rows = b"".join(b"\x00" + struct.pack(">HHH", 65535, 32768, 0) * 4 for _ in range(4))
    ihdr = struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows))
            + png_chunk(b"IEND", b""))
    decoded = safe_decode(data)
    assert decoded.mode == "RGB" and decoded.getpixel((1, 1)) == (255, 128, 0)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_composited_on_white(fmt: str) -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    image.paste(1, (4, 0, 8, 8))  # right half opaque red, left half the transparent index 0
    decoded = safe_decode(encode(image, fmt, transparency=0))
    assert decoded.mode == "RGB" and decoded.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.getpixel((6, 1)) == (200, 0, 0)


def test_grayscale_trns_transparency_is_composited_on_white() -> None:
    # Regression: an L image's tRNS colour was ignored, so its transparent pixels came out black.
    decoded = safe_decode(encode(Image.new("L", (4, 4), 0), "PNG", transparency=0))
    assert decoded.getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 20)), (3, (40, 20)), (6, (20, 40)), (8, (20, 40))])
def test_exif_orientation_is_applied(orientation: int, size: tuple[int, int]) -> None:
    # Regression: phone photos (Orientation 6/8) were decoded sideways.
    source = Image.new("RGB", (40, 20), (255, 255, 255))
    source.paste((255, 0, 0), (0, 0, 10, 20))  # a red band on the left as stored
    exif = source.getexif()
    exif[0x0112] = orientation
    decoded = safe_decode(encode(source, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.size == size
    red_corner = {1: (2, 10), 3: (37, 10), 6: (10, 2), 8: (10, 37)}[orientation]
    assert decoded.getpixel(red_corner)[0] > 200 and decoded.getpixel(red_corner)[1] < 60


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_keeps_the_pixels() -> None:
    data = encode(Image.new("RGB", (8, 8), (0, 200, 0)), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\xff")
    decoded = safe_decode(data)
    assert decoded.size == (8, 8) and decoded.getpixel((4, 4))[1] > 150


def test_png_posted_as_jpeg_is_decoded_by_its_content() -> None:
    # The decoder reads the magic bytes, never a file name or a declared type: a PNG named
    # photo.jpg (or sent as image/jpeg) is a PNG and decodes as one (see the HTTP test below too).
    source = photo(16, 16)
    decoded = safe_decode(encode(source, "PNG"))
    assert np.array_equal(np.asarray(decoded), np.asarray(source))


# --- wrong magic bytes ----------------------------------------------------------------------------

NOT_IMAGES = {
    "empty": b"",
    "random bytes": np.random.default_rng(1).bytes(2048),
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
    "html": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 64,
    "tiff": encode(photo(8, 8), "TIFF"),
    "bmp": encode(photo(8, 8), "BMP"),
    "png magic only": b"\x89PNG\r\n\x1a\n",
    "jpeg magic then text": b"\xff\xd8\xff\xe0" + b"hello world" * 10,
    "gif magic then zeros": b"GIF89a" + b"\x00" * 32,
    "webp riff then zeros": b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 32,
}


@pytest.mark.parametrize("name", sorted(NOT_IMAGES))
def test_wrong_magic_bytes_are_refused(name: str) -> None:
    expect_refusal(NOT_IMAGES[name], "unsupported|unrecognised|corrupt|empty")


# --- random bytes and mutations of valid images -----------------------------------------------------

SEEDS = {fmt: encode(photo(24, 16), fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP")}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from((0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255)))))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


def decodes_or_refuses(data: bytes) -> None:
    try:
        image = safe_decode(data)
    except ImageDecodeError as exc:
        assert exc.http_status == 400
        return
    assert image.mode == "RGB" and image.width > 0 and image.height > 0
    assert image.width * image.height <= DEFAULT_MAX_PIXELS


FUZZ = settings(derandomize=True, max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=mutated())
def test_mutated_images_decode_to_rgb_or_are_refused(data: bytes) -> None:
    decodes_or_refuses(data)


@FUZZ
@given(data=st.one_of(st.binary(max_size=512), st.sampled_from(sorted(SEEDS.values())).flatmap(
    lambda seed: st.binary(max_size=256).map(lambda tail: seed[:16] + tail))))
def test_random_bytes_decode_to_rgb_or_are_refused(data: bytes) -> None:
    # The second branch keeps a real format's magic bytes and header start, then random bytes,
    # so the format plugins (not just the sniffing) see garbage.
    decodes_or_refuses(data)


# --- through the HTTP layer ----------------------------------------------------------------------


class DecodingEncoder:
    """A fake model that decodes photos with the real ``safe_decode`` (as ``onnx_models.runtime.
    Encoder.load_image`` does) and returns fixed vectors: the HTTP path to a decode error is real."""

    identity = "fake-decoding"
    dim = 2

    def __init__(self) -> None:
        self.decoded = 0

    def load_image(self, item: bytes) -> Image.Image:
        image = safe_decode(bytes(item))
        self.decoded += 1
        return image

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        return np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (len(images), 1))


def client_and_encoder() -> tuple[Any, DecodingEncoder]:
    encoder = DecodingEncoder()
    app = create_app(Settings(products_alias="products"), es=FakeGateway(), encoder=encoder,
                     capabilities=type("NoPlugins", (), {"painless": False, "native_rrf_usable": False})())
    return app.test_client(), encoder


HTTP_BAD = {
    "truncated jpeg": encode(photo(), "JPEG")[:300],
    "png header 100000x100000": HUGE["png header 100000x100000"],
    "jpeg patched to 65000x65000": HUGE["real 8x8 jpeg patched to 65000x65000"],
    "pdf": NOT_IMAGES["pdf"],
    "html": NOT_IMAGES["html"],
    "random bytes": NOT_IMAGES["random bytes"],
}


@pytest.mark.parametrize("name", sorted(HTTP_BAD))
@pytest.mark.parametrize("transport", ["multipart", "base64"])
def test_bad_uploads_are_a_400_json_error_not_a_500(name: str, transport: str) -> None:
    client, _ = client_and_encoder()
    data = HTTP_BAD[name]
    if transport == "multipart":
        response = client.post("/search", data={"image": (io.BytesIO(data), "photo.jpg", "image/jpeg")},
                               content_type="multipart/form-data")
    else:
        response = client.post("/search", json={"image_base64": base64.b64encode(data).decode()})
    body = response.get_json()
    assert response.status_code == 400, (response.status_code, body)
    assert body["error"] == "ImageDecodeError" and body["message"], body


@pytest.mark.parametrize("transport", ["multipart", "base64"])
def test_a_good_upload_is_decoded_and_searched(transport: str) -> None:
    # The control for the test above: the same route decodes a valid photo (here a PNG sent under
    # a JPEG name and type) and answers 200, so the 400s come from decoding, not from the request.
    client, encoder = client_and_encoder()
    data = encode(photo(32, 32), "PNG")
    if transport == "multipart":
        response = client.post("/search", data={"image": (io.BytesIO(data), "photo.jpg", "image/jpeg")},
                               content_type="multipart/form-data")
    else:
        response = client.post("/search", json={"image_base64": base64.b64encode(data).decode()})
    assert response.status_code == 200, response.get_json()
    assert encoder.decoded == 1

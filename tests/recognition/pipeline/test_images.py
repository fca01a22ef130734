import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from apps.recognition.pipeline.images import ImageRejected, decode_image, encode_jpeg
from tests.faces import photo_bytes

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height pixels that compresses to a few kB:
    the shape of a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    pixels = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "image_invalid"),
        (b"this is text, not a picture", "image_invalid"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "image_invalid"),
        (encoded(np.zeros((1, 1, 3), np.uint8), "PNG"), "image_invalid"),
        (png_bomb(20000, 20000), "image_too_large"),
        (png_bomb(8000, 6000), "image_too_large"),  # over our 40 MP limit, under Pillow's own
        (encoded(np.zeros((40, 40, 3), np.uint8), "GIF"), "image_invalid"),
    ],
    ids=["empty", "text", "jpeg-garbage", "1x1", "20000x20000", "8000x6000", "gif"],
)
def test_bad_input_is_rejected_with_a_code(data, code):
    with pytest.raises(ImageRejected) as rejected:
        decode_image(data, **LIMITS)
    assert rejected.value.code == code


def test_truncated_jpeg_is_invalid():
    data = photo_bytes("img1.jpg")
    with pytest.raises(ImageRejected) as rejected:
        decode_image(data[: len(data) // 3], **LIMITS)
    assert rejected.value.code == "image_invalid"


def test_byte_limit_is_checked_before_decoding():
    with pytest.raises(ImageRejected) as rejected:
        decode_image(photo_bytes("img1.jpg"), max_bytes=1000, max_pixels=LIMITS["max_pixels"])
    assert rejected.value.code == "image_too_large"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_formats_decode_to_bgr(fmt):
    rgb = np.zeros((64, 48, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    image = decode_image(encoded(rgb, fmt, **({"quality": 100} if fmt != "PNG" else {})), **LIMITS)
    assert image.shape == (64, 48, 3)
    assert image[..., 2].mean() > 240 and image[..., 0].mean() < 15  # red is the last channel in BGR


def test_exif_orientation_is_honoured():
    rgb = np.zeros((40, 80, 3), np.uint8)  # landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image = decode_image(encoded(rgb, "JPEG", exif=exif), **LIMITS)
    assert image.shape[:2] == (80, 40)


def test_jpeg_roundtrip():
    image = decode_image(photo_bytes("img20.jpg"), **LIMITS)
    again = decode_image(encode_jpeg(image), **LIMITS)
    assert again.shape == image.shape

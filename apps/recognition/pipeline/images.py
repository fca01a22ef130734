"""Decoding uploaded images safely: format, byte and pixel limits are checked from
the header, before any pixel is decoded (decompression bombs)."""

import io

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
# Smaller than this, no face detector can find anything.
MIN_SIDE = 32


class ImageRejected(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Return the image as a BGR uint8 array (OpenCV's and DeepFace's layout),
    rotated upright according to its EXIF orientation."""
    if not data:
        raise ImageRejected("image_invalid", "The image is empty.")
    if len(data) > max_bytes:
        raise ImageRejected("image_too_large", f"The image has {len(data)} bytes; the limit is {max_bytes}.")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageRejected("image_too_large", "The image has too many pixels.") from None
    except (UnidentifiedImageError, OSError):
        raise ImageRejected("image_invalid", "The file is not a JPEG, PNG or WebP image.") from None
    if image.format not in ALLOWED_FORMATS:
        raise ImageRejected("image_invalid", f"Unsupported image format {image.format}; use JPEG, PNG or WebP.")
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(
            "image_too_large",
            f"The image has {width}x{height} pixels; the limit is {max_pixels} pixels.",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(
            "image_invalid", f"The image is {width}x{height}; each side must be at least {MIN_SIDE} px."
        )
    # Every step in place or in OpenCV: each copy Pillow's defaults make costs as much as
    # a fifth of the decoding (a 640-px JPEG: 2.8 ms instead of 6.0, the same pixels).
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode != "RGB":
            image = image.convert("RGB")
        rgb = np.asarray(image)
    except (OSError, ValueError, Image.DecompressionBombError):
        raise ImageRejected("image_invalid", "The image is truncated or corrupt.") from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def encode_jpeg(image_bgr: np.ndarray, quality: int = 90) -> bytes:
    # OpenCV rather than Pillow: the same libjpeg-turbo bytes without a conversion to RGB
    # and a copy on the way, and a crop is encoded for every face of every frame.
    ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    return encoded.tobytes()


# What an organization that keeps faces only keeps of an enrollment photo: the face with
# room around it (every model's alignment reads at most 1.5 times the box), in the middle
# of a plain grey canvas twice its size, so that the detector finds the face again when a
# model change embeds it (BlazeFace misses faces that fill the frame: cut without the
# canvas, 47 of lfw-dev's 6,922 photos gave no face, against 16 whole; with it, 16, and
# the same accuracy: README, "Enrollment photos"). The grey costs next to nothing as JPEG.
FACE_ONLY_SCALE = 2.0
FACE_ONLY_CANVAS = 2.0
FACE_ONLY_MAX_SIDE = 640
CANVAS_GREY = 127


def face_only(image: np.ndarray, box) -> tuple[np.ndarray, tuple[float, float, float]]:
    """What a model change can embed again of a photo: the face and its surroundings on a
    grey canvas, and how pixels map from the photo's: kept = (photo - (x0, y0)) * scale."""
    height, width = image.shape[:2]
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    half = FACE_ONLY_SCALE * max(box.w, box.h) / 2
    x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
    x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
    crop = image[y0:y1, x0:x1]
    side = FACE_ONLY_CANVAS * 2 * half
    scale = min(1.0, FACE_ONLY_MAX_SIDE / side)
    if scale < 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    canvas_side = max(round(side * scale), *crop.shape[:2])
    canvas = np.full((canvas_side, canvas_side, 3), CANVAS_GREY, dtype=image.dtype)
    # The face's centre at the canvas's centre, wherever the photo's edges cut the crop.
    left = round(canvas_side / 2 - (cx - x0) * scale)
    top = round(canvas_side / 2 - (cy - y0) * scale)
    left = min(max(0, left), canvas_side - crop.shape[1])
    top = min(max(0, top), canvas_side - crop.shape[0])
    canvas[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return canvas, (x0 - left / scale, y0 - top / scale, scale)

"""Decode any image a user brings into the arrays the model and detectors need."""

from __future__ import annotations

import io
import re

import cv2
import numpy as np
from PIL import Image, ImageOps

from fer.errors import FerError
from fer.labels import IMAGE_SIZE

# Above this, images are downscaled before anything else looks at them.
MAX_PIXELS = 4096 * 4096
Image.MAX_IMAGE_PIXELS = None  # We guard size ourselves (MAX_PIXELS) rather than refuse.


class ImageError(FerError):
    """A file is not a readable image."""


def _unreadable(error: Exception) -> ImageError:
    # PIL names the file it was handed, which for bytes is a repr ("<_io.BytesIO object at 0x…>"): not for users.
    detail = re.sub(r"\s*<_io\.\w+ object at 0x[0-9a-f]+>", "", str(error))
    return ImageError(f"not a readable image ({type(error).__name__}: {detail})")


def open_image(data: bytes, *, max_side: int = 2048) -> Image.Image:
    """Decode image bytes to an RGB or L image: first frame, EXIF orientation applied, downscaled.

    Handles animated GIFs (first frame), CMYK, palette, alpha and 16-bit images. Raises
    ImageError for bytes that are not an image or are truncated.
    """
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS or max(image.size) > max_side:
            # draft() lets JPEG decode straight at a reduced scale: a 50 MP photo stays cheap.
            image.draft("RGB", (max_side, max_side))
        image.seek(0)
        image.load()
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise _unreadable(error) from error
    image = ImageOps.exif_transpose(image) or image
    image = _to_8bit(image)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return image


def _to_8bit(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
        return Image.fromarray(scaled.astype(np.uint8), "L")
    if image.mode == "L":
        return image
    if image.mode in ("LA", "RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite onto white so transparent areas do not turn black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def to_gray(image: Image.Image) -> np.ndarray:
    """An (H, W) uint8 grayscale array of an image."""
    return np.asarray(image.convert("L"), dtype=np.uint8)


def to_rgb(image: Image.Image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array of an image."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def resize_face(gray: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize an (H, W) uint8 crop to the model's size×size input."""
    if gray.shape == (size, size):
        return gray
    # BOX averages when shrinking (like OpenCV's INTER_AREA); BILINEAR when enlarging.
    shrinking = gray.shape[0] >= size and gray.shape[1] >= size
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(gray).resize((size, size), resample), dtype=np.uint8)


def decode_face(data: bytes) -> tuple[np.ndarray, list[str]]:
    """Decode a dataset image into a 48×48 uint8 array and the conversions it needed.

    OpenCV decodes first (about 5× faster than PIL on small JPEGs, which matters for 30k-image
    datasets); formats it cannot read (GIF, …) go through PIL. Raises ImageError if the bytes are
    not a readable image.
    """
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if decoded is None:
        return _decode_face_with_pil(data)
    conversions = []
    if decoded.ndim == 3:
        mode = {3: "RGB", 4: "RGBA"}.get(decoded.shape[2], f"{decoded.shape[2]}-channel")
        conversions.append(f"converted {mode} to grayscale")
        code = cv2.COLOR_BGRA2GRAY if decoded.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        decoded = cv2.cvtColor(decoded, code) if decoded.shape[2] in (3, 4) else decoded[..., 0]
    if decoded.dtype != np.uint8:
        conversions.append(f"converted {decoded.dtype} to 8-bit")
        decoded = np.asarray(_to_8bit(Image.fromarray(decoded.astype(np.float32), "F")))
    if decoded.shape != (IMAGE_SIZE, IMAGE_SIZE):
        conversions.append(f"resized to {IMAGE_SIZE}×{IMAGE_SIZE}")
        decoded = resize_face(decoded)
    return decoded, conversions


def _decode_face_with_pil(data: bytes) -> tuple[np.ndarray, list[str]]:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as error:
        raise _unreadable(error) from error
    conversions = []
    if image.mode != "L":
        conversions.append(f"converted {image.mode} to grayscale")
        image = _to_8bit(image).convert("L")
    gray = np.asarray(image, dtype=np.uint8)
    if gray.shape != (IMAGE_SIZE, IMAGE_SIZE):
        conversions.append(f"resized to {IMAGE_SIZE}×{IMAGE_SIZE}")
        gray = resize_face(gray)
    return gray, conversions

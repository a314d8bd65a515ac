"""Decode any image a user brings into the arrays the model and detectors need."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

from fer.errors import FerError
from fer.labels import IMAGE_SIZE

# Above this, images are downscaled before anything else looks at them.
MAX_PIXELS = 4096 * 4096
# Above this, even after JPEG's reduced-scale decoding, an image is refused: 100 MP decode to 300 MB of RGB.
MAX_DECODE_PIXELS = 100_000_000
# Pillow's own bomb guard stays on as a second line: it warns above this and refuses at twice it, judged
# from the header. Our checks come first and say it in words; this catches any path that misses them.
Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS
# A dataset image larger than this is no face crop: 16.8 MP are 67 MB as OpenCV's BGRA array, and two
# are decoded at once.
MAX_FACE_PIXELS = 4096 * 4096


class ImageError(FerError):
    """A file is not a readable image; the message says why in words."""


# What a file's first bytes say it is, for the message when it cannot be decoded.
_IMAGE_SIGNATURES = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"),
                     (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))
_OTHER_SIGNATURES = ((b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive"), (b"\x1aE\xdf\xa3", "a video"))
READABLE_FORMATS = "PNG, JPEG, GIF, BMP, TIFF or WebP"


def unreadable(data: bytes, error: BaseException | None = None) -> ImageError:
    """An ImageError saying in words why `data` could not be decoded: empty, not an image (and what it
    is instead), cut short, damaged, or too large. `error` is what the decoder raised, if anything.

    Never PIL's own text, which names the file it was handed: for bytes, "<_io.BytesIO object at 0x…>".
    """
    return ImageError(f"not a readable image ({_why_unreadable(data, error)})")


def _why_unreadable(data: bytes, error: BaseException | None) -> str:
    if not data:
        return "the file is empty"
    if isinstance(error, Image.DecompressionBombError):
        return (f"too large: its header declares over {2 * (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000:,} megapixels; "
                f"at most {MAX_DECODE_PIXELS // 1_000_000} megapixels")
    if isinstance(error, MemoryError):
        return "too large to decode in memory"
    kind = _image_kind(data)
    if kind is None:
        what = _non_image_kind(data)
        advice = ": save it as JPEG or PNG" if what.startswith("a HEIC") else ""
        return f"{what}, not a {READABLE_FORMATS} image{advice}"
    ends_early = _ends_early(kind, data)
    if ends_early is None:  # No end marker to check (BMP, TIFF): trust the decoder's word.
        ends_early = error is None or isinstance(error, EOFError) or "truncated" in str(error).lower()
    if ends_early:
        return f"the {kind} file is cut short: it ends after {len(data):,} bytes, before the whole picture"
    return f"the {kind} file is damaged: its picture data cannot be decoded"


def _ends_early(kind: str, data: bytes) -> bool | None:
    """Whether the file stops before its format's end marker; None for formats without one."""
    if kind == "PNG":
        return b"IEND" not in data[-32:]
    if kind == "JPEG":
        return not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
    if kind == "GIF":
        return not data.rstrip(b"\x00").endswith(b"\x3b")
    if kind == "WebP":  # RIFF header: bytes 4..8 are the size of everything after them.
        return len(data) < 8 + int.from_bytes(data[4:8], "little")
    return None


def _image_kind(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for signature, name in _IMAGE_SIGNATURES if data.startswith(signature)), None)


def _non_image_kind(data: bytes) -> str:
    if data[4:8] == b"ftyp":
        heif = data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"avif")
        return "a HEIC/HEIF photo" if heif else "a video"
    named = next((name for signature, name in _OTHER_SIGNATURES if data.startswith(signature)), None)
    if named:
        return named
    head = data[:1024]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as cut:
        if cut.start < len(head) - 3:  # Only a character split by the 1 KB cut is allowed.
            return "unknown binary data"
    return "unknown binary data" if b"\x00" in head else "text"


def open_image(data: bytes, *, max_side: int = 2048) -> Image.Image:
    """Decode image bytes to an RGB or L image: first frame, EXIF orientation applied, downscaled.

    Handles animated GIFs (first frame), CMYK, palette, alpha and 16-bit images. Raises
    ImageError saying why for bytes that are empty, not an image, truncated, damaged or too large.
    """
    if not data:
        raise unreadable(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Refused below, in words.
            image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS or max(image.size) > max_side:
            # draft() lets JPEG decode straight at a reduced scale: a 50 MP photo stays cheap.
            image.draft("RGB", (max_side, max_side))
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise unreadable(data, error) from error
    if image.width * image.height > MAX_DECODE_PIXELS:
        raise ImageError(f"not a readable image (too large: {image.width:,}×{image.height:,} pixels; "
                         f"at most {MAX_DECODE_PIXELS // 1_000_000} megapixels)")
    try:
        image.seek(0)
        image.load()
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise unreadable(data, error) from error
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


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) that an image's header declares, read without decoding its pixels.

    Raises ImageError in words for bytes Pillow does not recognise as a PNG, JPEG, GIF, BMP, TIFF or WebP
    image, and for a header that declares more than Pillow's bomb guard allows.
    """
    if not data:
        raise unreadable(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # The caller judges the size.
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, DecompressionBombError...)
        raise unreadable(data, error) from error


def decode_face(data: bytes) -> tuple[np.ndarray, list[str]]:
    """Decode a dataset image into a 48×48 uint8 array and the conversions it needed.

    The header is read first (Pillow, without decoding), so an image that declares more than
    MAX_FACE_PIXELS is refused before any pixel is unpacked. OpenCV then decodes (about 5× faster than
    PIL on small JPEGs, which matters for 30k-image datasets); formats it cannot read (GIF, …) go
    through PIL. Raises ImageError if the bytes are not a readable image.
    """
    width, height = image_size(data)
    if width * height > MAX_FACE_PIXELS:
        raise ImageError(f"not a readable image (too large for a face: {width:,}×{height:,} pixels; "
                         f"at most {MAX_FACE_PIXELS / 1e6:.1f} megapixels)")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
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
    if not data:
        raise unreadable(data)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as error:  # As in open_image: many types, one message in words.
        raise unreadable(data, error) from error
    conversions = []
    if image.mode != "L":
        conversions.append(f"converted {image.mode} to grayscale")
        image = _to_8bit(image).convert("L")
    gray = np.asarray(image, dtype=np.uint8)
    if gray.shape != (IMAGE_SIZE, IMAGE_SIZE):
        conversions.append(f"resized to {IMAGE_SIZE}×{IMAGE_SIZE}")
        gray = resize_face(gray)
    return gray, conversions

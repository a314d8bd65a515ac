"""fer.data.images: a file that cannot be decoded gets a message in words saying what is wrong with it."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fer.data.images import ImageError, decode_face, open_image, unreadable

RNG = np.random.default_rng(0)
PICTURE = Image.fromarray(RNG.integers(0, 255, (120, 160, 3), dtype=np.uint8))


def encoded(format: str) -> bytes:
    buffer = io.BytesIO()
    PICTURE.save(buffer, format)
    return buffer.getvalue()


def problem(data: bytes, decoder=open_image) -> str:
    with pytest.raises(ImageError) as raised:
        decoder(data)
    message = str(raised.value)
    assert message.startswith("not a readable image (")
    assert "<" not in message and "0x" not in message and "Error" not in message  # no reprs, no type names
    return message


@pytest.mark.parametrize("decoder", [open_image, decode_face])
def test_an_empty_file(decoder):
    assert problem(b"", decoder) == "not a readable image (the file is empty)"


@pytest.mark.parametrize("data, what", [
    (b"name,emotion\nx.png,happy\n", "text"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
    (b"PK\x03\x04\x14\x00\x00\x00", "a zip archive"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "a video"),
    (bytes(range(256)) * 4, "unknown binary data"),
])
@pytest.mark.parametrize("decoder", [open_image, decode_face])
def test_a_file_that_is_not_an_image_says_what_it_is(data, what, decoder):
    assert problem(data, decoder) == f"not a readable image ({what}, not a PNG, JPEG, GIF, BMP, TIFF or WebP image)"


def test_a_heic_photo_gets_advice():
    assert problem(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00").endswith("image: save it as JPEG or PNG)")


@pytest.mark.parametrize("format, name", [("PNG", "PNG"), ("JPEG", "JPEG"), ("GIF", "GIF"), ("WEBP", "WebP"),
                                          ("BMP", "BMP")])
@pytest.mark.parametrize("decoder", [open_image, decode_face])
def test_a_file_cut_short(format, name, decoder):
    data = encoded(format)
    for length in (len(data) // 2, 40):
        assert problem(data[:length], decoder) == (
            f"not a readable image (the {name} file is cut short: it ends after {length:,} bytes, "
            "before the whole picture)")


@pytest.mark.parametrize("format", ["PNG", "JPEG"])
def test_a_damaged_file_with_its_end_intact(format):
    data = bytearray(encoded(format))
    data[60:len(data) // 2] = bytes(len(data) // 2 - 60)  # Wreck the picture data; the end marker stays.
    assert "file is damaged: its picture data cannot be decoded" in problem(bytes(data))


def test_an_image_too_large_to_decode_is_refused_before_decoding():
    # A PNG header announcing 20000 × 20000 pixels: 1.2 GB of RGB if it were decoded.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    def png(width: int, height: int) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return b"".join([b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(b"\0" * 64)),
                         chunk(b"IEND", b"")])

    assert problem(png(12_000, 12_000)) == (
        "not a readable image (too large: 12,000×12,000 pixels; at most 100 megapixels)")
    # Past twice that, Pillow's own bomb guard refuses it while reading the header.
    assert problem(png(20_000, 20_000)) == (
        "not a readable image (too large: its header declares over 200 megapixels; at most 100 megapixels)")


def test_memory_errors_read_as_too_large():
    assert str(unreadable(encoded("PNG"), MemoryError())) == "not a readable image (too large to decode in memory)"


def test_good_images_still_decode():
    for format in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        assert open_image(encoded(format)).size == (160, 120)
        assert decode_face(encoded(format))[0].shape == (48, 48)

"""Hostile files, built by the tests themselves in seconds: zip bombs, decompression-bomb PNGs, zips written
byte by byte (so an entry can carry a deflate stream made without deflating gigabytes), and a way to run a
`python -m` command while measuring its time and peak memory (Linux: /proc/self/status)."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

_CHUNK = 1 << 22  # 4 MiB of zeros deflate to 4 KB; after a full flush each chunk's bytes are the same.


class Zeros(NamedTuple):
    """A raw deflate stream of `size` zero bytes and the CRC-32 of those bytes (a zip entry's)."""

    deflated: bytes
    size: int
    crc: int


def deflated_zeros(size: int) -> Zeros:
    """`size` (a multiple of 4 MiB) zero bytes as a raw deflate stream: one chunk deflated, repeated."""
    if size % _CHUNK:
        raise ValueError(f"size must be a multiple of {_CHUNK}")
    chunk = bytes(_CHUNK)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // _CHUNK):
        crc = zlib.crc32(chunk, crc)
    return Zeros(block * (size // _CHUNK) + compressor.flush(), size, crc)


def png_bomb(width: int, height: int) -> bytes:
    """A grayscale PNG of width×height black pixels whose file is about a thousandth of its pixels."""
    row = bytes(width + 1)  # Filter byte 0, then the pixels.
    compressor = zlib.compressobj(9)
    first = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    # A full flush resets the history, so every later row deflates to the same bytes as the second.
    body = first + repeated * (height - 1) + compressor.flush()[:-4]
    raw_size = (width + 1) * height
    adler = ((raw_size % 65521) << 16) | 1  # Adler-32 of zeros: a stays 1, b grows by 1 per byte.
    idat = body + struct.pack(">I", adler)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def face_png(seed: int) -> bytes:
    """A 48×48 grayscale PNG of noise: a readable dataset image."""
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def write_zip(path: Path, stored: dict[str, bytes], deflated: dict[str, Zeros] | None = None) -> Path:
    """A zip written byte by byte: `stored` entries as they are, `deflated` ones with their ready deflate
    stream (zipfile can only deflate what it is given, which for a bomb would take minutes)."""
    entries = [(name, 0, data, len(data), zlib.crc32(data)) for name, data in stored.items()]
    entries += [(name, 8, zeros.deflated, zeros.size, zeros.crc) for name, zeros in (deflated or {}).items()]
    central, offset = [], 0
    with open(path, "wb") as out:
        for name, method, data, size, crc in entries:
            encoded = name.encode()
            out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size,
                                  len(encoded), 0) + encoded)
            out.write(data)
            central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data),
                                       size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
            offset += 30 + len(encoded) + len(data)
        directory = b"".join(central)
        out.write(directory)
        out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), offset, 0))
    return path


class Measured(NamedTuple):
    """What a command did: its exit status, output, wall seconds and peak resident memory in bytes."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_bytes: int


# Runs `python -m MODULE ARGS...` and, however it ends, writes its own peak resident memory (VmHWM) to a
# file. Measured inside the new program: the kernel's rusage of a child would also count the memory of the
# test process it was forked from, which a large pytest process makes larger than the command itself.
_PEAK_WRAPPER = """
import os, runpy, sys
module, sys.argv = sys.argv[1], sys.argv[1:]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["FER_TEST_PEAK_FILE"], "w") as out:
        out.write(peak)
"""


def run_measured(module_args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
                 timeout: float = 120) -> Measured:
    """Run `python -m MODULE ARGS...` (module_args = [MODULE, *ARGS]), measuring its wall time and peak memory."""
    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        command = [sys.executable, "-c", _PEAK_WRAPPER, *module_args]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {}), "FER_TEST_PEAK_FILE": str(peak_file)})
        seconds = time.perf_counter() - started
        peak = int(peak_file.read_text()) * 1024 if peak_file.exists() else 0  # VmHWM is in kB.
        return Measured(done.returncode, done.stdout, done.stderr, seconds, peak)

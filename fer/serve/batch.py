"""Photos in bulk for Predict: a folder on the server or an uploaded zip in, one zip of annotated photos out.

Both inputs come from a browser, so both are bounded: a folder must lie inside one of the roots the
caller allows (after following links), a zip is read member by member with its declared and its
real sizes checked, and neither gives more than `BatchLimits.photos` photos or `BatchLimits.bytes`.
Each photo is then decoded by fer.data.images, which refuses decompression bombs by pixel count.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable, NamedTuple

from fer.data.roots import DataRoots
from fer.errors import FerError
from fer.formatting import file_size

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


@dataclass(frozen=True)
class BatchLimits:
    """How much one batch may read."""

    photos: int = 500  # A page of results a person can still scroll; ~1 min of analysis on 2 cores.
    bytes: int = 500_000_000  # All photos together, read into memory at once.
    photo_bytes: int = 50_000_000  # One photo: larger than any camera's JPEG.
    ratio: int = 200  # Most compression a zip member may claim: JPEGs barely compress, bombs do 1000×.
    entries: int = 20_000  # Files and folders a folder's walk looks at: a path like / must not take minutes.


class Photo(NamedTuple):
    """A photo's name (relative to its folder or zip) and its bytes."""

    name: str
    data: bytes


def is_photo(name: str) -> bool:
    """Whether a file name has a photo's suffix (hidden files and macOS resource forks are not photos)."""
    path = PurePosixPath(name)
    return (path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith(".")
            and "__MACOSX" not in path.parts)


def photos_in_folder(folder: str, roots: DataRoots, limits: BatchLimits = BatchLimits()) -> list[Photo]:
    """The photos in `folder` and its sub-folders (sorted by name), which must lie inside `roots`.

    Links that lead outside the roots (or into another user's space) are skipped, not followed.
    """
    base = roots.resolve(str(folder))
    if not base.is_dir():
        raise FerError(f"'{str(folder)[:200]}' is not a folder on the server")
    photos, total, entries = [], 0, []
    for path in base.rglob("*"):
        entries.append(path)
        if len(entries) > limits.entries:
            raise FerError(f"'{folder}' holds more than {limits.entries:,} files and folders; pick a smaller folder")
    for path in sorted(entries):
        if not is_photo(path.name) or not path.is_file():
            continue
        if not roots.contains(path):
            continue
        real = path.resolve()
        size = path.stat().st_size
        _check_room(len(photos), total, size, limits, str(path.relative_to(base)))
        photos.append(Photo(path.relative_to(base).as_posix(), real.read_bytes()[:limits.photo_bytes + 1]))
        total += size
    if not photos:
        raise FerError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in '{folder}'")
    return photos


def photos_in_zip(data: bytes, limits: BatchLimits = BatchLimits()) -> list[Photo]:
    """The photos inside a zip's bytes, in the archive's order; FerError for a damaged or bomb-like archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir() and is_photo(info.filename)]
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise FerError("the zip cannot be read: it is damaged or not a zip") from error
    photos, total = [], 0
    for info in members:
        if info.compress_size and info.file_size / info.compress_size > limits.ratio:
            raise FerError(f"'{info.filename}' in the zip claims {info.file_size / info.compress_size:,.0f}× "
                           "compression, as a zip bomb does; it was not unpacked")
        _check_room(len(photos), total, info.file_size, limits, info.filename)
        try:
            with archive.open(info) as member:
                content = member.read(limits.photo_bytes + 1)  # A member may lie about its size.
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            raise FerError(f"'{info.filename}' in the zip cannot be unpacked: the archive is damaged") from error
        _check_room(len(photos), total, len(content), limits, info.filename)
        photos.append(Photo(info.filename, content))
        total += len(content)
    if not photos:
        raise FerError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in the zip")
    return photos


def _check_room(count: int, total: int, size: int, limits: BatchLimits, name: str) -> None:
    if count >= limits.photos:
        raise FerError(f"more than {limits.photos:,} photos; split them into smaller batches")
    if size > limits.photo_bytes:
        raise FerError(f"'{name}' is larger than {file_size(limits.photo_bytes)}, more than a photo needs")
    if total + size > limits.bytes:
        raise FerError(f"the photos add up to more than {file_size(limits.bytes)}; split them into smaller batches")


def annotated_zip(pictures: Iterable[tuple[str, bytes]]) -> bytes:
    """One zip of annotated JPEGs: each photo's name with "-annotated.jpg", made unique where two collide."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # JPEGs do not compress further.
        for name, picture in pictures:
            stem = PurePosixPath(name.replace("\\", "/")).with_suffix("").as_posix().lstrip("/")
            stem = "/".join(part for part in stem.split("/") if part not in ("", ".", "..")) or "photo"
            target, copy = f"{stem}-annotated.jpg", 2
            while target in used:
                target, copy = f"{stem}-annotated-{copy}.jpg", copy + 1
            used.add(target)
            archive.writestr(target, picture)
    return buffer.getvalue()

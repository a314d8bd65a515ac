"""Writing under FER_STUDIO_HOME: every file to a new name, never over an existing one, and folders that do
not grow without limit.

A name typed into a page is a plain file name inside one folder the app chose; a write claims its name
atomically (the operating system refuses an existing one), so two sessions can never replace each other's
file. Folders of things that can be made again (decoded caches, uploads) are kept under a size cap by
removing the least recently used files first.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

from fer.errors import FerError

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,99}")


def new_path(folder: Path, name: str, suffix: str = "") -> Path:
    """`folder/name` + `suffix` for a name a user typed, when it is a plain name that is not taken yet.

    Raises FerError in words for an empty name, one with a folder separator or other characters than
    letters, digits, spaces and ._()- , and for a name that already exists in `folder`.
    """
    name = name.strip()
    if suffix and name.lower().endswith(suffix.lower()):
        name = name[: -len(suffix)]
    if not name:
        raise FerError("enter a name")
    if not _PLAIN_NAME.fullmatch(name) or name.endswith("."):
        raise FerError(f"'{name[:100]}' is not a plain name: use letters, digits, spaces and . _ ( ) - "
                       "(at most 100 characters), without folders")
    target = folder / f"{name}{suffix}"
    if target.exists() or target.is_symlink():
        raise FerError(f"'{target.name}' already exists; choose a new name")
    return target


def write_new(target: Path, data: bytes) -> Path:
    """Write `data` to `target`, which must not exist yet: written beside it under a temporary name, then
    linked into place, which the operating system refuses when the name is taken (FerError)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        claim(Path(temporary), target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def claim(written: Path, target: Path) -> None:
    """Give the finished file `written` the name `target`, only if that name is free (FerError if not).
    `written` keeps its own name too; the caller removes it."""
    try:
        os.link(written, target)
    except FileExistsError:
        raise FerError(f"'{target.name}' already exists; choose a new name") from None


def claim_folder(target: Path) -> Path:
    """Create the folder `target`, only if nothing has that name yet (FerError if it does)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.mkdir()
    except FileExistsError:
        raise FerError(f"'{target.name}' already exists; choose a new name") from None
    return target


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links not followed)."""
    if not path.is_dir() or path.is_symlink():
        try:
            return path.lstat().st_size
        except OSError:
            return 0
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def prune_least_recent(folder: Path, max_bytes: int, *, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove the least recently used files of `folder` (by modification time: readers touch what they use)
    until it holds at most `max_bytes`; `keep` is never removed. Returns what was removed."""
    import shutil

    kept = {Path(path) for path in keep}
    try:
        entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    except OSError:
        return []
    sized = []
    for entry in entries:
        try:
            sized.append((entry.lstat().st_mtime, entry, size_of(entry)))
        except OSError:
            continue
    total = sum(size for _, _, size in sized)
    removed = []
    for _, entry, size in sorted(sized, key=lambda item: item[0]):
        if total <= max_bytes:
            break
        if entry in kept:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        total -= size
        removed.append(entry)
    return removed

"""Datasets uploaded through the browser: stored in the user's uploads folder under new names only, and kept
under a size cap (the least recently uploaded go first; they can be uploaded again)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from fer.errors import FerError
from fer.paths import uploads_dir
from fer.storage import prune_least_recent, write_new


def uploads_limit_bytes() -> int:
    """How much one user's uploads folder may hold: $FER_STUDIO_UPLOADS_MB megabytes (default 2,000: the
    Kaggle FER2013 zip, about 60 MB, thirty times over)."""
    try:
        megabytes = float(os.environ.get("FER_STUDIO_UPLOADS_MB", "2000"))
    except ValueError:
        megabytes = 2000.0
    return int(max(megabytes, 0) * 1_000_000)


def save_upload(name: str, data: bytes, user: str | None = None) -> Path:
    """Store an uploaded file in `user`'s uploads folder as `<content hash>-<safe name>` and return its path.

    The same content uploaded again is the same file, reused and never rewritten (rewriting would change
    its time and so the decoded cache's key). Nothing is ever written over an existing file.
    """
    digest = hashlib.sha256(data).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[-80:].lstrip(".") or "upload"
    folder = uploads_dir(user)
    target = folder / f"{digest}-{safe}"
    if target.is_file():
        os.utime(target)  # Used again: the last to be pruned.
        return target
    try:
        write_new(target, data)
    except FerError:
        if not target.is_file():  # Taken by something that is not this upload's file.
            raise
    prune_least_recent(folder, uploads_limit_bytes(), keep=(target,))
    return target


def upload_name(source: str, user: str | None = None) -> str | None:
    """The name a file had when `user` uploaded it, if `source` is one of their uploads; else None."""
    path = Path(source)
    if path.parent != uploads_dir(user):
        return None
    return path.name.split("-", 1)[-1]

"""Uploads: stored in the user's own uploads folder under new names, reused when the same content comes again,
and kept under a size cap."""

from __future__ import annotations

import os

from fer.data.uploads import save_upload, upload_name
from fer.paths import uploads_dir


def test_an_upload_goes_to_the_users_own_folder_under_a_safe_new_name():
    saved = save_upload("../../etc/faces (1).zip", b"zip bytes", "ada")
    assert saved.parent == uploads_dir("ada") and saved.name.endswith("-faces__1_.zip")
    assert upload_name(str(saved), "ada") == "faces__1_.zip" and upload_name(str(saved), "bob") is None
    assert save_upload("faces.zip", b"other bytes", None).parent == uploads_dir(None)


def test_the_same_content_is_reused_never_rewritten(tmp_path):
    first = save_upload("faces.zip", b"zip bytes")
    os.utime(first, (1, 1))
    again = save_upload("faces.zip", b"zip bytes")
    assert again == first and again.read_bytes() == b"zip bytes"
    assert again.stat().st_mtime > 1  # Used again: the last to be pruned.


def test_old_uploads_go_once_the_folder_passes_its_cap(monkeypatch):
    monkeypatch.setenv("FER_STUDIO_UPLOADS_MB", "0.0025")  # 2,500 bytes.
    oldest = save_upload("a.zip", bytes(1000))
    os.utime(oldest, (1, 1))
    save_upload("b.zip", bytes(1000) + b"b")
    newest = save_upload("c.zip", bytes(1000) + b"c")
    assert not oldest.exists() and newest.exists()
    assert len(list(uploads_dir().iterdir())) == 2

"""Writes under FER_STUDIO_HOME: new names only, atomically claimed, and folders kept under a size cap."""

from __future__ import annotations

import os

import pytest

from fer.errors import FerError
from fer.storage import claim_folder, new_path, prune_least_recent, write_new


@pytest.mark.parametrize("typed", ["", "  ", "../up", "a/b", "/etc/passwd", ".hidden", "dots.", "x" * 101, "tab\there"])
def test_a_typed_name_must_be_plain(tmp_path, typed):
    with pytest.raises(FerError, match="enter a name|is not a plain name"):
        new_path(tmp_path, typed, ".zip")


def test_a_taken_name_is_refused_and_a_suffix_typed_twice_is_not_doubled(tmp_path):
    assert new_path(tmp_path, "faces.zip", ".zip") == tmp_path / "faces.zip"
    (tmp_path / "faces.zip").write_bytes(b"mine")
    with pytest.raises(FerError, match="'faces.zip' already exists; choose a new name"):
        new_path(tmp_path, "faces", ".zip")


def test_write_new_never_writes_over_an_existing_file(tmp_path):
    target = write_new(tmp_path / "a" / "upload.zip", b"first")
    with pytest.raises(FerError, match="already exists"):
        write_new(target, b"second")
    assert target.read_bytes() == b"first"
    assert sorted(path.name for path in target.parent.iterdir()) == ["upload.zip"]  # No temporary left behind.
    claim_folder(tmp_path / "copy")
    with pytest.raises(FerError, match="'copy' already exists"):
        claim_folder(tmp_path / "copy")


def test_pruning_removes_the_least_recently_used_first_and_keeps_what_it_is_told(tmp_path):
    for age, name in enumerate(["old", "middle", "new"]):
        (tmp_path / name).write_bytes(bytes(1000))
        os.utime(tmp_path / name, (1000 + age, 1000 + age))
    folder = tmp_path / "folder"
    claim_folder(folder)
    (folder / "inside").write_bytes(bytes(1000))
    os.utime(folder, (999, 999))
    removed = prune_least_recent(tmp_path, 2500, keep=[tmp_path / "old"])
    assert [path.name for path in removed] == ["folder", "middle"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new", "old"]

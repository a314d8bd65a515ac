"""Datasets only inside the data roots: the sidebar's path and the URL's ?dataset= resolve through these."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer.data.datasets import open_dataset
from fer.data.roots import data_roots
from fer.errors import DatasetError, FerError
from fer.labels import CLASSES
from fer.paths import home_dir, uploads_dir, user_datasets_dir
from helpers.hostile_files import face_png


def kaggle_folder(root: Path) -> Path:
    for split in ("train", "validation"):
        for index, name in enumerate(CLASSES):
            folder = root / "images" / split / name
            folder.mkdir(parents=True)
            (folder / "0.png").write_bytes(face_png(index))
    return root


def test_without_accounts_the_default_roots_are_home_and_fer_studio_home(monkeypatch, tmp_path):
    monkeypatch.delenv("FER_STUDIO_DATA_ROOTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "me").mkdir()
    roots = data_roots(accounts=False)
    assert roots.folders[:2] == ((tmp_path / "me").resolve(), home_dir().resolve())
    assert roots.contains(tmp_path / "me" / "faces.zip") and not roots.contains("/etc/passwd")


def test_with_accounts_only_the_configured_roots_and_the_users_own_folders(monkeypatch, tmp_path):
    monkeypatch.delenv("FER_STUDIO_DATA_ROOTS", raising=False)
    roots = data_roots(accounts=True, user="ada")
    assert roots.folders == (uploads_dir("ada").resolve(), user_datasets_dir("ada").resolve())
    assert not roots.contains(Path.home() / "faces.zip")
    assert not roots.contains(uploads_dir("bob") / "x.zip")  # Another user's uploads.
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", f"{tmp_path / 'lab'}:{tmp_path / 'class'}")
    roots = data_roots(accounts=True, user="ada")
    assert roots.contains(tmp_path / "class" / "fer.zip") and not roots.contains(tmp_path / "other.zip")


def test_another_users_space_stays_out_even_inside_a_configured_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(home_dir().parent))  # A root that holds FER_STUDIO_HOME.
    alice_upload = uploads_dir("alice") / "0123-faces.zip"
    alice_upload.parent.mkdir(parents=True)
    alice_upload.write_bytes(b"zip")
    assert data_roots(accounts=True, user="alice").allows(str(alice_upload))
    bob = data_roots(accounts=True, user="bob")
    assert not bob.contains(alice_upload) and not bob.allows(str(alice_upload))
    with pytest.raises(FerError, match="is outside the folders this server opens datasets from"):
        bob.resolve(str(alice_upload))
    assert bob.contains(home_dir().parent / "lab" / "fer.zip") and bob.contains(uploads_dir("bob") / "b.zip")


def test_a_path_outside_gets_one_sentence_the_same_whether_it_exists_or_not(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "data"))
    roots = data_roots(accounts=False)
    words = []
    for outside in ("/etc", "/no/such/folder", f"{tmp_path}/data/../secret.zip"):
        with pytest.raises(FerError) as refused:
            roots.resolve(outside)
        words.append(str(refused.value).replace(outside, "PATH"))
    assert len(set(words)) == 1
    assert words[0].startswith("'PATH' is outside the folders this server opens datasets from (")


def test_a_link_inside_the_roots_that_leads_outside_is_refused(monkeypatch, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "escape").symlink_to("/etc")
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "data"))
    roots = data_roots(accounts=False)
    with pytest.raises(FerError, match="is outside the folders"):
        roots.resolve(str(tmp_path / "data" / "escape"))
    with pytest.raises(DatasetError, match="is outside the folders"):
        open_dataset(tmp_path / "data" / "escape", roots=roots)


def test_file_links_to_outside_are_left_out_of_a_folder_opened_for_a_browser(monkeypatch, tmp_path):
    data = kaggle_folder(tmp_path / "data")
    outside = tmp_path / "secret.png"
    outside.write_bytes(face_png(42))
    (data / "images" / "train" / "happy" / "1.png").symlink_to(outside)
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(data))
    browser = open_dataset(data, roots=data_roots(accounts=False))
    assert [(item.file, item.reason) for item in browser.skipped] == [
        ("images/train/happy/1.png", "a link to a file outside the folders this server opens")]
    assert browser.counts()["train"]["happy"] == 1
    command_line = open_dataset(data)  # The person typing the path may open what it links to.
    assert command_line.counts()["train"]["happy"] == 2 and not command_line.skipped

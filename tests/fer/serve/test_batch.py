"""Photos in bulk (fer/serve/batch.py): a folder inside the allowed roots, a bounded zip, one zip out."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from fer.errors import FerError
from fer.data.roots import DataRoots
from fer.serve.batch import BatchLimits, annotated_zip, photos_in_folder, photos_in_zip


def _png(value: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), value, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def roots(*folders):
    return DataRoots(tuple(folder.resolve() for folder in folders))


def test_a_folder_inside_the_roots_gives_its_photos_sorted(tmp_path):
    (tmp_path / "party" / "more").mkdir(parents=True)
    (tmp_path / "party" / "b.png").write_bytes(_png())
    (tmp_path / "party" / "more" / "a.JPG").write_bytes(_png())
    (tmp_path / "party" / "notes.txt").write_text("not a photo")
    (tmp_path / "party" / ".hidden.png").write_bytes(_png())
    photos = photos_in_folder(tmp_path / "party", roots(tmp_path))
    assert [photo.name for photo in photos] == ["b.png", "more/a.JPG"]


def test_a_folder_outside_the_roots_or_a_link_out_of_them_is_refused(tmp_path):
    inside, outside = tmp_path / "data", tmp_path / "private"
    inside.mkdir(), outside.mkdir()
    (outside / "secret.png").write_bytes(_png())
    with pytest.raises(FerError, match="outside the folders this server opens datasets from"):
        photos_in_folder(outside, roots(inside))
    with pytest.raises(FerError, match="outside"):
        photos_in_folder(inside / ".." / "private", roots(inside))
    (inside / "link.png").symlink_to(outside / "secret.png")
    (inside / "own.png").write_bytes(_png())
    assert [photo.name for photo in photos_in_folder(inside, roots(inside))] == ["own.png"]


def test_a_folder_without_photos_or_with_too_many_says_so(tmp_path):
    with pytest.raises(FerError, match="no photos"):
        photos_in_folder(tmp_path, roots(tmp_path))
    for number in range(3):
        (tmp_path / f"{number}.png").write_bytes(_png())
    with pytest.raises(FerError, match="more than 2 photos"):
        photos_in_folder(tmp_path, roots(tmp_path), BatchLimits(photos=2))


def test_a_zip_gives_its_photos_and_skips_the_rest():
    data = _zip({"a.png": _png(), "folder/b.png": _png(30), "readme.txt": b"hi", "__MACOSX/._a.png": b"x"})
    assert [photo.name for photo in photos_in_zip(data)] == ["a.png", "folder/b.png"]


def test_a_zip_bomb_and_a_damaged_zip_are_refused_in_words():
    bomb = _zip({"big.png": bytes(5_000_000)})  # Zeros compress about 1000×.
    with pytest.raises(FerError, match="as a zip bomb does"):
        photos_in_zip(bomb)
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 60, 3), np.uint8)).save(noise, "PNG")
    photos = {f"{name}.png": noise.getvalue() for name in "abc"}  # About 10 KB each.
    with pytest.raises(FerError, match="add up to more than 15.0 KB"):
        photos_in_zip(_zip(photos), BatchLimits(bytes=15_000))
    with pytest.raises(FerError, match="damaged or not a zip"):
        photos_in_zip(b"PK\x03\x04 not really")


def test_one_zip_of_annotated_photos_with_unique_safe_names():
    data = annotated_zip([("a.png", b"1"), ("a.jpg", b"2"), ("../../etc/x.png", b"3")])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["a-annotated.jpg", "a-annotated-2.jpg", "etc/x-annotated.jpg"]
        assert archive.read("a-annotated-2.jpg") == b"2"

"""Hostile datasets are answered in words, within 20 s and 1.5 GB, and the rest of the dataset still opens.

Each bomb is built by the test (tests/helpers/hostile_files.py) and opened by `python -m fer info` in a
child process whose wall time and peak memory are measured; the pages open datasets through the same
fer.data.datasets.open_dataset with the same limits (fer.data.limits).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fer.data.datasets import open_dataset
from fer.data.limits import DatasetLimits
from fer.errors import DatasetError
from fer.labels import CLASSES
from helpers.hostile_files import deflated_zeros, face_png, png_bomb, run_measured, write_zip

ROOT = Path(__file__).resolve().parents[3]
SECONDS, PEAK_BYTES = 20.0, 1.5e9  # The target for every hostile file.


def faces(split: str = "train") -> dict[str, bytes]:
    """One readable face per class in the Kaggle layout."""
    return {f"images/{split}/{name}/0.png": face_png(index) for index, name in enumerate(CLASSES)}


def fer_info(dataset: Path, home: Path):
    """`python -m fer info --dataset DATASET --json`, measured; its JSON when it succeeded."""
    measured = run_measured(["fer", "info", "--dataset", str(dataset), "--json"], cwd=ROOT,
                            env={"FER_STUDIO_HOME": str(home)})
    assert "Traceback" not in measured.stderr, measured.stderr
    assert measured.seconds < SECONDS, f"took {measured.seconds:.1f} s"
    assert measured.peak_bytes < PEAK_BYTES, f"peaked at {measured.peak_bytes / 1e9:.2f} GB"
    return measured, (json.loads(measured.stdout) if measured.returncode == 0 else None)


def test_a_zip_entry_that_inflates_to_2_gib_is_left_out_unread(tmp_path):
    bomb = write_zip(tmp_path / "bomb.zip", faces(), {"images/train/happy/bomb.png": deflated_zeros(2 << 30)})
    measured, info = fer_info(bomb, tmp_path / "home")
    assert info is not None, measured.stderr
    assert info["skipped"] == [{"file": "images/train/happy/bomb.png",
                                "reason": "the zip entry would unpack to 2,147 MB; a dataset image may be at most "
                                          "67 MB"}]
    assert info["splits"]["train"] == {name: 1 for name in CLASSES}


def test_a_zip_entry_packed_like_a_bomb_is_left_out_even_when_small(tmp_path):
    bomb = write_zip(tmp_path / "ratio.zip", faces(), {"images/train/sad/flat.png": deflated_zeros(32 << 20)})
    dataset = open_dataset(bomb, use_cache=False)
    assert [item.file for item in dataset.skipped] == ["images/train/sad/flat.png"]
    assert "times its packed size, like a zip bomb" in dataset.skipped[0].reason
    assert len(dataset.split("train")) == 7


def test_a_png_that_decodes_to_30000_by_30000_pixels_is_judged_by_its_header(tmp_path):
    bomb = write_zip(tmp_path / "png-bomb.zip", {**faces(), "images/train/fear/bomb.png": png_bomb(30_000, 30_000)})
    measured, info = fer_info(bomb, tmp_path / "home")
    assert info is not None, measured.stderr
    assert info["skipped"] == [{"file": "images/train/fear/bomb.png",
                                "reason": "not a readable image (too large: its header declares over 200 megapixels; "
                                          "at most 100 megapixels)"}]
    assert info["splits"]["train"]["fear"] == 1


def test_a_face_image_too_large_for_a_face_is_refused_before_decoding(tmp_path):
    big = write_zip(tmp_path / "big.zip", {**faces(), "images/train/fear/big.png": png_bomb(6000, 6000)})
    dataset = open_dataset(big, use_cache=False)
    assert [(item.file, item.reason) for item in dataset.skipped] == [
        ("images/train/fear/big.png",
         "not a readable image (too large for a face: 6,000×6,000 pixels; at most 16.8 megapixels)")]


def test_a_zip_declaring_more_entries_than_the_cap_is_refused_before_its_directory_is_read(tmp_path):
    archive = write_zip(tmp_path / "many.zip", faces())
    with pytest.raises(DatasetError, match=r"many.zip holds 7 entries; a dataset zip may hold at most 5"):
        open_dataset(archive, use_cache=False, limits=DatasetLimits(max_zip_entries=5))


def test_a_csv_line_of_200_mb_is_refused_without_reading_it_whole(tmp_path):
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as out:
        out.write(b"emotion,pixels,Usage\n3,")
        block = b"0 " * (1 << 20)
        for _ in range(100):
            out.write(block)
    measured, info = fer_info(huge, tmp_path / "home")
    assert info is None and measured.returncode == 2
    assert measured.stderr.strip() == "error: huge.csv line 2 is longer than 64 KB; a fer2013.csv row is about 9 KB"
    assert measured.peak_bytes < 0.5e9


def test_a_csv_with_more_rows_than_the_cap_is_refused_in_words(tmp_path):
    table = tmp_path / "rows.csv"
    row = " ".join(["128"] * 2304)
    table.write_text("emotion,pixels,Usage\n" + "".join(f"{i % 7},{row},Training\n" for i in range(30)))
    with pytest.raises(DatasetError, match=r"rows.csv has more than 25 rows; a dataset may hold at most 25 faces"):
        open_dataset(table, use_cache=False, limits=DatasetLimits(max_images=25))
    assert len(open_dataset(table, use_cache=False, limits=DatasetLimits(max_images=30)).split("train")) == 30


def test_a_folder_walk_stops_at_its_file_cap_and_its_time_limit(tmp_path):
    for index in range(1500):
        (tmp_path / f"note-{index}.txt").touch()
    with pytest.raises(DatasetError, match=r"holds more than 1,000 files; a dataset folder holds its images"):
        open_dataset(tmp_path, use_cache=False, limits=DatasetLimits(max_files=1000))
    with pytest.raises(DatasetError, match=r"took over 1e-06 s and was stopped"):
        open_dataset(tmp_path, use_cache=False, limits=DatasetLimits(walk_seconds=1e-6))


def test_a_truncated_cache_file_is_rebuilt_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_HOME", str(tmp_path / "home"))
    archive = write_zip(tmp_path / "faces.zip", {**faces(), **faces("validation")})
    first = open_dataset(archive)
    [cached] = (tmp_path / "home" / "cache" / "datasets").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:500])  # Cut short, as by a full disk or a killed process.
    again = open_dataset(archive)
    assert again.fingerprint == first.fingerprint
    assert np.load(cached, allow_pickle=False)["meta"].size == 1  # Rewritten whole.


def test_the_cache_keeps_to_its_size_cap_dropping_the_least_recently_opened(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("FER_STUDIO_HOME", str(tmp_path / "home"))
    older = write_zip(tmp_path / "older.zip", faces())
    newer = write_zip(tmp_path / "newer.zip", {**faces(), "images/train/happy/1.png": face_png(99)})
    open_dataset(older)
    [first] = (tmp_path / "home" / "cache" / "datasets").glob("*.npz")
    os.utime(first, (1, 1))  # Opened long ago.
    monkeypatch.setenv("FER_STUDIO_CACHE_MB", str(first.stat().st_size * 1.5 / 1e6))
    open_dataset(newer)
    left = list((tmp_path / "home" / "cache" / "datasets").glob("*.npz"))
    assert len(left) == 1 and left[0] != first


def test_a_zip_entry_that_unpacks_past_its_declared_size_stops_there(tmp_path):
    # The cap on an entry is judged from its declared size, so an entry that lies (8 MiB of data declared as
    # 1,000 bytes) must not unpack beyond it: zipfile stops at the declared size and the checksum fails.
    zeros = deflated_zeros(8 << 20)
    liar = write_zip(tmp_path / "liar.zip", faces(), {"images/train/happy/x.png": zeros._replace(size=1000)})
    with zipfile.ZipFile(liar) as archive, archive.open("images/train/happy/x.png") as entry:
        with pytest.raises(zipfile.BadZipFile, match="CRC"):
            entry.read(1 << 24)
    dataset = open_dataset(liar, use_cache=False)
    assert [(item.file, item.reason) for item in dataset.skipped] == [
        ("images/train/happy/x.png", "the zip entry is damaged: it cannot be unpacked")]
    assert len(dataset.split("train")) == 7

"""Every dataset format users bring, and every bad input, through fer.data.datasets.open_dataset."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from helpers.dataset_files import write_faces, write_fer2013_csv, zip_folder
from fer.data.datasets import DEMO, open_dataset
from fer.errors import DatasetError
from fer.labels import CLASSES


def test_kaggle_folder_nested_one_level(kaggle_folder):
    dataset = open_dataset(kaggle_folder)
    assert dataset.format == "kaggle-folder"
    assert dataset.classes == CLASSES
    assert list(dataset.splits) == ["train", "validation"]
    assert dataset.counts()["train"] == {name: 4 for name in CLASSES}
    assert dataset.counts()["validation"] == {name: 2 for name in CLASSES}
    images, labels = dataset.arrays("train")
    assert images.shape == (28, 48, 48, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and set(labels) == set(range(7))


def test_kaggle_zip_matches_the_folder(kaggle_folder, kaggle_zip):
    from_zip, from_folder = open_dataset(kaggle_zip), open_dataset(kaggle_folder)
    assert from_zip.format == "kaggle-zip"
    assert from_zip.counts() == from_folder.counts()
    assert from_zip.fingerprint == from_folder.fingerprint


def test_split_aliases_and_test_split(tmp_path):
    for folder in ("train", "valid", "test"):
        write_faces(tmp_path / "images" / folder, per_class=1, seed=len(folder))
    dataset = open_dataset(tmp_path)
    assert list(dataset.splits) == ["train", "validation", "test"]


def test_fer2013_csv_maps_labels_and_usage(fer_csv):
    dataset = open_dataset(fer_csv)
    assert dataset.format == "fer2013-csv"
    assert list(dataset.splits) == ["train", "validation", "test"]
    assert sum(sum(c.values()) for c in dataset.counts().values()) == 21
    # Row 2 is the first data row; its CSV code must land on the right class name.
    first_code = int(fer_csv.read_text().splitlines()[1].split(",")[0])
    split = dataset.splits["train"]
    csv_order = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert split.files[0] == "row 2"
    assert CLASSES[split.labels[0]] == csv_order[first_code]


def test_csv_code_4_is_sad_and_6_is_neutral(tmp_path):
    pixels = " ".join(["128"] * 2304)
    path = tmp_path / "two.csv"
    path.write_text(f"emotion,pixels,Usage\n4,{pixels},Training\n6,{pixels},Training\n")
    labels = open_dataset(path).splits["train"].labels
    assert [CLASSES[i] for i in labels] == ["sad", "neutral"]


def test_csv_without_usage_gets_a_stratified_split(tmp_path):
    path = write_fer2013_csv(tmp_path / "fer.csv", rows_per_class=10, usage=("",))
    text = path.read_text().replace(",Usage", "").replace(",\n", "\n")
    path.write_text(text)
    dataset = open_dataset(path)
    assert list(dataset.splits) == ["train", "validation"]
    assert dataset.counts()["validation"] == {name: 2 for name in CLASSES}


def test_plain_class_folders_get_a_seeded_stratified_split(class_folders):
    first = open_dataset(class_folders, validation_fraction=0.2, seed=7, use_cache=False)
    again = open_dataset(class_folders, validation_fraction=0.2, seed=7, use_cache=False)
    other = open_dataset(class_folders, validation_fraction=0.2, seed=8, use_cache=False)
    assert first.format == "class-folders-folder"
    assert first.counts()["validation"] == {name: 2 for name in CLASSES}
    assert first.counts()["train"] == {name: 8 for name in CLASSES}
    assert first.splits["validation"].files == again.splits["validation"].files
    assert first.splits["validation"].files != other.splits["validation"].files


def test_class_folders_inside_a_zip(class_folders, tmp_path):
    dataset = open_dataset(zip_folder(class_folders, tmp_path / "faces.zip"))
    assert dataset.format == "class-folders-zip"
    assert sum(dataset.counts()["train"].values()) + sum(dataset.counts()["validation"].values()) == 70


def test_unknown_class_names_are_kept_as_the_datasets_own(tmp_path):
    write_faces(tmp_path / "faces", per_class=3, seed=1, classes=("a", "b", "c", "d", "e", "f", "g"))
    dataset = open_dataset(tmp_path / "faces")
    assert dataset.classes == ("a", "b", "c", "d", "e", "f", "g")


def test_class_aliases_map_to_our_names(tmp_path):
    aliases = ("anger", "disgusted", "fearful", "happiness", "Neutral", "sadness", "surprised")
    write_faces(tmp_path / "faces", per_class=2, seed=1, classes=aliases)
    assert open_dataset(tmp_path / "faces").classes == CLASSES


def test_images_are_converted_to_48_gray_and_counted(tmp_path):
    root = tmp_path / "faces"
    write_faces(root, per_class=2, seed=1)
    Image.new("RGB", (96, 80), (200, 10, 10)).save(root / "happy" / "big_colour.jpg")
    Image.new("L", (30, 30), 90).save(root / "sad" / "small.png")
    dataset = open_dataset(root)
    assert dataset.conversions == {"converted RGB to grayscale": 1, "resized to 48×48": 2}
    assert all(split.images.shape[1:] == (48, 48) for split in dataset.splits.values())


def test_corrupt_images_are_skipped_and_listed(kaggle_folder):
    (kaggle_folder / "images" / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (kaggle_folder / "images" / "train" / "sad" / "empty.png").write_bytes(b"")
    dataset = open_dataset(kaggle_folder)
    assert sorted(s.file for s in dataset.skipped) == [
        "images/train/happy/broken.jpg", "images/train/sad/empty.png"]
    assert all("not a readable image" in s.reason for s in dataset.skipped)
    assert dataset.counts()["train"]["happy"] == 4


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Count the images fer.data.datasets decodes (each call of its decoder)."""
    import fer.data.datasets

    calls = []
    real = fer.data.datasets.decode_face
    monkeypatch.setattr(fer.data.datasets, "decode_face", lambda data: calls.append(1) or real(data))
    return calls


def test_second_open_decodes_nothing(kaggle_folder, decodes, fer_home):
    first = open_dataset(kaggle_folder)
    assert len(decodes) == 42  # 28 train + 14 validation images.
    assert len(list((fer_home / "cache" / "datasets").glob("*.npz"))) == 1
    second = open_dataset(kaggle_folder)
    assert len(decodes) == 42  # Served from the cache file: not one image decoded again.
    assert second.fingerprint == first.fingerprint and second.counts() == first.counts()
    for name in first.splits:
        assert second.splits[name].files == first.splits[name].files
        np.testing.assert_array_equal(second.splits[name].images, first.splits[name].images)


def test_a_changed_image_is_decoded_again(kaggle_folder, decodes):
    first = open_dataset(kaggle_folder)
    changed = sorted((kaggle_folder / "images" / "train" / "happy").glob("*.png"))[0]
    Image.new("L", (48, 48), 200).save(changed)  # Same name, new pixels.
    after = open_dataset(kaggle_folder)
    assert len(decodes) == 2 * 42
    assert after.fingerprint != first.fingerprint
    index = after.splits["train"].files.index(f"images/train/happy/{changed.name}")
    assert (after.splits["train"].images[index] == 200).all()


def test_cache_notices_a_changed_folder(kaggle_folder):
    before = open_dataset(kaggle_folder)
    Image.new("L", (48, 48), 10).save(kaggle_folder / "images" / "train" / "fear" / "new.png")
    after = open_dataset(kaggle_folder)
    assert after.counts()["train"]["fear"] == before.counts()["train"]["fear"] + 1
    assert after.fingerprint != before.fingerprint


def test_demo_dataset_is_generated_once_with_progress():
    reports = []
    dataset = open_dataset(DEMO, progress=lambda fraction, message: reports.append(fraction))
    assert dataset.classes == CLASSES
    assert dataset.counts()["train"] == {name: 500 for name in CLASSES}
    assert dataset.counts()["validation"] == {name: 100 for name in CLASSES}
    assert reports and reports[-1] == 1.0
    assert open_dataset(DEMO).fingerprint == dataset.fingerprint
    assert dataset.format == "built-in demo set" and dataset.source == DEMO


def test_tf_data_pipeline_batches_one_hot_labels(kaggle_folder):
    dataset = open_dataset(kaggle_folder)
    images, labels = next(iter(dataset.tf_data("train", batch_size=5)))
    assert images.shape == (5, 48, 48, 1) and str(images.dtype) == "<dtype: 'float32'>"
    assert labels.shape == (5, 7)
    np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0)


# --- Bad input: a clear DatasetError that says what was expected ----------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist; expected a dataset folder, a .zip"):
        open_dataset(tmp_path / "nope")


def test_unknown_layout(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    Image.new("L", (48, 48)).save(tmp_path / "one.png")
    Image.new("L", (48, 48)).save(tmp_path / "a" / "b" / "two.png")
    with pytest.raises(DatasetError, match="expected images/<split>/<class>"):
        open_dataset(tmp_path)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no images found"):
        open_dataset(tmp_path)


def test_split_folders_without_class_folders(tmp_path):
    for split in ("train", "validation"):
        (tmp_path / split).mkdir()
        Image.new("L", (48, 48)).save(tmp_path / split / "x.png")
    with pytest.raises(DatasetError, match="a folder per class"):
        open_dataset(tmp_path)


def test_empty_class_folder(kaggle_folder):
    (kaggle_folder / "images" / "train" / "contempt").mkdir()
    with pytest.raises(DatasetError, match="class folder 'images/train/contempt' has no images"):
        open_dataset(kaggle_folder)


def test_empty_class_folder_in_a_zip(tmp_path):
    path = tmp_path / "faces.zip"
    buffer = io.BytesIO()
    Image.new("L", (48, 48)).save(buffer, "PNG")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/train/happy/1.png", buffer.getvalue())
        archive.writestr("images/train/sad/", b"")
    with pytest.raises(DatasetError, match="class folder 'images/train/sad' has no images"):
        open_dataset(path)


def test_zip_entry_escaping_the_archive(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/train/happy/../../../../etc/passwd.png", b"x")
    with pytest.raises(DatasetError, match="points outside the archive"):
        open_dataset(path)


def test_csv_with_wrong_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("label,image\n1,2\n")
    with pytest.raises(DatasetError, match="expected fer2013.csv's emotion,pixels"):
        open_dataset(path)


def test_csv_with_wrong_pixel_count(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("emotion,pixels,Usage\n3," + " ".join(["1"] * 2303) + ",Training\n")
    with pytest.raises(DatasetError, match="line 2: 2303 pixel values; expected 2304"):
        open_dataset(path)


def test_csv_with_unknown_emotion_code(tmp_path):
    path = tmp_path / "code.csv"
    path.write_text("emotion,pixels,Usage\n9," + " ".join(["1"] * 2304) + ",Training\n")
    with pytest.raises(DatasetError, match="emotion 9 is not in 0-6"):
        open_dataset(path)


def test_only_corrupt_images(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="no readable images"):
        open_dataset(tmp_path)


def test_a_file_that_is_not_a_dataset(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hi")
    with pytest.raises(DatasetError, match="not a folder, a .zip or a .csv"):
        open_dataset(path)


def test_asking_for_a_missing_split(kaggle_folder):
    with pytest.raises(DatasetError, match="no 'test' split; it has: train, validation"):
        open_dataset(kaggle_folder).split("test")


@pytest.mark.shared_data
def test_real_fer2013_zip_opens_with_the_official_counts(shared_zip):
    dataset = open_dataset(shared_zip)
    totals = {name: sum(counts.values()) for name, counts in dataset.counts().items()}
    assert totals == {"train": 28709, "validation": 3589}
    assert dataset.counts()["train"]["disgust"] == 436
    assert json.dumps(dataset.counts())  # JSON-ready for the CLI.


def test_damaged_zip(kaggle_zip):
    data = bytearray(kaggle_zip.read_bytes())
    data[100:2000] = b"\0" * 1900  # Wreck the first entries but keep the central directory.
    kaggle_zip.write_bytes(bytes(data))
    dataset = open_dataset(kaggle_zip)  # The damaged entries are left out and named; the rest opens.
    assert dataset.skipped and {item.reason for item in dataset.skipped} == {
        "the zip entry is damaged: it cannot be unpacked"}
    assert sum(len(split) for split in dataset.splits.values()) + len(dataset.skipped) == 42

"""fer.data.eda: class balance, samples, class profiles and the image-quality report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from fer.data import eda
from fer.data.datasets import Dataset, Skipped, Split, open_dataset
from fer.data.synthetic import make_faces

CLASSES = ("a", "b", "c")


def face(value: int, seed: int) -> np.ndarray:
    """A noisy 48×48 image around `value` (contrast ≈ 40), different for every seed."""
    noise = np.random.default_rng(seed).normal(0, 40, (48, 48))
    return np.clip(value + noise, 0, 255).astype(np.uint8)


def make_split(images, labels, prefix) -> Split:
    return Split(np.stack(images), np.array(labels, dtype=np.int64),
                 tuple(f"{prefix}/{i:03d}.png" for i in range(len(labels))))


@pytest.fixture
def dataset() -> Dataset:
    """train: a×6, b×3, c×1 with one blank, one low-contrast and a duplicate pair;
    validation: one copy of a train image under another label."""
    train_images = [face(120, seed) for seed in range(10)]
    train_images[2] = np.full((48, 48), 7, np.uint8)  # near-blank
    train_images[3] = (100 + np.random.default_rng(99).integers(0, 20, (48, 48))).astype(np.uint8)  # low contrast
    train_images[5] = train_images[4].copy()  # duplicate within train
    train_labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    validation_images = [train_images[7].copy(), face(60, 100), face(60, 101)]
    validation_labels = [2, 0, 1]  # train #7 is 'b', its copy here says 'c'
    return Dataset(
        source="memory", format="test", classes=CLASSES,
        splits={"train": make_split(train_images, train_labels, "train"),
                "validation": make_split(validation_images, validation_labels, "validation")},
        skipped=(Skipped("train/broken.jpg", "not a readable image"),),
        conversions={"converted RGB to grayscale": 2},
        fingerprint="test",
    )


# --- Distribution ------------------------------------------------------------------------------


def test_class_distribution_counts_and_percentages_per_split(dataset):
    table = eda.class_distribution(dataset)
    train = table[table["split"] == "train"].set_index("class")
    assert train["count"].to_dict() == {"a": 6, "b": 3, "c": 1}
    assert train["percent"].to_dict() == pytest.approx({"a": 60.0, "b": 30.0, "c": 10.0})
    assert table.groupby("split")["percent"].sum().tolist() == pytest.approx([100.0, 100.0])


def test_distribution_table_puts_splits_side_by_side(dataset):
    table = eda.distribution_table(eda.class_distribution(dataset))
    assert list(table.columns) == ["train images", "train %", "validation images", "validation %"]
    assert table.loc["c"].tolist() == [1, 10.0, 1, pytest.approx(33.3)]


def test_imbalance_ratio_is_largest_over_smallest():
    assert eda.imbalance_ratio({"a": 10, "b": 2, "c": 5}) == 5.0
    assert eda.imbalance_ratio({"a": 3, "b": 0}) == math.inf
    with pytest.raises(ValueError):
        eda.imbalance_ratio({"a": 0, "b": 0})


def test_balanced_class_weights_give_every_class_the_same_total_weight():
    counts = {"a": 600, "b": 300, "c": 100}
    weights = eda.class_weights(counts)
    assert weights["c"] == pytest.approx(1000 / (3 * 100))
    totals = {name: weights[name] * n for name, n in counts.items()}
    assert len({round(t, 6) for t in totals.values()}) == 1
    assert eda.class_weights({"a": 4, "b": 0})["b"] == 0.0


def test_class_weight_hint_names_the_extremes_or_says_balanced():
    hint = eda.class_weight_hint({"happy": 7215, "disgust": 436, "sad": 4830})
    assert "'happy' has 16.5× the images of 'disgust'" in hint and "weight" in hint
    assert "balanced" in eda.class_weight_hint({"a": 100, "b": 95})
    assert "'b' has no images" in eda.class_weight_hint({"a": 100, "b": 0})


# --- Samples -----------------------------------------------------------------------------------


def test_samples_are_per_class_reproducible_and_rerollable(dataset):
    first = eda.sample_per_class(dataset, "train", per_class=2, seed=1)
    assert first == eda.sample_per_class(dataset, "train", per_class=2, seed=1)
    assert [s.label for s in first] == ["a", "a", "b", "b", "c"]  # 'c' has only one image
    split = dataset.split("train")
    for sample in first:
        assert CLASSES[split.labels[sample.index]] == sample.label
        assert split.files[sample.index] == sample.file
    draws = {tuple(s.index for s in eda.sample_per_class(dataset, "train", per_class=2, seed=seed))
             for seed in range(6)}
    assert len(draws) > 1


def test_samples_reject_bad_arguments(dataset):
    with pytest.raises(ValueError):
        eda.sample_per_class(dataset, "train", per_class=0)
    with pytest.raises(Exception, match="no 'test' split"):
        eda.sample_per_class(dataset, "test", per_class=2)


# --- Class profiles ----------------------------------------------------------------------------


def test_class_profiles_match_numpy_per_split_and_overall(dataset):
    train = dataset.split("train")
    profiles = eda.class_profiles(dataset, "train")
    assert profiles.counts.tolist() == [6, 3, 1]
    np.testing.assert_allclose(profiles.mean_faces[1], train.images[train.labels == 1].mean(axis=0), rtol=1e-5)
    assert profiles.histograms[0].sum() == 6 * 48 * 48
    assert profiles.histograms[0][7] >= 48 * 48  # the blank image's single tone

    overall = eda.class_profiles(dataset)
    assert overall.counts.tolist() == [7, 4, 2]
    validation = eda.class_profiles(dataset, "validation")
    np.testing.assert_array_equal(overall.histograms, profiles.histograms + validation.histograms)
    np.testing.assert_allclose(overall.pixel_fractions().sum(axis=1), 1.0)


def test_class_profiles_leave_an_empty_class_at_zero(dataset):
    profiles = eda.class_profiles(dataset, "validation")
    assert profiles.counts.tolist() == [1, 1, 1]
    emptied = Dataset("m", "t", CLASSES, {"train": make_split([face(50, 1)], [0], "x")})
    empty = eda.class_profiles(emptied)
    assert empty.counts.tolist() == [1, 0, 0]
    assert not empty.mean_faces[1].any() and not empty.pixel_fractions()[1].any()


# --- Quality -----------------------------------------------------------------------------------


def test_quality_report_flags_blank_and_low_contrast_images(dataset):
    report = eda.quality_report(dataset)
    flagged = report.flagged.set_index("index")
    assert flagged.loc[2, "issue"] == "near-blank" and flagged.loc[2, "file"] == "train/002.png"
    assert flagged.loc[3, "issue"] == "low contrast"
    assert len(report.flagged) == 2
    assert report.contrast["train"].shape == (10,)


def test_quality_report_groups_exact_duplicates_within_and_across_splits(dataset):
    report = eda.quality_report(dataset)
    groups = report.groups.set_index("scope")
    assert set(groups.index) == {"within train", "across splits"}
    assert bool(groups.loc["within train", "labels_agree"])
    across = groups.loc["across splits"]
    assert across["splits"] == "train, validation" and across["classes"] == "b, c"
    assert not across["labels_agree"]
    members = report.duplicates[report.duplicates["group"] == across["group"]]
    assert sorted(zip(members["split"], members["index"])) == [("train", 7), ("validation", 0)]


def test_quality_report_carries_skipped_files_and_conversions(dataset):
    report = eda.quality_report(dataset)
    assert report.skipped.to_dict("records") == [{"file": "train/broken.jpg", "reason": "not a readable image"}]
    assert report.summary() == {
        "images": 13, "converted": 2, "skipped": 1, "near_blank": 1, "low_contrast": 1,
        "duplicate_groups_within": 1, "duplicate_groups_across": 1, "redundant_copies": 2,
        "conflicting_labels": 1,
    }


def test_quality_thresholds_are_configurable(dataset):
    strict = eda.quality_report(dataset, eda.QualityThresholds(near_blank_std=0.5, low_contrast_std=100))
    assert strict.flagged["issue"].value_counts().to_dict() == {"low contrast": 13 - 1, "near-blank": 1}


def test_quality_report_on_a_clean_dataset_is_empty_not_broken():
    images, labels = make_faces(3, seed=7)
    clean = Dataset("m", "t", ("x",) * 7, {"train": make_split(list(images), labels.tolist(), "f")})
    report = eda.quality_report(clean)
    assert report.groups.empty and report.duplicates.empty
    assert report.summary()["duplicate_groups_within"] == 0


def test_quality_report_sees_what_decoding_did_to_a_real_folder(kaggle_folder):
    happy = kaggle_folder / "images" / "train" / "happy"
    first = sorted(happy.glob("*.png"))[0]
    (happy / "copy.png").write_bytes(first.read_bytes())
    (happy / "broken.png").write_bytes(b"not a png")
    Image.new("RGB", (96, 96), (10, 200, 30)).save(happy / "colour.png")
    report = eda.quality_report(open_dataset(kaggle_folder, use_cache=False))
    assert report.skipped["file"].str.endswith("broken.png").tolist() == [True]
    assert report.conversions == {"converted RGB to grayscale": 1, "resized to 48×48": 1}
    assert report.flagged["file"].str.endswith("colour.png").tolist() == [True]  # a flat green square
    duplicate_files = set(report.duplicates["file"])
    assert any(f.endswith("copy.png") for f in duplicate_files) and len(duplicate_files) == 2


def test_gather_images_returns_the_images_at_places(dataset):
    images = eda.gather_images(dataset, [("validation", 1), ("train", 2)])
    np.testing.assert_array_equal(images[0], dataset.split("validation").images[1])
    assert images.shape == (2, 48, 48) and images[1].max() == 7
    assert eda.gather_images(dataset, []).shape == (0, 48, 48)


def test_content_hashes_are_equal_exactly_for_equal_pixels():
    images = np.stack([face(100, 1), face(100, 1), face(100, 2)])
    changed = images[0].copy()
    changed[47, 47] ^= 1  # one pixel, one bit
    digests = eda.content_hashes(np.concatenate([images, changed[None]]))
    assert digests[0] == digests[1] and len({digests[0], digests[2], digests[3]}) == 3
    assert eda.content_hashes(np.zeros((0, 48, 48), np.uint8)) == []


def test_an_empty_split_is_reported_not_a_crash(dataset):
    empty = Split(np.zeros((0, 48, 48), np.uint8), np.zeros(0, np.int64), ())
    with_empty = Dataset("m", "t", CLASSES, {**dataset.splits, "test": empty})
    assert eda.quality_report(with_empty).contrast["test"].shape == (0,)
    assert eda.class_profiles(with_empty, "test").counts.tolist() == [0, 0, 0]
    assert eda.sample_per_class(with_empty, "test", per_class=3) == []
    assert eda.class_distribution(with_empty).query("split == 'test'")["percent"].tolist() == [0.0] * 3

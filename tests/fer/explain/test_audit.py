"""Label audit: recall of deliberately moved labels, the JSON the CLI prints, and corrected copies that reopen."""

from __future__ import annotations

import numpy as np
import pytest

from fer.data.datasets import dataset_from_arrays, open_dataset
from fer.errors import FerError
from fer.explain.audit import (OutOfFold, audit_split, copy_suffix, corrected_copy, corrected_copy_in, fold_of,
                               out_of_fold_probabilities, rank_suspects, relabel_csv, suspects_json)
from fer.labels import CLASSES


def _model_like_probabilities(labels: np.ndarray, seed: int) -> np.ndarray:
    """Probabilities of a ~83%-accurate model: the true class gets a logit boost that varies per image,
    and a confusable neighbour class gets part of it, as fear/sad do on FER2013."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(labels), len(CLASSES)))
    rows = np.arange(len(labels))
    boost = rng.gamma(3.0, 1.2, len(labels))
    logits[rows, labels] += boost
    logits[rows, (labels + 1) % len(CLASSES)] += 0.5 * boost * rng.random(len(labels))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _move_labels(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    moved = rng.choice(len(labels), count, replace=False)
    noisy = labels.copy()
    noisy[moved] = (labels[moved] + rng.integers(1, len(CLASSES), count)) % len(CLASSES)
    return noisy, moved


def test_most_moved_labels_rank_among_the_most_suspicious():
    labels = np.random.default_rng(0).integers(0, len(CLASSES), 3500)
    probabilities = _model_like_probabilities(labels, seed=1)
    assert 0.75 < np.mean(probabilities.argmax(axis=1) == labels) < 0.9
    noisy, moved = _move_labels(labels, 150, seed=2)
    files = [f"face{i}.png" for i in range(len(labels))]
    top = [s.index for s in rank_suspects(noisy, probabilities, files, CLASSES)[:300]]
    assert np.isin(moved, top).mean() >= 0.8
    # A random ranking puts 300/3500 ≈ 9% of them there: the audit must be reading the probabilities.


def test_a_suspects_suggestion_is_never_its_given_label():
    labels = np.array([0, 1, 2])
    probabilities = np.array([[0.9, 0.05, 0.05, 0, 0, 0, 0], [0, 0.2, 0.8, 0, 0, 0, 0], [0, 0, 1.0, 0, 0, 0, 0]])
    suspects = rank_suspects(labels, probabilities, ["a", "b", "c"], CLASSES)
    assert [s.file for s in suspects][0] == "b"
    assert suspects[0].suggested == "fear" and all(s.suggested != s.given for s in suspects)


def test_the_audit_reads_the_same_mirror_averaged_probabilities_as_evaluate(kaggle_folder, tiny_model_path):
    from fer.evaluate.scoring import evaluate_split
    from fer.model.files import load_model

    model, card = load_model(tiny_model_path)
    dataset = open_dataset(kaggle_folder, use_cache=False)
    audit = audit_split(model, card.classes, dataset, "validation")
    evaluated = evaluate_split(model, card.classes, dataset, "validation", tta=True).evaluation
    np.testing.assert_array_equal(audit.probabilities, evaluated.probabilities)


@pytest.mark.parametrize("source", ["kaggle_folder", "kaggle_zip", "fer_csv", "class_folders"])
def test_a_corrected_copy_reopens_with_the_new_labels(source, request, tmp_path):
    dataset = open_dataset(request.getfixturevalue(source), use_cache=False)
    split = dataset.split_names[0]
    files, labels = dataset.split(split).files, dataset.split(split).labels
    relabels = {files[0]: CLASSES[(labels[0] + 1) % 7], files[-1]: CLASSES[(labels[-1] + 3) % 7]}
    written = corrected_copy(dataset, split, relabels, tmp_path / "corrected")
    reopened = open_dataset(written, use_cache=False)
    assert reopened.format == dataset.format
    assert sorted(reopened.split_names) == sorted(dataset.split_names)
    new_labels = {}
    for name in reopened.split_names:
        part = reopened.split(name)
        for image, label in zip(part.images, part.labels):
            new_labels.setdefault(image.tobytes(), []).append(CLASSES[label])
    for file, new in relabels.items():
        image = dataset.split(split).images[files.index(file)]
        assert new in new_labels[image.tobytes()]
    assert sum(map(len, reopened.splits.values())) == sum(map(len, dataset.splits.values()))


def test_relabel_csv_lists_the_marked_images():
    text = relabel_csv({"a.png": "sad"}, {"a.png": "happy", "b.png": "fear"}, split="train")
    assert text.splitlines() == ["split,file,given,new_label", "train,a.png,happy,sad"]


def test_a_corrected_copy_refuses_unknown_files_and_classes(kaggle_folder, tmp_path):
    dataset = open_dataset(kaggle_folder, use_cache=False)
    with pytest.raises(FerError, match="not an image"):
        corrected_copy(dataset, "train", {"nope.png": "sad"}, tmp_path / "out")
    with pytest.raises(FerError, match="unknown class"):
        corrected_copy(dataset, "train", {dataset.split("train").files[0]: "bored"}, tmp_path / "out")


def test_folds_are_stratified_and_cover_every_image():
    labels = np.repeat(np.arange(7), 30)
    folds = fold_of(labels, 3)
    assert set(folds) == {0, 1, 2}
    for fold in range(3):
        assert np.all(np.bincount(labels[folds == fold], minlength=7) == 10)


def test_out_of_fold_probabilities_come_from_models_that_never_saw_the_image(monkeypatch):
    from fer.data.synthetic import make_faces

    images, labels = make_faces(12, seed=5)
    dataset = dataset_from_arrays({"train": (images, labels)})
    probabilities = out_of_fold_probabilities(dataset, "train", OutOfFold(folds=2, epochs=1))
    assert probabilities.shape == (len(labels), 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    audit = audit_split(None, CLASSES, dataset, "train", probabilities=probabilities)
    assert audit.out_of_fold and len(audit.suspects) == len(labels)
    assert len(suspects_json(audit.suspects)) == len(labels)


# --- The Dataset page's audit section (AppTest through app.py) ---------------------------------


@pytest.mark.parametrize("source", ["kaggle_folder", "kaggle_zip", "fer_csv"])
def test_a_corrected_copy_never_writes_over_an_existing_file(source, request, tmp_path):
    dataset = open_dataset(request.getfixturevalue(source), use_cache=False)
    split = dataset.split_names[0]
    relabels = {dataset.split(split).files[0]: CLASSES[(dataset.split(split).labels[0] + 1) % 7]}
    taken = tmp_path / f"taken{copy_suffix(dataset)}"
    if copy_suffix(dataset):
        taken.write_bytes(b"someone's file")
    else:
        taken.mkdir()
        (taken / "notes.txt").write_text("someone's file")
    with pytest.raises(FerError, match="already exists; choose a new name"):
        corrected_copy(dataset, split, relabels, tmp_path / "taken")
    kept = taken.read_bytes() if taken.is_file() else (taken / "notes.txt").read_bytes()
    assert kept == b"someone's file" and sorted(path.name for path in tmp_path.glob("taken*")) == [taken.name]
    with pytest.raises(FerError, match="already exists"):  # The name typed into the user's datasets folder too.
        corrected_copy_in(tmp_path, "taken", dataset, split, relabels)


def test_corrected_copies_stop_at_the_datasets_folder_cap(kaggle_zip, tmp_path):
    dataset = open_dataset(kaggle_zip, use_cache=False)
    relabels = {dataset.split("train").files[0]: "sad"}
    first = corrected_copy_in(tmp_path / "mine", "one", dataset, "train", relabels, max_bytes=10_000_000)
    with pytest.raises(FerError, match=r"your datasets folder already holds 0 MB \(at most 0 MB\); delete copies"):
        corrected_copy_in(tmp_path / "mine", "two", dataset, "train", relabels, max_bytes=first.stat().st_size)


def test_a_corrected_copy_never_replaces_its_source(kaggle_zip):
    dataset = open_dataset(kaggle_zip, use_cache=False)
    first = dataset.split("train").files[0]
    with pytest.raises(FerError, match="must not replace"):
        corrected_copy(dataset, "train", {first: "sad"}, kaggle_zip.with_suffix(""))

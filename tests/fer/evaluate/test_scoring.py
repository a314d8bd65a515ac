"""fer.evaluate.scoring and fer.charts.evaluation against cases small enough to check by hand."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from fer.errors import FerError
from fer.evaluate.scoring import (
    align_classes,
    combine_and_score,
    confidence_histogram,
    evaluate_split,
    misclassified,
    mirror,
    per_class_table,
    predict_probabilities,
    reliability_bins,
    report,
    report_csv,
    score,
    top_confusions,
    view_probabilities,
)
from helpers.three_class import CLASSES3, probabilities_for


def test_headline_metrics_match_the_hand_computation(three_class):
    assert three_class.images == 10
    assert three_class.accuracy == pytest.approx(0.6)
    assert three_class.balanced_accuracy == pytest.approx(7 / 12)
    assert three_class.macro_f1 == pytest.approx(26 / 45)


def test_per_class_table_matches_the_hand_computation(three_class):
    rows = {row.name: row for row in three_class.per_class}
    assert [row.name for row in three_class.per_class] == list(CLASSES3)
    assert (rows["a"].precision, rows["a"].recall, rows["a"].f1) == pytest.approx((3 / 5, 3 / 4, 2 / 3))
    assert (rows["b"].precision, rows["b"].recall, rows["b"].f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert (rows["c"].precision, rows["c"].recall, rows["c"].f1) == pytest.approx((1 / 2, 1 / 3, 2 / 5))
    assert [row.support for row in three_class.per_class] == [4, 3, 3]


def test_confusion_matrix_rows_are_true_classes(three_class):
    assert three_class.confusion.tolist() == [[3, 1, 0], [0, 2, 1], [2, 0, 1]]
    np.testing.assert_allclose(three_class.normalized_confusion[2], [2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(three_class.normalized_confusion.sum(axis=1), 1.0)


def test_a_class_missing_from_the_split_has_an_all_zero_row():
    evaluation = score(np.array([0, 0, 2]), probabilities_for(np.array([0, 1, 2]), np.full(3, 0.9), 3), CLASSES3)
    assert evaluation.normalized_confusion[1].tolist() == [0.0, 0.0, 0.0]
    assert evaluation.per_class[1].support == 0
    # Balanced accuracy averages recall over the classes present: (1/2 + 1) / 2.
    assert evaluation.balanced_accuracy == pytest.approx(0.75)
    # b is predicted once but never true, so its F1 of 0 counts in the macro average.
    assert evaluation.macro_f1 == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_top_confusions_are_sorted_by_count(three_class):
    cells = top_confusions(three_class)
    assert [(c.true, c.predicted, c.count) for c in cells] == [("c", "a", 2), ("b", "c", 1), ("a", "b", 1)]
    assert cells[0].share == pytest.approx(2 / 3)
    assert len(top_confusions(three_class, limit=1)) == 1


def test_misclassified_are_sorted_by_confidence_and_filterable(three_class):
    mistakes = misclassified(three_class)
    assert [m.index for m in mistakes] == [8, 3, 9, 6]  # Confidences 0.95, 0.6, 0.55, 0.5.
    assert mistakes[0] == (8, "c", "a", pytest.approx(0.95))
    assert [m.index for m in misclassified(three_class, true_class="c")] == [8, 9]
    assert [m.index for m in misclassified(three_class, predicted_class="c")] == [6]
    assert misclassified(three_class, true_class="a", predicted_class="c") == []
    assert len(misclassified(three_class, limit=2)) == 2
    with pytest.raises(FerError, match="unknown class 'z'"):
        misclassified(three_class, true_class="z")


def test_expected_calibration_error_on_a_hand_case():
    # Two at 95% confidence (one right: bin accuracy 50%, gap 0.45) and two at 65% (both right:
    # gap 0.35): ECE = 0.5 · 0.45 + 0.5 · 0.35 = 0.40.
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.35, 0.65]])
    bins = reliability_bins(np.array([0, 1, 1, 1]), probabilities)
    assert bins.ece == pytest.approx(0.40, abs=1e-6)
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 0, 2]
    assert bins.accuracy[9] == pytest.approx(0.5) and bins.confidence[6] == pytest.approx(0.65)
    assert np.isnan(bins.accuracy[0])


def test_a_perfectly_calibrated_model_has_zero_ece():
    # Every prediction at 100% and right.
    evaluation = score(np.array([0, 1, 2]), np.eye(3), CLASSES3)
    assert evaluation.ece == pytest.approx(0.0)
    assert evaluation.accuracy == 1.0


def test_confidence_histogram_splits_right_and_wrong(three_class):
    histogram = confidence_histogram(three_class, bins=10)
    assert histogram.correct.sum() == 6 and histogram.wrong.sum() == 4
    assert histogram.wrong[9] == 1 and histogram.wrong[5] == 2 and histogram.wrong[6] == 1


def test_score_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        score(np.array([0]), np.ones((1, 2)), CLASSES3)
    with pytest.raises(FerError, match="no images"):
        score(np.zeros(0, int), np.zeros((0, 3)), CLASSES3)


class LeftRightModel:
    """A stand-in model: class 0's probability is the share of brightness in the left half."""

    output_shape = (None, 2)

    def __init__(self):
        self.batches = []

    def predict_on_batch(self, batch):
        self.batches.append(batch.shape)
        left = batch[:, :, :24].sum(axis=(1, 2, 3))
        right = batch[:, :, 24:].sum(axis=(1, 2, 3))
        share = left / np.maximum(left + right, 1)
        return np.stack([share, 1 - share], axis=1)


def test_predict_runs_in_batches_and_tta_averages_image_and_mirror():
    images = np.zeros((5, 48, 48), np.uint8)
    images[:, :, :12] = 200  # Bright on the left: class 0 without TTA.
    model = LeftRightModel()
    plain = predict_probabilities(model, images, batch_size=2)
    assert plain.shape == (5, 2) and plain.dtype == np.float32
    assert [shape[0] for shape in model.batches] == [2, 2, 1]
    np.testing.assert_allclose(plain[:, 0], 1.0)
    tta = predict_probabilities(model, images[..., None], tta=True, batch_size=2)
    assert tta.shape == (5, 2)
    np.testing.assert_allclose(tta, 0.5)  # The mirror is all-right, so the mean is 50/50.
    np.testing.assert_allclose(predict_probabilities(model, mirror(images)), 1 - plain)


def test_predict_reports_progress_and_rejects_wrong_sizes():
    seen = []
    predict_probabilities(LeftRightModel(), np.zeros((3, 48, 48), np.uint8), tta=True, batch_size=2,
                          progress=lambda fraction, message: seen.append(fraction))
    assert seen == pytest.approx([2 / 6, 3 / 6, 5 / 6, 1.0])
    with pytest.raises(FerError, match="shape"):
        predict_probabilities(LeftRightModel(), np.zeros((2, 32, 32), np.uint8))


class LeftRightDataset:
    """Just what evaluate_split reads from a Dataset: classes and one split's arrays."""

    classes = ("right", "left")  # The dataset's order is the model's reversed.

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def arrays(self, split):
        return self.images[..., None], self.labels


def test_the_page_steps_give_what_evaluate_split_gives_with_and_without_tta():
    images = np.zeros((4, 48, 48), np.uint8)
    images[:2, :, :20] = 200  # Two left-bright faces, then two right-bright ones.
    images[2:, :, 30:] = 150
    labels = np.array([1, 1, 0, 1])  # Dataset order: 1 is "left".
    dataset = LeftRightDataset(images, labels)
    model_classes = ("left", "right")
    plain = view_probabilities(LeftRightModel(), images)
    mirrored = view_probabilities(LeftRightModel(), images, mirrored=True)
    np.testing.assert_allclose(mirrored, plain[:, ::-1], atol=1e-6)
    for tta, second in ((False, None), (True, mirrored)):
        by_steps = combine_and_score(plain, second, labels, model_classes, dataset.classes)
        whole = evaluate_split(LeftRightModel(), model_classes, dataset, "validation", tta=tta).evaluation
        np.testing.assert_allclose(by_steps.probabilities, whole.probabilities)
        assert by_steps.accuracy == whole.accuracy
    assert combine_and_score(plain, None, labels, model_classes, dataset.classes).accuracy == 0.75
    with pytest.raises(FerError, match="differ from the dataset's"):
        combine_and_score(plain, None, labels, ("left", "up"), dataset.classes)


def test_evaluate_split_reports_progress_over_both_passes():
    seen = []
    evaluate_split(LeftRightModel(), ("left", "right"), LeftRightDataset(np.zeros((3, 48, 48), np.uint8),
                   np.array([0, 1, 0])), "validation", tta=True, batch_size=2,
                   progress=lambda fraction, message: seen.append(fraction))
    assert seen == pytest.approx([2 / 6, 3 / 6, 5 / 6, 1.0])


def test_per_class_table_has_a_row_per_class_with_emoji(three_class):
    table = per_class_table(three_class)
    assert list(table.columns) == ["class", "precision", "recall", "F1", "support"]
    assert list(table["class"]) == ["a", "b", "c"]  # No emoji for classes that are not ours.
    assert table["support"].tolist() == [4, 3, 3] and table["F1"].iloc[2] == pytest.approx(0.4)


def test_align_classes_reorders_columns_and_explains_a_mismatch():
    probabilities = np.array([[0.1, 0.2, 0.7]])
    np.testing.assert_allclose(align_classes(probabilities, ["c", "a", "b"], CLASSES3), [[0.2, 0.7, 0.1]])
    with pytest.raises(FerError, match="differ from the dataset's.*dataset has c which the model does not know"):
        align_classes(np.ones((1, 3)), ["a", "b", "d"], CLASSES3)
    with pytest.raises(FerError, match="2 outputs but its card names 3"):
        align_classes(np.ones((1, 2)), CLASSES3, CLASSES3)


def test_report_is_json_ready_with_the_documented_keys(three_class):
    data = json.loads(json.dumps(report(three_class, model="m.keras", split="validation", tta=True, seconds=1.234)))
    assert data["accuracy"] == pytest.approx(0.6) and data["macro_f1"] == pytest.approx(26 / 45)
    assert data["balanced_accuracy"] == pytest.approx(7 / 12)
    assert data["confusion_matrix"] == [[3, 1, 0], [0, 2, 1], [2, 0, 1]]
    third = pytest.approx(1 / 3, abs=1e-6)
    assert data["per_class"]["c"] == {"precision": 0.5, "recall": third, "f1": 0.4, "support": 3}
    assert (data["classes"], data["split"], data["model"], data["images"], data["tta"]) == (
        list(CLASSES3), "validation", "m.keras", 10, True)
    assert data["seconds"] == 1.23
    assert data["top_confusions"][0] == {"true": "c", "predicted": "a", "count": 2, "share": pytest.approx(2 / 3)}


def test_csv_report_has_per_class_rows_confusion_columns_and_averages(three_class):
    rows = list(csv.DictReader(io.StringIO(report_csv(three_class))))
    assert [row["class"] for row in rows] == ["a", "b", "c", "macro avg", "weighted avg"]
    assert [rows[2][f"predicted_{c}"] for c in CLASSES3] == ["2", "0", "1"]
    assert float(rows[3]["f1"]) == pytest.approx(26 / 45, abs=1e-6)
    assert float(rows[4]["recall"]) == pytest.approx(0.6, abs=1e-6)  # Weighted recall is accuracy.
    assert rows[4]["support"] == "10"


def test_evaluate_split_on_a_dataset_with_a_real_model(tiny_model_path, kaggle_folder):
    from fer.data.datasets import open_dataset
    from fer.model.files import load_model

    dataset = open_dataset(kaggle_folder)
    model, card = load_model(tiny_model_path)
    result = evaluate_split(model, card.classes, dataset, "validation", tta=True, model_name="tiny")
    assert result.evaluation.images == 14 and result.evaluation.probabilities.shape == (14, 7)
    np.testing.assert_allclose(result.evaluation.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert result.report()["tta"] is True and result.seconds > 0
    with pytest.raises(FerError, match="differ from the dataset's"):
        evaluate_split(model, ["x", "y", "z", "w", "v", "u", "t"], dataset, "validation")
    with pytest.raises(FerError, match="no 'test' split"):
        evaluate_split(model, card.classes, dataset, "test")

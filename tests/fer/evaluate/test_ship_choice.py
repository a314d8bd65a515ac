"""fer.evaluate.ship_choice: the choices of members × test-time views, scored once, the cheapest good one chosen."""

from __future__ import annotations

import numpy as np
import pytest

from fer.errors import FerError
from fer.evaluate.scoring import Evaluation
from fer.evaluate.ship_choice import (PLAIN, TTA_CHOICES, Choice, Scored, choices, choose, member_accuracies,
                                      member_view_probabilities, select, selection_record)

CLASSES = ("first", "second")


class HalfModel:
    """Says 'first' when the first half of the image (top rows, or left columns) is the brighter, with
    probability `confidence`; a `wrong` member says the opposite. Mirroring moves columns, not rows."""

    def __init__(self, confidence: float = 0.9, wrong: bool = False, axis: int = 1):
        self.confidence, self.wrong, self.axis = confidence, wrong, axis

    def predict_on_batch(self, images):
        first_half, second_half = np.split(np.asarray(images, np.float32), 2, axis=self.axis)
        first = (first_half.mean(axis=(1, 2, 3)) > second_half.mean(axis=(1, 2, 3))) != self.wrong
        return np.stack([np.where(first, self.confidence, 1 - self.confidence),
                         np.where(first, 1 - self.confidence, self.confidence)], axis=1).astype(np.float32)


def half_bright(count: int, axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(count, 48, 48) images bright in their first half (label 0) or second half (label 1), alternately."""
    images = np.zeros((count, 48, 48), np.uint8)
    labels = np.arange(count) % 2
    first, second = (np.s_[:, :24], np.s_[:, 24:]) if axis == 2 else (np.s_[:24], np.s_[24:])
    for index, label in enumerate(labels):
        images[index][first if label == 0 else second] = 200
    return images, labels


def scored(name: str, members: int, tta: str, passes: int, accuracy: float) -> Scored:
    evaluation = Evaluation.__new__(Evaluation)
    object.__setattr__(evaluation, "accuracy", accuracy)  # Only the accuracy matters to the choice.
    return Scored(Choice(name, members, tta, passes), evaluation)


def test_choices_add_members_one_at_a_time_cheapest_first():
    options = choices(3, ["none", "flip"])
    assert [(option.name, option.members, option.forward_passes) for option in options] == [
        ("none", 1, 1), ("flip", 1, 2), ("ensemble of 2", 2, 2), ("ensemble of 3", 3, 3),
        ("ensemble of 2+flip", 2, 4), ("ensemble of 3+flip", 3, 6)]
    assert options[0].views == (PLAIN,) and options[1].views == TTA_CHOICES["flip"]
    assert [option.forward_passes for option in choices(1, ["shifts"])] == [10]


def test_a_pass_budget_rules_out_costlier_choices_but_they_stay_scored():
    accuracy = {"none": 0.660, "flip": 0.664, "ensemble of 2": 0.668, "ensemble of 2+flip": 0.676,
                "shifts": 0.671, "ensemble of 2+shifts": 0.690}
    options = [scored(option.name, option.members, option.tta, option.forward_passes, accuracy[option.name])
               for option in choices(2, ["none", "flip", "shifts"])]
    assert select(options, 0.005).choice.name == "ensemble of 2+shifts"
    assert select(options, 0.005, max_passes=4).choice.name == "ensemble of 2+flip"
    assert select(options, 0.01, max_passes=4).choice.name == "ensemble of 2"  # 0.668 ≥ 0.676 - 0.01
    assert select(options, 0.005, max_passes=0).choice.name == "none"
    record = selection_record(select(options, 0.005, max_passes=4), options, split="validation", min_gain=0.005,
                              max_passes=4)
    assert record["choice"] == "ensemble of 2+flip" and record["members"] == 2
    assert record["views"] == [list(view) for view in TTA_CHOICES["flip"]]
    assert list(record["validation_accuracy"]) == [option.choice.name for option in options]
    assert record["forward_passes"]["ensemble of 2+shifts"] == 20 and record["max_passes"] == 4


def test_each_member_runs_once_on_each_view_and_a_mirrored_view_is_mirrored():
    images, _ = half_bright(4, axis=2)  # Left or right half bright: mirroring swaps them.
    views = [PLAIN, (0, 0, True), (2, 0, False)]
    probabilities = member_view_probabilities([HalfModel(0.9, axis=2), HalfModel(0.8, axis=2)], images, views)

    assert set(probabilities) == {(index, view) for index in (0, 1) for view in views}
    np.testing.assert_allclose(probabilities[1, PLAIN][:, 0], [0.8, 0.2, 0.8, 0.2])
    np.testing.assert_allclose(probabilities[0, (0, 0, True)], probabilities[0, PLAIN][:, ::-1])
    np.testing.assert_allclose(probabilities[0, (2, 0, False)], probabilities[0, PLAIN])


def test_choose_scores_every_choice_from_the_members_and_keeps_the_cheapest_good_one():
    images, labels = half_bright(10)
    members = [HalfModel(0.9), HalfModel(0.6, wrong=True)]  # The second member only drags the mean down.
    reversed_labels = 1 - labels  # The dataset names the classes the other way round.

    shortlist = choose(members, images, reversed_labels, CLASSES, CLASSES[::-1], tta_names=["none", "flip"],
                       min_gain=0.005)

    accuracy = {option.choice.name: option.accuracy for option in shortlist.options}
    # The model's columns are put in the dataset's class order before scoring.
    assert accuracy == {"none": 1.0, "flip": 1.0, "ensemble of 2": 1.0, "ensemble of 2+flip": 1.0}
    assert shortlist.chosen.choice.name == "none"
    assert member_accuracies(shortlist, reversed_labels, CLASSES, CLASSES[::-1]) == [1.0, 0.0]
    averaged = choose([HalfModel(0.6, wrong=True), HalfModel(0.9)], images, labels, CLASSES, CLASSES,
                      tta_names=["none"], min_gain=0.005)
    assert [option.accuracy for option in averaged.options] == [0.0, 1.0]  # 0.9 and 0.4 average to the truth.
    assert averaged.chosen.choice.name == "ensemble of 2"


def test_a_mismatch_of_classes_is_refused_in_words():
    images, labels = half_bright(2)
    with pytest.raises(FerError, match="class"):
        choose([HalfModel()], images, labels, CLASSES, ("up", "down"), tta_names=["none"], min_gain=0.0)

"""Which model to ship: the run's best alone or averaged with the first 1, 2, … other models, each with
some test-time views, scored on the validation split; the cheapest choice within `min_gain` of the most
accurate one wins (scripts/ship_model.py).

Every member's probabilities for every view are computed once (`member_view_probabilities`) and each
choice is scored from them. A choice's cost is its forward passes per face: members × views, paid on
every face, webcam frames included, which is why a costlier choice has to earn its passes.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from fer.evaluate.scoring import Evaluation, combine_and_score, view_probabilities
from fer.model.presets import ensemble, shifted_view, tta_views, with_test_time_augmentation

View = tuple[int, int, bool]  # (dx, dy, mirror), as fer.model.presets.tta_views gives them.
PLAIN: View = (0, 0, False)
TTA_CHOICES: dict[str, tuple[View, ...]] = {
    "none": (),
    "flip": tta_views(),  # The image and its mirror image.
    "shifts": tta_views(shift=2),  # Both, each also moved 2 pixels left, right, up and down: 10 views.
}


class Choice(NamedTuple):
    """One candidate: the first `members` models, each seen through the views of TTA_CHOICES[`tta`]."""

    name: str  # "flip", "ensemble of 2", "ensemble of 3+shifts", …
    members: int
    tta: str  # A key of TTA_CHOICES.
    forward_passes: int  # Per face: members × views.

    @property
    def views(self) -> tuple[View, ...]:
        """The views scored: the plain image alone when there is no test-time augmentation."""
        return TTA_CHOICES[self.tta] or (PLAIN,)


class Scored(NamedTuple):
    """A choice and its evaluation on the validation split."""

    choice: Choice
    evaluation: Evaluation

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy


def choice_name(count: int, tta_name: str) -> str:
    """'flip', 'ensemble of 2', 'ensemble of 3+shifts', …"""
    if count == 1:
        return tta_name
    return f"ensemble of {count}" + ("" if tta_name == "none" else f"+{tta_name}")


def choices(members: int, tta_names: Sequence[str]) -> list[Choice]:
    """Every (members, views) choice, cheapest (fewest forward passes per face) first.

    An ensemble of k members is the first k models given (the run's best, then the others in order),
    so each extra member has to earn its passes.
    """
    options = [Choice(choice_name(count, tta_name), count, tta_name, count * len(TTA_CHOICES[tta_name] or (PLAIN,)))
               for count in range(1, members + 1) for tta_name in tta_names]
    return sorted(options, key=lambda option: option.forward_passes)


def member_view_probabilities(members: Sequence, images: np.ndarray,
                              views: Sequence[View]) -> dict[tuple[int, View], np.ndarray]:
    """{(member index, view): (N, C) probabilities}, each member run once on each view of `images`."""
    pixels = (images[..., None] if images.ndim == 3 else images).astype("float32")
    probabilities = {}
    for view in views:
        # shifted_view mirrors before it moves, so the whole view is made here and scored as it is.
        moved = np.asarray(shifted_view(pixels, *view))  # Once per view, shared by the members.
        probabilities.update({(index, view): view_probabilities(member, moved)
                              for index, member in enumerate(members)})
    return probabilities


def score_choices(options: Sequence[Choice], probabilities: dict[tuple[int, View], np.ndarray],
                  labels: np.ndarray, model_classes: Sequence[str], dataset_classes: Sequence[str]) -> list[Scored]:
    """Each choice scored from the probabilities of its members and views, averaged."""
    return [Scored(option, combine_and_score(np.mean([probabilities[index, view] for index in range(option.members)
                                                      for view in option.views], axis=0),
                                             None, labels, model_classes, dataset_classes))
            for option in options]


def select(options: Sequence[Scored], min_gain: float, max_passes: int | None = None) -> Scored:
    """The cheapest option within `min_gain` of the most accurate one of those within `max_passes`.

    `options` are sorted cheapest first; one pass is always allowed.
    """
    allowed = [option for option in options
               if max_passes is None or option.choice.forward_passes <= max(max_passes, 1)]
    most_accurate = max(option.accuracy for option in allowed)
    return next(option for option in allowed if option.accuracy >= most_accurate - min_gain)


def selection_record(chosen: Scored, options: Sequence[Scored], *, split: str, min_gain: float,
                     max_passes: int | None) -> dict:
    """The card's `selection`: what was chosen, every choice's accuracy and cost, and the rule's settings."""
    return {
        "choice": chosen.choice.name, "members": chosen.choice.members,
        "views": [list(view) for view in TTA_CHOICES[chosen.choice.tta]],
        "validation_accuracy": {option.choice.name: round(option.accuracy, 4) for option in options},
        "forward_passes": {option.choice.name: option.choice.forward_passes for option in options},
        "selected_on": split, "min_gain": min_gain, "max_passes": max_passes,
    }


def chosen_model(members: Sequence, choice: Choice):
    """The model that serves `choice`: its members averaged, wrapped in its test-time views if any."""
    model = ensemble(list(members[:choice.members]))
    return with_test_time_augmentation(model, TTA_CHOICES[choice.tta]) if TTA_CHOICES[choice.tta] else model


class Shortlist(NamedTuple):
    """Every choice scored, the one chosen, and the members' probabilities they were scored from."""

    options: list[Scored]
    chosen: Scored
    probabilities: dict[tuple[int, View], np.ndarray]


def choose(members: Sequence, images: np.ndarray, labels: np.ndarray, model_classes: Sequence[str],
           dataset_classes: Sequence[str], *, tta_names: Sequence[str], min_gain: float,
           max_passes: int | None = None) -> Shortlist:
    """Score every choice of `members` × `tta_names` on (`images`, `labels`) and pick one by `select`."""
    options = choices(len(members), tta_names)
    probabilities = member_view_probabilities(members, images, list(dict.fromkeys(
        view for option in options for view in option.views)))
    evaluated = score_choices(options, probabilities, labels, model_classes, dataset_classes)
    return Shortlist(evaluated, select(evaluated, min_gain, max_passes), probabilities)


def member_accuracies(shortlist: Shortlist, labels: np.ndarray, model_classes: Sequence[str],
                      dataset_classes: Sequence[str]) -> list[float]:
    """Each member's own accuracy, on the plain images."""
    members = sorted({index for index, _ in shortlist.probabilities})
    return [combine_and_score(shortlist.probabilities[index, PLAIN], None, labels, model_classes,
                              dataset_classes).accuracy for index in members]

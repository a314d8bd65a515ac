"""Which faces a see-inside widget shows, and in what order: pure NumPy, no Keras, no Streamlit.

The widgets (the top-level `widgets` package) lay these out; the choosing happens here so it is tested
without a page: the faces of a confusion cell, the class indexes Grad-CAM explains, the faces the
augmentation preview draws, a page of the label audit's suspects and the relabels the marks make.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from fer.evaluate.scoring import Evaluation


def confusion_cell_members(result: Evaluation, true: int, predicted: int) -> np.ndarray:
    """Indexes of the faces of true class `true` predicted as `predicted`, most confident first (ties keep
    their dataset order)."""
    members = np.flatnonzero((result.labels == true) & (result.predictions == predicted))
    return members[np.argsort(-result.probabilities[members, predicted], kind="stable")]


def class_indexes(classes: Sequence[str], labels: Sequence[str] | None) -> list[int] | None:
    """The index in the model's `classes` of each name in `labels` (None: the model's own top class);
    ValueError in words for a name the model does not have."""
    if labels is None:
        return None
    order = list(classes)
    missing = sorted({label for label in labels if label not in order})
    if missing:
        raise ValueError(f"the model has no class named {', '.join(missing)}")
    return [order.index(label) for label in labels]


def evenly_spaced(count: int, total: int) -> np.ndarray:
    """`count` indexes spread evenly over `total` items, first and last included (fewer when total is smaller)."""
    if total <= 0 or count <= 0:
        return np.zeros(0, int)
    return np.unique(np.linspace(0, total - 1, min(count, total)).astype(int))


class Relabels(NamedTuple):
    """The label audit's marks turned into changes: {file: suggested label} and {file: given label}."""

    suggested: dict[str, str]
    given: dict[str, str]


def page_count(items: int, per_page: int) -> int:
    """How many pages `items` fill, `per_page` each (0 for none)."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    return -(-items // per_page)


def page_of(items: Sequence, page: int, per_page: int) -> Sequence:
    """The items on 1-based `page`."""
    if page < 1:
        raise ValueError("pages are counted from 1")
    return items[(page - 1) * per_page:page * per_page]


def relabels_from_marks(suspects: Sequence, marks: dict[str, str]) -> Relabels:
    """The files marked "wrong" with the label the audit suggests and the label they were given."""
    by_file = {suspect.file: suspect for suspect in suspects}
    wrong = [file for file, mark in marks.items() if mark == "wrong" and file in by_file]
    return Relabels({file: by_file[file].suggested for file in wrong}, {file: by_file[file].given for file in wrong})

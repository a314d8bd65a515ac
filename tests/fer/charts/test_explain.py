"""Explaining charts (fer.charts.explain): the clickable confusion matrix."""

from __future__ import annotations

import numpy as np

from fer.labels import CLASSES


def test_a_clicked_confusion_cell_is_read_back_from_the_selection_event():
    from fer.charts.explain import clickable_confusion, selected_cell
    from fer.evaluate.scoring import score

    labels = np.array([0, 1, 2, 3, 4, 5, 6, 3])
    probabilities = np.eye(7)[[0, 1, 2, 3, 4, 5, 6, 5]]
    figure = clickable_confusion(score(labels, probabilities, CLASSES))
    cells = figure.data[-1]
    assert len(cells.x) == 49 and cells.customdata[3 * 7 + 5][:3] == [3, 5, 1]  # true happy, predicted sad: 1.
    as_list = {"selection": {"points": [{"curve_number": 1, "point_index": 26, "customdata": [3, 5, 1, 50.0]}]}}
    as_typed_array = {"selection": {"points": [{"customdata": {"0": 3, "1": 5, "2": 1, "3": 50.0}}]}}
    assert selected_cell(as_list) == selected_cell(as_typed_array) == (3, 5)
    assert selected_cell({"selection": {"points": []}}) is None and selected_cell(None) is None

"""fer.explain.galleries: which faces the see-inside widgets show, chosen without a page."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from fer.explain.galleries import (class_indexes, confusion_cell_members, evenly_spaced, page_count, page_of,
                                   relabels_from_marks)


def test_a_confusion_cells_faces_come_most_confident_first_ties_in_dataset_order():
    result = SimpleNamespace(labels=np.array([0, 0, 1, 0, 0]), predictions=np.array([1, 1, 1, 1, 0]),
                             probabilities=np.array([[.4, .6], [.2, .8], [.1, .9], [.4, .6], [.9, .1]]))
    assert confusion_cell_members(result, 0, 1).tolist() == [1, 0, 3]
    assert confusion_cell_members(result, 1, 0).tolist() == []


def test_class_names_become_the_models_indexes_and_an_unknown_one_is_said():
    assert class_indexes(("angry", "happy"), ["happy", "angry"]) == [1, 0]
    assert class_indexes(("angry", "happy"), None) is None
    with pytest.raises(ValueError, match="no class named blue"):
        class_indexes(("angry", "happy"), ["blue"])


def test_evenly_spaced_spans_first_to_last_without_repeats():
    assert evenly_spaced(6, 100).tolist() == [0, 19, 39, 59, 79, 99]
    assert evenly_spaced(6, 3).tolist() == [0, 1, 2]
    assert evenly_spaced(6, 0).tolist() == []


def test_pages_of_suspects_and_the_relabels_their_marks_make():
    suspects = [SimpleNamespace(file=f"f{n}.png", given="sad", suggested="fear") for n in range(5)]
    assert page_count(5, 2) == 3 and page_count(0, 2) == 0
    assert [s.file for s in page_of(suspects, 3, 2)] == ["f4.png"]
    marks = {"f1.png": "wrong", "f2.png": "keep", "gone.png": "wrong"}
    assert relabels_from_marks(suspects, marks) == ({"f1.png": "fear"}, {"f1.png": "sad"})
    with pytest.raises(ValueError):
        page_of(suspects, 0, 2)

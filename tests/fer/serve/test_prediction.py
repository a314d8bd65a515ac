"""The results table of Predict (fer/serve/prediction.py): rounded, flagged, and said in words."""

from __future__ import annotations

import numpy as np

from fer.labels import CLASSES
from fer.serve.detection import Box
from fer.serve.prediction import FacePrediction, ImageResult, results_for_people, results_table


def _face(top: float, label: str = "happy") -> FacePrediction:
    rest = (1 - top) / (len(CLASSES) - 1)
    probabilities = {name: (top if name == label else rest) for name in CLASSES}
    return FacePrediction(Box(1, 2, 30, 40), label, top, probabilities, 0.9)


RESULTS = [
    ImageResult("sure.png", np.zeros((9, 9, 3), np.uint8), (_face(0.8123456789012345),)),
    ImageResult("unsure.png", np.zeros((9, 9, 3), np.uint8), (_face(0.31, "sad"),)),
    ImageResult("none.png", np.zeros((9, 9, 3), np.uint8)),
]


def test_the_csv_has_no_seventeen_digit_probabilities():
    csv = results_table(RESULTS).to_csv(index=False)
    assert "0.8123," in csv and "0.8123456" not in csv


def test_faces_below_the_threshold_are_flagged_uncertain():
    table = results_table(RESULTS, uncertain_below=0.5)
    assert table["uncertain"].tolist()[:2] == [False, True]
    assert "uncertain" not in results_table(RESULTS).columns


def test_the_shown_table_has_percentages_and_no_none_cells():
    shown = results_for_people(results_table(RESULTS, uncertain_below=0.5))
    assert shown.loc[0, "confidence"] == "81.2%" and shown.loc[1, "uncertain"] == "uncertain"
    assert shown.loc[2, "face"] == "no face" and shown.loc[2, "note"] == "no face found"
    cells = [str(value) for value in shown.to_numpy().ravel()]
    assert not {"None", "nan", "<NA>", "NaN"} & set(cells)

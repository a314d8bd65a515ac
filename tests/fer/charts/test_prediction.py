"""The probability chart of one face (fer.charts.prediction)."""

from __future__ import annotations

import pytest

from fer.charts.prediction import probability_figure
from fer.labels import CLASSES
from helpers.stand_ins import make_face


def test_probability_figure_shows_every_class():
    figure = probability_figure(make_face("angry"))
    bar = figure.data[0]
    assert bar.orientation == "h" and len(bar.x) == len(CLASSES)
    assert bar.y[-1].endswith("angry")  # First class on top.
    assert max(bar.x) == pytest.approx(0.4)

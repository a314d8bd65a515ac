"""Charts name classes in words and let Plotly turn crowded ticks (fer/charts/layout.py and its users)."""

from __future__ import annotations

import numpy as np

from fer.charts.evaluation import comparison_bars, confusion_heatmap, per_class_bars
from fer.charts.explain import feature_map_figure
from fer.charts.video import shares_figure
from fer.evaluate.scoring import score
from fer.explain.features import FeatureMap
from fer.labels import CLASSES


def _evaluation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASSES), 200)
    return score(labels, rng.dirichlet(np.ones(len(CLASSES)), 200), CLASSES)


def test_class_axes_are_words_that_turn_when_crowded():
    evaluation = _evaluation()
    matrix = confusion_heatmap(evaluation)
    assert list(matrix.data[0].x) == list(CLASSES)  # No emoji: a blank box without an emoji font.
    assert matrix.layout.xaxis.tickangle is None  # Never forced flat: Plotly chooses from autotickangles.
    assert list(matrix.layout.xaxis.autotickangles) == [0, -90]
    for figure in (per_class_bars(evaluation), comparison_bars({"a": evaluation, "b": evaluation})):
        assert list(figure.data[0].x) == list(CLASSES)
        assert list(figure.layout.xaxis.autotickangles) == [0, -90]


def test_side_by_side_matrices_can_leave_out_the_colour_bar():
    assert confusion_heatmap(_evaluation(), scale=False).data[0].showscale is False


def test_feature_map_classes_differ_in_shape_as_well_as_colour():
    points = np.random.default_rng(1).normal(size=(70, 2))
    labels = np.repeat(np.arange(7), 10)
    mapped = FeatureMap(points=points, indexes=np.arange(70), method="pca", explained=0.5)
    figure = feature_map_figure(mapped, labels, labels, CLASSES)
    assert [trace.name for trace in figure.data] == list(CLASSES)
    assert len({trace.marker.symbol for trace in figure.data}) == len(CLASSES)


def test_the_video_legend_sits_beside_the_bars_not_over_the_ticks():
    from fer.serve.video import VideoResult

    legend = shares_figure(VideoResult("clip.mp4", 10, 10, 1.0, 10.0, ())).layout.legend
    assert legend.orientation == "v" and legend.x >= 1

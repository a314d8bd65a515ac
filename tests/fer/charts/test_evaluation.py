"""Evaluation charts (fer.charts.evaluation) show the numbers scoring computed."""

from __future__ import annotations

from fer.charts.evaluation import (
    comparison_bars,
    confidence_figure,
    confusion_heatmap,
    per_class_bars,
    reliability_figure,
)


def test_charts_show_the_numbers(three_class):
    counts = confusion_heatmap(three_class)
    assert counts.data[0].z.tolist() == [[3, 1, 0], [0, 2, 1], [2, 0, 1]]
    assert list(counts.data[0].y) == ["a", "b", "c"] and counts.layout.yaxis.autorange == "reversed"
    shares = confusion_heatmap(three_class, normalized=True)
    assert shares.data[0].text[2][0] == "67%" and shares.data[0].zmax == 1
    assert [trace.name for trace in per_class_bars(three_class).data] == ["precision", "recall", "f1"]
    histogram = confidence_figure(three_class)
    assert sum(histogram.data[1].y) == 4  # The wrong predictions.
    assert "Expected calibration error" in reliability_figure(three_class).layout.title.text
    assert [trace.name for trace in comparison_bars({"one": three_class, "two": three_class}).data] == ["one", "two"]

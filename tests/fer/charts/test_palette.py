"""One colour per class (fer.charts.palette), the same in charts and on annotated photos."""

from __future__ import annotations

import numpy as np

from fer.charts import dataset as charts
from fer.data import eda


def test_a_class_has_one_colour_in_charts_and_on_photos():
    from fer.charts.palette import CLASS_COLORS, FALLBACK_COLOR, class_color
    from fer.charts.prediction import probability_figure
    from fer.labels import CLASSES
    from fer.serve.detection import Box
    from fer.serve.drawing import annotate
    from fer.serve.prediction import FacePrediction

    assert set(CLASS_COLORS) == set(CLASSES) and len(set(CLASS_COLORS.values())) == len(CLASSES)
    assert class_color("not-ours") == FALLBACK_COLOR
    profiles = eda.class_profiles(_one_image_per_class())
    lines = {line.name.split()[-1]: line.line.color for line in charts.pixel_histogram_chart(profiles).data}
    assert lines == CLASS_COLORS
    face = FacePrediction(Box(10, 30, 40, 40), "sad", 0.9, {name: 1 / 7 for name in CLASSES})
    bars = probability_figure(face).data[0]
    assert dict(zip((label.split()[-1] for label in bars.y), bars.marker.color)) == CLASS_COLORS
    drawn = annotate(np.zeros((100, 100, 3), np.uint8), [face])
    box_edge = drawn[50, 10]  # The box's left edge, below the tag.
    assert "#{:02X}{:02X}{:02X}".format(*box_edge) == CLASS_COLORS["sad"]


def _one_image_per_class():
    from fer.data.datasets import dataset_from_arrays

    images = np.stack([np.full((48, 48), 20 * (i + 1), np.uint8) for i in range(7)])
    return dataset_from_arrays({"train": (images, np.arange(7))})

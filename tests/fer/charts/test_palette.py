"""The class colours (fer/charts/palette.py) can be told apart."""

from __future__ import annotations

import itertools

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from fer.charts.palette import CLASS_COLORS


def _lab(color: str) -> np.ndarray:
    return rgb2lab(np.array([[[int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]]]))[0, 0]


def test_every_two_classes_differ_clearly_in_colour():
    # Happy's yellow and surprise's former orange were 17.5 apart and hard to tell apart on the feature map.
    distances = {(a, b): float(deltaE_ciede2000(_lab(CLASS_COLORS[a]), _lab(CLASS_COLORS[b])))
                 for a, b in itertools.combinations(CLASS_COLORS, 2)}
    assert min(distances.values()) >= 25, min(distances.items(), key=lambda item: item[1])

"""Video charts (fer.charts.video): the timeline and the shares follow each tracked face."""

from __future__ import annotations

import pytest

from fer.charts.video import shares_figure, timeline_figure
from fer.labels import CLASSES
from helpers.videos import FakeClassifier, FakeDetector
from fer.serve.video import VideoConfig, predict_video


def test_figures_follow_each_tracked_face(clip):
    result = predict_video(clip, FakeClassifier(), FakeDetector(), config=VideoConfig(clip=False))
    timeline = timeline_figure(result, 1)
    assert [trace.name.split()[-1] for trace in timeline.data] == list(CLASSES)
    happy = timeline.data[CLASSES.index("happy")].y
    assert happy[:20] == pytest.approx([0.9] * 20) and list(happy[20:]) == [None] * 10  # A gap once the face has gone.
    shares = shares_figure(result)
    assert shares.data[CLASSES.index("happy")].x == (1.0,)

"""The feature map's sample (fer/explain/features.py): as many faces as were asked for."""

from __future__ import annotations

import numpy as np
import pytest

from fer.explain.features import capped_sample


@pytest.mark.parametrize("cap", [2000, 1999, 500, 7])
def test_the_sample_has_exactly_the_faces_asked_for(cap):
    # FER2013-like shares: a rare class, and sizes whose proportional shares all round down.
    labels = np.repeat(np.arange(7), [467, 56, 496, 895, 607, 653, 415])
    chosen = capped_sample(labels, cap)
    assert len(chosen) == cap
    assert len(set(chosen.tolist())) == cap and np.all(np.diff(chosen) > 0)
    assert set(labels[chosen]) == set(range(7))


def test_fewer_slots_than_classes_still_gives_the_count_asked_for():
    labels = np.repeat(np.arange(7), 10)
    assert len(capped_sample(labels, 3)) == 3

"""The label audit (fer/explain/audit.py): its time covers the whole job, and a page full of one rare
class comes with a word of caution."""

from __future__ import annotations

import numpy as np
from types import SimpleNamespace

from fer.explain.audit import Audit, Suspect, audit_split, page_caution
from fer.labels import CLASSES


def _audit(given: list[str]) -> Audit:
    suspects = tuple(Suspect(i, f"{i}.png", name, "happy", i / len(given)) for i, name in enumerate(given))
    return Audit("validation", CLASSES, suspects, np.zeros((len(given), 7)), True, 1.0)


def test_a_page_full_of_a_rare_class_comes_with_a_caution():
    # 30 disgust faces in a split of 1,000 (3%); the first page of 24 holds 23 of them.
    given = ["disgust"] * 23 + ["happy"] + ["disgust"] * 7 + ["happy", "sad", "neutral", "fear"] * 242 + ["angry"] * 2
    audit = _audit(given)
    caution = page_caution(audit, audit.suspects[:24])
    assert caution.startswith("23 of these 24 faces are labelled disgust, a class that is only 3.0% of the split.")


def test_a_mixed_page_or_a_common_class_needs_no_caution():
    mixed = _audit(list(CLASSES) * 100)
    assert page_caution(mixed, mixed.suspects[:24]) is None
    common = _audit(["happy"] * 400 + list(CLASSES) * 50)
    assert page_caution(common, common.suspects[:24]) is None


def test_the_audit_time_counts_the_out_of_fold_training():
    labels = np.repeat(np.arange(7), 3)
    split = SimpleNamespace(files=[f"{i}.png" for i in range(21)])
    dataset = SimpleNamespace(classes=CLASSES, arrays=lambda name: (np.zeros((21, 48, 48), np.uint8), labels),
                              split=lambda name: split)
    probabilities = np.full((21, 7), 1 / 7)
    audit = audit_split(None, CLASSES, dataset, "validation", probabilities=probabilities, seconds_before=54.0)
    assert 54.0 <= audit.seconds < 60

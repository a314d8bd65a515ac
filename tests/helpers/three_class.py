"""Three classes scored by hand: the case fer.evaluate.scoring and its charts are checked against."""

from __future__ import annotations

import numpy as np

from fer.evaluate.scoring import Evaluation, score

CLASSES3 = ("a", "b", "c")
# 4 a, 3 b, 3 c. Predictions: a → a a a b; b → b b c; c → c a a. By hand:
#   confusion [[3 1 0] [0 2 1] [2 0 1]]; accuracy 6/10;
#   recall a 3/4, b 2/3, c 1/3  → balanced accuracy (3/4 + 2/3 + 1/3) / 3 = 7/12;
#   precision a 3/5, b 2/3, c 1/2;  F1 a 2/3, b 2/3, c 2·(1/2)(1/3)/(5/6) = 2/5
#   → macro F1 (2/3 + 2/3 + 2/5) / 3 = 26/45.
LABELS3 = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDICTED3 = np.array([0, 0, 0, 1, 1, 1, 2, 2, 0, 0])
CONFIDENCE3 = np.array([0.9, 0.8, 0.7, 0.6, 0.9, 0.8, 0.5, 0.9, 0.95, 0.55])


def probabilities_for(predicted: np.ndarray, confidence: np.ndarray, classes: int) -> np.ndarray:
    """Rows whose argmax is `predicted` with that probability; the rest spread evenly."""
    rest = (1 - confidence) / (classes - 1)
    rows = np.repeat(rest[:, None], classes, axis=1)
    rows[np.arange(len(predicted)), predicted] = confidence
    return rows


def three_class_score() -> Evaluation:
    """The hand-computed case above, scored."""
    return score(LABELS3, probabilities_for(PREDICTED3, CONFIDENCE3, 3), CLASSES3)

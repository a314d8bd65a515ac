"""Evaluation: a model's predictions over a split, scored into metrics and reports (scoring)."""

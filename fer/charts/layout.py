"""Axis and legend settings every chart shares, so that labels stay readable at any width.

Plotly draws a chart at the width the page gives it, which is only known in the browser (a full
page at 1400 px, half of one at 1000 px when two matrices sit side by side). Category axes
therefore let Plotly choose the first angle in `TICK_ANGLES` at which the labels do not overlap,
and ticks name classes in words only: an emoji is a blank box on machines without an emoji font.
"""

from __future__ import annotations

from typing import Sequence

TICK_ANGLES = (0, -90)  # Tried in order. Not -45: Plotly takes it while turned neighbours still touch.
# Marker symbols per class in scatter plots: a second carrier beside colour, for readers who
# confuse two hues and for points drawn over each other.
CLASS_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "triangle-down", "star")


def category_axis(**settings) -> dict:
    """A category axis whose tick labels turn when they would overlap and push the margin out."""
    return dict(automargin=True, autotickangles=list(TICK_ANGLES), **settings)


def legend_beside() -> dict:
    """A legend to the right of the plot: it never covers ticks, however many entries wrap."""
    return dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top")


def legend_above() -> dict:
    """A horizontal legend above the plot area (the top margin grows to fit it)."""
    return dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom")


def class_symbol(index: int, symbols: Sequence[str] = CLASS_SYMBOLS) -> str:
    """The marker symbol of the `index`-th class."""
    return symbols[index % len(symbols)]

"""Plotly figures for the Evaluate page, drawn from a `fer.evaluate.scoring.Evaluation`."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from fer.charts.palette import BLUE, GREY, METRIC_COLORS, MODEL_COLORS, ORANGE, RIGHT_COLOR, WRONG_COLOR, cycle
from fer.evaluate.scoring import Evaluation, confidence_histogram, reliability
from fer.charts.layout import category_axis, legend_above


def confusion_heatmap(evaluation: Evaluation, *, normalized: bool = False, title: str | None = None,
                      scale: bool = True) -> go.Figure:
    """The confusion matrix, rows true and columns predicted, as counts or as row fractions.

    `scale=False` leaves out the colour bar (every cell is written anyway): two matrices side by side
    on a narrow page then keep room for their cells."""
    counts = evaluation.confusion
    shares = evaluation.normalized_confusion  # (C, C), each row sums to 1
    labels = list(evaluation.classes)
    text = [[f"{share:.0%}" if normalized else f"{count:,}" for count, share in zip(*rows)]
            for rows in zip(counts, shares)]
    figure = go.Figure(go.Heatmap(
        z=shares if normalized else counts, x=labels, y=labels, text=text, texttemplate="%{text}",
        customdata=np.stack([counts, shares * 100], axis=-1), colorscale="Blues",
        zmin=0, zmax=1 if normalized else max(int(counts.max()), 1), showscale=scale,
        colorbar=dict(title="share of row" if normalized else "images", tickformat=".0%" if normalized else ","),
        hovertemplate="true %{y} → predicted %{x}<br>%{customdata[0]:,} images "
                      "(%{customdata[1]:.1f}% of %{y})<extra></extra>",
    ))
    figure.update_layout(
        title=title, height=160 + 44 * len(labels), margin=dict(t=40 if title else 10, b=10, l=10, r=10),
        xaxis=category_axis(title="predicted"),
        yaxis=category_axis(title="true", autorange="reversed"),  # First class on top, like the table.
    )
    return figure


def per_class_bars(evaluation: Evaluation) -> go.Figure:
    """Precision, recall and F1 per class as grouped bars; support in the hover."""
    labels = [row.name for row in evaluation.per_class]
    support = [row.support for row in evaluation.per_class]
    figure = go.Figure()
    for metric, color in METRIC_COLORS.items():
        figure.add_bar(
            name=metric, x=labels, y=[getattr(row, metric) for row in evaluation.per_class], marker_color=color,
            customdata=support, hovertemplate=f"%{{x}} {metric} %{{y:.1%}}<br>%{{customdata:,}} images<extra></extra>",
        )
    figure.update_layout(barmode="group", yaxis=dict(range=[0, 1], tickformat=".0%"), height=340,
                         xaxis=category_axis(), margin=dict(t=10, b=10, l=10, r=10), legend=legend_above())
    return figure


def confidence_figure(evaluation: Evaluation, *, bins: int = 20) -> go.Figure:
    """A histogram of the top-class probability, stacked into right and wrong predictions."""
    histogram = confidence_histogram(evaluation, bins=bins)
    centres = (histogram.edges[:-1] + histogram.edges[1:]) / 2
    figure = go.Figure()
    for name, counts, color in (("right", histogram.correct, RIGHT_COLOR), ("wrong", histogram.wrong, WRONG_COLOR)):
        figure.add_bar(name=name, x=centres, y=counts, width=1 / bins, marker_color=color,
                       hovertemplate=f"confidence %{{x:.0%}} ± {50 / bins:.1f}%<br>%{{y:,}} {name}<extra></extra>")
    figure.update_layout(barmode="stack", bargap=0.05, height=320, margin=dict(t=10, b=10, l=10, r=10),
                         xaxis=dict(title="confidence (top probability)", range=[0, 1], tickformat=".0%"),
                         yaxis_title="images", legend=dict(orientation="h", y=1.1))
    return figure


def reliability_figure(evaluation: Evaluation) -> go.Figure:
    """Accuracy per confidence bin against the diagonal of perfect calibration, ECE in the title."""
    bins = reliability(evaluation)
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    filled = bins.counts > 0
    figure = go.Figure()
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                       line=dict(color=GREY, dash="dash"), hoverinfo="skip")
    figure.add_bar(
        name="accuracy", x=centres[filled], y=bins.accuracy[filled], width=1 / len(centres), marker_color=BLUE,
        customdata=np.stack([bins.confidence[filled], bins.counts[filled]], axis=-1),
        hovertemplate="mean confidence %{customdata[0]:.1%}<br>accuracy %{y:.1%}<br>"
                      "%{customdata[1]:,} images<extra></extra>",
    )
    figure.add_scatter(x=bins.confidence[filled], y=bins.accuracy[filled], mode="markers", name="bin (mean confidence)",
                       marker=dict(color=ORANGE, size=8), hoverinfo="skip")
    figure.update_layout(
        title=f"Expected calibration error {bins.ece:.1%}", height=360, bargap=0.05,
        margin=dict(t=40, b=10, l=10, r=10), legend=dict(orientation="h", y=-0.3, yanchor="top"),  # Below "confidence".
        xaxis=dict(title="confidence", range=[0, 1], tickformat=".0%"),
        yaxis=dict(title="accuracy", range=[0, 1], tickformat=".0%"),
    )
    return figure


def comparison_bars(evaluations: Mapping[str, Evaluation], *, metric: str = "f1") -> go.Figure:
    """One per-class metric (precision, recall or f1) for several models on the same split."""
    if metric not in METRIC_COLORS:
        raise ValueError(f"metric must be one of {', '.join(METRIC_COLORS)}, got {metric!r}")
    figure = go.Figure()
    for i, (name, evaluation) in enumerate(evaluations.items()):
        figure.add_bar(name=name, x=[row.name for row in evaluation.per_class],
                       y=[getattr(row, metric) for row in evaluation.per_class],
                       marker_color=cycle(MODEL_COLORS, i),
                       hovertemplate=f"{name}<br>%{{x}} {metric} %{{y:.1%}}<extra></extra>")
    figure.update_layout(barmode="group", yaxis=dict(title=metric, range=[0, 1], tickformat=".0%"), height=340,
                         xaxis=category_axis(), margin=dict(t=10, b=10, l=10, r=10), legend=legend_above())
    return figure

"""Plotly figures for the Predict page: one face's class probabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from fer.charts.palette import class_color

if TYPE_CHECKING:
    from fer.serve.prediction import FacePrediction


def probability_figure(face: FacePrediction):
    """A plotly horizontal bar chart of one face's class probabilities, the top class highlighted."""
    names = list(face.probabilities)[::-1]  # First class on top.
    values = [face.probabilities[name] for name in names]
    figure = go.Figure(go.Bar(
        x=values, y=names, orientation="h",
        marker_color=[class_color(name) for name in names],
        marker_opacity=[1.0 if name == face.label else 0.45 for name in names],
        text=[f"{value:.0%}" for value in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    figure.update_layout(
        height=40 + 28 * len(names), margin=dict(l=10, r=40, t=10, b=10), showlegend=False,
        xaxis=dict(range=[0, 1], tickformat=".0%", showgrid=True), yaxis=dict(automargin=True),
    )
    return figure

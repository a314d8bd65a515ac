"""Plotly figures for a video file's result (`fer.serve.video.VideoResult`): timelines and shares."""

from __future__ import annotations

import plotly.graph_objects as go

from fer.charts.layout import legend_beside
from fer.charts.palette import CLASS_COLORS, FALLBACK_COLOR
from fer.serve.video import VideoResult


def timeline_figure(result: VideoResult, track_id: int) -> go.Figure:
    """One face's class probabilities over time, a line per class; gaps where the face was not seen."""
    seen = {time: face.prediction for time, face in result.timeline(track_id)}
    times = [frame.time for frame in result.frames]
    figure = go.Figure()
    for name in result.classes:
        values = [seen[time].probabilities.get(name) if time in seen else None for time in times]
        figure.add_trace(go.Scatter(
            x=times, y=values, mode="lines", name=name,
            line=dict(color=CLASS_COLORS.get(name, FALLBACK_COLOR), width=2), connectgaps=False,
            hovertemplate=f"{name}: %{{y:.0%}} at %{{x:.1f}} s<extra></extra>",
        ))
    figure.update_layout(
        height=280, margin=dict(l=10, r=10, t=10, b=10), hovermode="x unified",
        xaxis=dict(title="seconds", range=[0, max(result.duration, times[-1] if times else 0)]),
        yaxis=dict(title="probability", range=[0, 1], tickformat=".0%"),
        legend=legend_beside(),
    )
    return figure


def shares_figure(result: VideoResult) -> go.Figure:
    """Per tracked face, the share of its frames read as each class: one stacked bar per face."""
    shares = result.shares()
    faces = [f"face {track_id}" for track_id in shares]
    figure = go.Figure()
    for name in result.classes:
        values = [face_shares[name] for face_shares in shares.values()]
        figure.add_trace(go.Bar(
            y=faces, x=values, orientation="h", name=name,
            marker_color=CLASS_COLORS.get(name, FALLBACK_COLOR),
            text=[f"{value:.0%}" if value >= 0.08 else "" for value in values], textposition="inside",
            hovertemplate=f"%{{y}}: {name} in %{{x:.0%}} of its frames<extra></extra>",
        ))
    figure.update_layout(
        barmode="stack", height=max(190, 60 + 36 * len(faces)), margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(range=[0, 1], tickformat=".0%"), yaxis=dict(autorange="reversed"),
        legend=legend_beside(),  # Beside, not below: a wrapped legend below the bars covered the axis ticks.
    )
    return figure

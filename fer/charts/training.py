"""Plotly figures of training runs: loss and accuracy per epoch, learning rate, and run comparison.

Every function takes metric records as fer.train.run_dir.RunDir.read_metrics returns them (one dict per
epoch: epoch, loss, accuracy, val_loss, val_accuracy, lr, ..., partial) and returns a figure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from fer.charts.palette import LEARNING_RATE_COLOR, TRAIN_COLOR, VALIDATION_COLOR

METRIC_TITLES = {
    "loss": "Loss",
    "accuracy": "Accuracy",
    "val_loss": "Validation loss",
    "val_accuracy": "Validation accuracy",
    "lr": "Learning rate",
    "images_per_second": "Images/s",
}


def curves_figure(records: Sequence[dict], metric: str = "loss") -> go.Figure:
    """Train and validation `metric` ("loss" or "accuracy") per epoch.

    An epoch cut short by a stop is drawn as an open marker: its numbers cover only part of the data.
    """
    figure = _figure(METRIC_TITLES.get(metric, metric), metric)
    for key, name, color in ((metric, "train", TRAIN_COLOR), (f"val_{metric}", "validation", VALIDATION_COLOR)):
        points = [r for r in records if r.get(key) is not None]
        if not points:
            continue
        figure.add_trace(go.Scatter(
            x=[r["epoch"] for r in points], y=[r[key] for r in points], name=name, mode="lines+markers",
            line={"color": color},
            marker={"color": color, "size": 8,
                    "symbol": ["circle-open" if r.get("partial") else "circle" for r in points]},
            customdata=[["partial epoch (stopped)" if r.get("partial") else ""] for r in points],
            hovertemplate=f"epoch %{{x}}<br>{name} {metric} %{{y:.4f}}<br>%{{customdata[0]}}<extra></extra>",
        ))
    return _finish(figure, records)


def learning_rate_figure(records: Sequence[dict]) -> go.Figure:
    """The learning rate at the end of each epoch, on a log axis (schedules span decades)."""
    figure = _figure("Learning rate", "lr")
    points = [r for r in records if r.get("lr")]
    if points:
        figure.add_trace(go.Scatter(
            x=[r["epoch"] for r in points], y=[r["lr"] for r in points], name="learning rate",
            mode="lines+markers", line={"color": LEARNING_RATE_COLOR},
            hovertemplate="epoch %{x}<br>learning rate %{y:.3g}<extra></extra>",
        ))
        figure.update_yaxes(type="log", exponentformat="power")
    return _finish(figure, records)


def comparison_figure(histories: Mapping[str, Sequence[dict]], metric: str = "val_accuracy") -> go.Figure:
    """One line per run: `metric` per epoch, to compare runs side by side."""
    figure = _figure(f"{METRIC_TITLES.get(metric, metric)} by run", metric)
    for run, records in histories.items():
        points = [r for r in records if r.get(metric) is not None]
        if not points:
            continue
        figure.add_trace(go.Scatter(
            x=[r["epoch"] for r in points], y=[r[metric] for r in points], name=run, mode="lines+markers",
            hovertemplate=f"{run}<br>epoch %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>",
        ))
    if not figure.data:
        _note(figure, "No epochs recorded yet for these runs")
    figure.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.25})
    return figure


def _figure(title: str, metric: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title=title, height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
                         hovermode="x unified")
    figure.update_xaxes(title="epoch", tickmode="linear", dtick=1, rangemode="tozero")
    if "accuracy" in metric:
        figure.update_yaxes(title=METRIC_TITLES.get(metric, metric).lower(), tickformat=".0%")
    else:
        figure.update_yaxes(title=METRIC_TITLES.get(metric, metric).lower())
    return figure


def _finish(figure: go.Figure, records: Sequence[dict]) -> go.Figure:
    if not figure.data:
        _note(figure, "Waiting for the first epoch to finish…" if not records else "Not recorded for this run")
    else:
        figure.update_xaxes(dtick=max(1, len(records) // 15))  # At most ~15 epoch ticks.
    return figure


def _note(figure: go.Figure, text: str) -> None:
    figure.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                          font={"size": 14, "color": "gray"})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)

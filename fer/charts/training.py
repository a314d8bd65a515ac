"""Plotly figures of training runs: loss and accuracy per epoch, learning rate, and run comparison.

Every function takes metric records as fer.train.run_dir.RunDir.read_metrics returns them (one dict per
epoch: epoch, loss, accuracy, val_loss, val_accuracy, lr, ..., partial) and returns a figure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from fer.charts.palette import GREY, LEARNING_RATE_COLOR, TRAIN_COLOR, VALIDATION_COLOR

METRIC_TITLES = {
    "loss": "Loss",
    "accuracy": "Accuracy",
    "val_loss": "Validation loss",
    "val_accuracy": "Validation accuracy",
    "lr": "Learning rate",
    "images_per_second": "Images/s",
}


def curves_figure(records: Sequence[dict], metric: str = "loss", *, start: float | None = None,
                  best_epoch: int | None = None) -> go.Figure:
    """Train and validation `metric` ("loss" or "accuracy") per epoch.

    An epoch cut short by a stop is drawn as an open marker: its numbers cover only part of the data.
    On the accuracy chart, `start` (a fine-tuning run's starting model on the validation faces) is drawn
    at epoch 0 with a dotted line across, and `best_epoch` (0: the start) gets a star: the model kept.
    """
    figure = _figure(f"{METRIC_TITLES.get(metric, metric)} per epoch", metric)
    if metric == "accuracy" and start is not None:
        last = max((r["epoch"] for r in records), default=1)
        figure.add_trace(go.Scatter(
            x=[0, last], y=[start, start], name="start", mode="lines+markers", line={"color": GREY, "dash": "dot"},
            marker={"color": GREY, "size": [8, 0]},
            hovertemplate="the starting model<br>validation accuracy %{y:.4f}<br>kept unless an epoch reads the "
                          "validation faces better by more than chance<extra></extra>",
        ))
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
    kept = _kept_point(records, metric, start, best_epoch)
    if kept is not None:
        figure.add_trace(go.Scatter(
            x=[kept[0]], y=[kept[1]], name="kept", mode="markers",
            marker={"symbol": "star", "size": 15, "color": VALIDATION_COLOR, "line": {"color": "white", "width": 1}},
            hovertemplate="the model kept (best on the validation faces)<br>epoch %{x}<extra></extra>",
        ))
    return _finish(figure, records)


def _kept_point(records: Sequence[dict], metric: str, start: float | None,
                best_epoch: int | None) -> tuple[int, float] | None:
    """(epoch, validation accuracy) of the model a run kept, when the accuracy chart can show it."""
    if metric != "accuracy" or best_epoch is None:
        return None
    if best_epoch == 0:
        return (0, start) if start is not None else None
    scores = [r.get("val_accuracy") for r in records if r.get("epoch") == best_epoch]
    return (best_epoch, scores[-1]) if scores and scores[-1] is not None else None


def learning_rate_figure(records: Sequence[dict]) -> go.Figure:
    """The learning rate at the end of each epoch, on a log axis (schedules span decades)."""
    figure = _figure("Learning rate per epoch", "lr")
    points = [r for r in records if r.get("lr")]
    if points:
        figure.add_trace(go.Scatter(
            x=[r["epoch"] for r in points], y=[r["lr"] for r in points], name="learning rate",
            mode="lines+markers", line={"color": LEARNING_RATE_COLOR},
            hovertemplate="epoch %{x}<br>learning rate %{y:.3g}<extra></extra>",
        ))
        figure.update_yaxes(type="log", exponentformat="power", dtick="D2")  # Powers of ten, 2 and 5 between.
    return _finish(figure, records)


def comparison_figure(histories: Mapping[str, Sequence[dict]], metric: str = "val_accuracy") -> go.Figure:
    """One line per run: `metric` per epoch, to compare runs side by side."""
    figure = _figure(f"{METRIC_TITLES.get(metric, metric)} per epoch, by run", metric)
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
    else:
        _epoch_ticks(figure, max(len(records) for records in histories.values()))
    figure.update_layout(showlegend=True)
    return figure


def _figure(title: str, metric: str) -> go.Figure:
    # The Train page gives each curve a third of its width (about 200 px in a 1000 px window): the legend
    # goes under the plot, where it can wrap, and the title says what both axes are, so neither has one.
    figure = go.Figure()
    figure.update_layout(title={"text": title, "font": {"size": 15}}, height=340,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "x": 0, "y": -0.16, "yanchor": "top"}, hovermode="x unified")
    figure.update_xaxes(rangemode="tozero")
    figure.update_yaxes(tickformat=".0%" if "accuracy" in metric else None)
    return figure


def _finish(figure: go.Figure, records: Sequence[dict]) -> go.Figure:
    if not figure.data:
        _note(figure, "Waiting for the first epoch to finish…" if not records else "Not recorded for this run")
    else:
        _epoch_ticks(figure, len(records))
    return figure


def _epoch_ticks(figure: go.Figure, epochs: int) -> None:
    if epochs <= 6:
        figure.update_xaxes(tickmode="linear", dtick=1)  # Every epoch, never half of one.
    else:
        figure.update_xaxes(tickmode="auto", nticks=6)  # Round steps (2, 5, 10...) that fit a narrow chart.


def _note(figure: go.Figure, text: str) -> None:
    figure.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                          font={"size": 14, "color": "gray"})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)

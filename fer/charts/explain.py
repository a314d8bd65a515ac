"""Plotly figures for seeing inside a model: a confusion matrix whose cells can be clicked, and the feature map."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go

from fer.charts.evaluation import confusion_heatmap
from fer.charts.layout import class_symbol
from fer.charts.palette import class_color
from fer.evaluate.scoring import Evaluation

if TYPE_CHECKING:  # fer.explain.features imports Keras; drawing a map must not.
    from fer.explain.features import FeatureMap


def clickable_confusion(evaluation: Evaluation, *, normalized: bool = False) -> go.Figure:
    """The confusion heatmap with a transparent marker on every cell: Plotly heatmaps send no point
    selections, markers do, so a click on a cell selects its marker (customdata = [true, predicted]).

    No colour bar: every cell writes its number, and beside the top confusions (three fifths of a 1000 px
    window) the bar left the cells so little room that Plotly dropped three of the seven class names."""
    figure = confusion_heatmap(evaluation, normalized=normalized, scale=False)
    labels = list(evaluation.classes)
    count = len(labels)
    true, predicted = np.divmod(np.arange(count * count), count)
    counts, shares = evaluation.confusion, evaluation.normalized_confusion
    figure.add_scatter(
        x=[labels[p] for p in predicted], y=[labels[t] for t in true], mode="markers",
        marker=dict(symbol="square", size=40, opacity=0), showlegend=False, name="cells",
        # Plain lists: a NumPy array travels as a typed array, whose rows reach Python as {"0": …} dicts.
        customdata=np.stack([true, predicted, counts.ravel(), shares.ravel() * 100], axis=1).tolist(),
        hovertemplate="true %{y} → predicted %{x}<br>%{customdata[2]:,} images (%{customdata[3]:.1f}% of %{y})"
                      "<br>click to see them<extra></extra>",
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
    )
    figure.update_layout(clickmode="event+select", dragmode=False)
    return figure


def selected_cell(event) -> tuple[int, int] | None:
    """(true, predicted) class indexes of the cell clicked in a `clickable_confusion` chart, from
    st.plotly_chart's selection event; None when no cell is selected."""
    for point in _points(event):
        data = _listed(point.get("customdata"))
        if len(data) >= 2:
            return int(data[0]), int(data[1])
    return None


def _points(event) -> list[dict]:
    return ((event or {}).get("selection") or {}).get("points") or []


def _listed(data) -> list:
    """A point's customdata as a list: the browser sends a row of a 2-D customdata as {"0": …, "1": …}."""
    if isinstance(data, dict):
        return [data[key] for key in sorted(data, key=int)]
    return list(data) if data is not None else []


def feature_map_figure(mapped: FeatureMap, labels: np.ndarray, predicted: np.ndarray,
                       classes: Sequence[str]) -> go.Figure:
    """The 2-D feature map, one colour per true class; each point's customdata is its index in the split."""
    figure = go.Figure()
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    for index, name in enumerate(classes):
        members = np.flatnonzero(labels == index)
        if not len(members):
            continue
        figure.add_scattergl(
            x=mapped.points[members, 0], y=mapped.points[members, 1], mode="markers", name=name,
            marker=dict(size=6, color=class_color(name), symbol=class_symbol(index), opacity=0.75),
            customdata=np.stack([mapped.indexes[members], predicted[members]], axis=1).tolist(),
            text=[classes[p] for p in predicted[members]],
            hovertemplate=f"true {name}, predicted %{{text}}<br>image %{{customdata[0]}}<extra></extra>",
        )
    axis = "PC" if mapped.method == "pca" else "t-SNE "
    figure.update_layout(
        height=520, margin=dict(t=10, b=10, l=10, r=10), legend=dict(itemsizing="constant"),
        xaxis=dict(title=f"{axis}1", showticklabels=False), yaxis=dict(title=f"{axis}2", showticklabels=False),
        clickmode="event+select", dragmode="lasso",
    )
    return figure


def selected_points(event) -> list[int]:
    """Split indexes of the points clicked or lassoed in a `feature_map_figure` chart."""
    return [int(_listed(point.get("customdata"))[0]) for point in _points(event) if point.get("customdata") is not None]

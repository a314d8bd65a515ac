"""Plotly figures for the Dataset page, built from the data `fer.data.eda` computes.

Image mosaics (sample grids, mean faces, duplicate groups) are one PNG in a `go.Image` trace with
an invisible marker over each tile: the markers carry the hover text (file names) and make tiles
clickable, and marker i is image i, so a selected point's index says which image was clicked.
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from fer.charts.layout import category_axis
from fer.charts.palette import ACCENT, RED, SPLIT_COLORS, class_color, cycle
from fer.data.eda import ClassProfiles, QualityThresholds, Sample
from fer.labels import IMAGE_SIZE

GAP = 2  # White pixels between mosaic tiles.
TILE_PX = 72  # On-screen size of one 48×48 tile in a mosaic's default height.


# --- Class distribution ------------------------------------------------------------------------


def distribution_chart(distribution: pd.DataFrame, *, value: str = "count") -> go.Figure:
    """Grouped bars of images per class, one bar per split; `value` is "count" or "percent"."""
    if value not in ("count", "percent"):
        raise ValueError(f"value must be 'count' or 'percent', got {value!r}")
    bars = []
    for i, (split, rows) in enumerate(distribution.groupby("split", sort=False)):
        shown = rows["percent"].map("{:.1f}%".format) if value == "count" else rows["count"].map("{:,}".format)
        bars.append(go.Bar(
            name=split, x=list(rows["class"]), y=rows[value], text=list(shown),
            marker_color=cycle(SPLIT_COLORS, i), textposition="outside", cliponaxis=False,
            customdata=np.stack([rows["count"], rows["percent"]], axis=1),
            hovertemplate=f"{split} · %{{x}}<br>%{{customdata[0]:,}} images (%{{customdata[1]:.1f}}%)<extra></extra>",
        ))
    return go.Figure(data=bars, layout=dict(
        barmode="group", yaxis_title="images" if value == "count" else "% of split", xaxis=category_axis(),
        legend_title_text="split", margin=dict(t=30, b=10, l=10, r=10), height=380,
        uniformtext=dict(minsize=9, mode="hide"),  # A share too small to read on a narrow page is hovered instead.
    ))


# --- Image mosaics -----------------------------------------------------------------------------


def _png_data_uri(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _mosaic(images, positions, hover, *, rows, columns, row_labels=None, column_labels=None,
            tile_px=TILE_PX) -> go.Figure:
    """Images (N, 48, 48) at (row, column) positions in one picture, with a hover marker on each."""
    step = IMAGE_SIZE + GAP
    pixels = np.full((max(rows, 1) * step - GAP, max(columns, 1) * step - GAP), 255, np.uint8)
    for image, (row, column) in zip(images, positions):
        pixels[row * step:row * step + IMAGE_SIZE, column * step:column * step + IMAGE_SIZE] = image
    center = (IMAGE_SIZE - 1) / 2  # go.Image puts pixel k's centre at k.
    height, width = pixels.shape
    markers = go.Scatter(
        x=[column * step + center for _, column in positions], y=[row * step + center for row, _ in positions],
        mode="markers", hovertext=list(hover), hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
        marker=dict(symbol="square-open", size=tile_px * 0.9, color=ACCENT, line_width=3, opacity=0),
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=0)),
    )
    axis = dict(showgrid=False, zeroline=False, constrain="domain", ticks="", tickmode="array")
    # One constructor call with the whole layout: plotly validates each update, which adds up.
    return go.Figure(
        data=[go.Image(source=_png_data_uri(pixels), hoverinfo="skip"), markers],
        layout=dict(
            xaxis=dict(axis, range=[-0.5, width - 0.5], tickvals=[c * step + center for c in range(columns)],
                       ticktext=list(column_labels or []), showticklabels=bool(column_labels), side="bottom"),
            yaxis=dict(axis, range=[height - 0.5, -0.5], scaleanchor="x",
                       tickvals=[r * step + center for r in range(rows)], ticktext=list(row_labels or []),
                       showticklabels=bool(row_labels)),
            height=int(height * tile_px / IMAGE_SIZE) + (40 if column_labels else 10) + 10,
            margin=dict(t=10, b=40 if column_labels else 10, l=10, r=10),
            hovermode="closest", hoverdistance=-1, dragmode=False, plot_bgcolor="white",
        ),
    )


def image_grid(images: np.ndarray, hover: Sequence[str], *, columns: int = 10,
               tile_px: int = TILE_PX) -> go.Figure:
    """A row-major mosaic of (N, 48, 48) images, `columns` per row, one hover text per image."""
    if len(hover) != len(images):
        raise ValueError(f"{len(images)} images but {len(hover)} hover texts")
    columns = max(1, min(columns, len(images)))
    positions = [(i // columns, i % columns) for i in range(len(images))]
    rows = -(-len(images) // columns)
    return _mosaic(images, positions, hover, rows=rows, columns=columns, tile_px=tile_px)


def sample_grid(images: np.ndarray, samples: Sequence[Sample], classes: Sequence[str], *,
                tile_px: int = TILE_PX) -> go.Figure:
    """One row per class of the sampled images (in `samples` order); hover shows the file name."""
    if len(samples) != len(images):
        raise ValueError(f"{len(images)} images but {len(samples)} samples")
    row_of = {name: r for r, name in enumerate(classes)}
    seen = dict.fromkeys(classes, 0)
    positions = []
    for sample in samples:
        positions.append((row_of[sample.label], seen[sample.label]))
        seen[sample.label] += 1
    hover = [f"<b>{s.file}</b><br>{s.label} · {s.split} #{s.index}" for s in samples]
    return _mosaic(images, positions, hover, rows=len(classes), columns=max(seen.values(), default=1),
                   row_labels=list(classes), tile_px=tile_px)


# --- Mean faces and pixel histograms -----------------------------------------------------------


def mean_faces_chart(profiles: ClassProfiles, *, stretch: bool = False, tile_px: int = 96) -> go.Figure:
    """The average face of each class side by side, labelled with the class and its image count.

    Averages are washed out; `stretch` maps each face's darkest..brightest value to 0..255 so
    the shape of brows and mouth shows (brightness is then no longer comparable across classes).
    """
    faces = profiles.mean_faces.astype(np.float64)
    if stretch:
        low = faces.min(axis=(1, 2), keepdims=True)
        span = np.maximum(faces.max(axis=(1, 2), keepdims=True) - low, 1e-6)
        faces = (faces - low) / span * 255
    faces = np.clip(np.rint(faces), 0, 255).astype(np.uint8)
    labels = [f"{c}<br>{n:,} images" for c, n in zip(profiles.classes, profiles.counts)]
    hover = [f"mean of {n:,} '{c}' images" for c, n in zip(profiles.classes, profiles.counts)]
    positions = [(0, i) for i in range(len(faces))]
    return _mosaic(faces, positions, hover, rows=1, columns=len(faces), column_labels=labels, tile_px=tile_px)


def pixel_histogram_chart(profiles: ClassProfiles) -> go.Figure:
    """Pixel-intensity distribution of each class, as % of that class's pixels per value 0..255."""
    fractions = profiles.pixel_fractions() * 100
    lines = [
        go.Scatter(x=np.arange(256), y=fractions[i], mode="lines", name=name,
                   line=dict(color=class_color(name), width=2),
                   hovertemplate=f"{name}: %{{y:.2f}}% of pixels at %{{x}}<extra></extra>")
        for i, name in enumerate(profiles.classes) if profiles.counts[i] > 0
    ]
    return go.Figure(data=lines, layout=dict(
        xaxis=dict(title="pixel value (0 = black, 255 = white)", range=[0, 255]), yaxis_title="% of pixels",
        hovermode="x unified", height=360, margin=dict(t=30, b=10, l=10, r=10),
    ))


# --- Image quality -----------------------------------------------------------------------------

CONTRAST_BIN = 2.0  # Contrast histogram bin width; a uint8 image's std is at most 127.5.


def contrast_chart(contrast: dict[str, np.ndarray], thresholds: QualityThresholds) -> go.Figure:
    """Histogram of per-image contrast per split (log scale), with the flagging thresholds marked.

    Binned here rather than by plotly, so the page sends ~64 bars, not every image's value.
    """
    edges = np.arange(0, 128 + CONTRAST_BIN, CONTRAST_BIN)
    bars = []
    for i, (split, values) in enumerate(contrast.items()):
        counts, _ = np.histogram(values, bins=edges)
        bars.append(go.Bar(x=edges[:-1] + CONTRAST_BIN / 2, y=counts, width=CONTRAST_BIN, name=split, opacity=0.75,
                           marker_color=cycle(SPLIT_COLORS, i),
                           customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                           hovertemplate=f"{split}: %{{y:,}} images with contrast "
                                         "%{customdata[0]:g}–%{customdata[1]:g}<extra></extra>"))
    marks = ((thresholds.near_blank_std, "near-blank", "right"),
             (thresholds.low_contrast_std, "low contrast", "left"))  # Labels either side: lines are close.
    shapes = [dict(type="line", x0=value, x1=value, y0=0, y1=1, yref="paper",
                   line=dict(color=RED, dash="dash")) for value, _, _ in marks]
    notes = [dict(x=value, y=1, yref="paper", text=f"{label} < {value:g}", showarrow=False, yanchor="bottom",
                  xanchor=side) for value, label, side in marks]
    return go.Figure(data=bars, layout=dict(
        barmode="overlay", xaxis_title="contrast (pixel standard deviation)", yaxis=dict(title="images", type="log"),
        shapes=shapes, annotations=notes, height=320, margin=dict(t=40, b=10, l=10, r=10),
    ))

"""Every colour FER Studio draws with: plotly charts (fer.charts) and boxes and tags on images (fer.serve.drawing)."""

from __future__ import annotations

ACCENT = "#6C5CE7"  # The theme's primaryColor (.streamlit/config.toml): selections and highlights.
FALLBACK_COLOR = ACCENT  # For class names a custom model brings that are not ours.

# One colour per expression, the same on a photo's boxes and tags and in every chart; every pair is at
# least 25 apart in CIEDE2000, so no two classes are mistaken for each other on a scatter plot.
CLASS_COLORS: dict[str, str] = {
    "angry": "#E53935",
    "disgust": "#7CB342",
    "fear": "#8E24AA",
    "happy": "#FBC02D",
    "neutral": "#9E9E9E",
    "sad": "#1E88E5",
    "surprise": "#00897B",  # Teal, not orange: next to happy's yellow, orange was hard to tell apart.
}

# Series that are not classes take Plotly's "Bold" qualitative colours, readable on white.
BLUE, ORANGE, PURPLE, GREEN, TEAL, PINK, YELLOW = (
    "#3969AC", "#E68310", "#7F3C8D", "#80BA5A", "#11A579", "#E73F74", "#F2B701")
GREY = "#7F8C8D"  # Reference lines, e.g. a perfectly calibrated model's diagonal.
RED = "#C0392B"  # Threshold lines.

SPLIT_COLORS = (ACCENT, "#F39C12", "#16A085", GREY)  # Dataset splits, in order.
MODEL_COLORS = (BLUE, ORANGE, PURPLE, GREEN)  # Models compared side by side, in order.
METRIC_COLORS = {"precision": BLUE, "recall": YELLOW, "f1": TEAL}
RIGHT_COLOR, WRONG_COLOR = TEAL, PINK
# Training curves keep Plotly's default first three colours, which readers of Keras plots know.
TRAIN_COLOR, VALIDATION_COLOR, LEARNING_RATE_COLOR = "#1f77b4", "#ff7f0e", "#2ca02c"


def class_color(name: str) -> str:
    """The colour of a class by name (the fallback for a class that is not ours)."""
    return CLASS_COLORS.get(name, FALLBACK_COLOR)


def cycle(colors: tuple[str, ...], index: int) -> str:
    """The `index`-th colour of a sequence, starting over when there are more items than colours."""
    return colors[index % len(colors)]


def app_icon(size: int = 64):
    """The browser tab's icon: a smiling face in the accent colour, a size×size RGBA PIL image.

    Drawn here rather than named: a Material icon as favicon is fetched from fonts.gstatic.com (nothing
    is downloaded at run time), and an emoji shows as an empty box without an emoji font.
    """
    import numpy as np
    from PIL import Image

    rows, columns = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1  # (size, size), -1..1, y pointing down.
    radius = np.hypot(rows, columns)
    eyes = np.hypot(rows + 0.3, np.abs(columns) - 0.35) < 0.13
    smile = (np.abs(np.hypot(rows + 0.05, columns) - 0.55) < 0.08) & (rows > 0.15)
    accent = [int(ACCENT[index:index + 2], 16) for index in (1, 3, 5)]
    icon = np.zeros((size, size, 4), np.uint8)
    icon[radius <= 1.0] = [*accent, 255]
    icon[(radius <= 1.0) & (eyes | smile)] = [255, 255, 255, 255]
    return Image.fromarray(icon)

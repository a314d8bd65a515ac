"""A procedural demo set: 48×48 grayscale cartoon faces for all seven expressions.

Each expression is a recipe for brows (height, slant), eyes (openness) and mouth (curve, opening,
width, asymmetry); every face then gets a random pose, scale, skin tone, lighting and noise.
Expressions share features (fear and surprise both open the eyes and mouth), so the set is
learnable but not trivial. It is deterministic under a seed and drawn in memory (about a second for
the 4,200 faces of the demo set), which makes it the dataset every page works with out of the box.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fer.labels import CLASSES, IMAGE_SIZE

CANVAS = 96  # Faces are drawn at 2× and downsampled, which anti-aliases the strokes.
DEMO_TRAIN_PER_CLASS = 500
DEMO_VALIDATION_PER_CLASS = 100

# Per expression: brow lift (px, + is up) and inner-end slant (+ raises the inner end),
# eye openness (fraction of a neutral eye's height), mouth curve (+ smiles), mouth opening
# (fraction of its width), mouth width (fraction of face width), asymmetric upper-lip raise.
RECIPES: dict[str, dict[str, float]] = {
    "angry":    dict(brow_lift=-3, brow_slant=-8, eye_open=0.60, curve=-2, opening=0.00, width=0.34, sneer=0),
    "disgust":  dict(brow_lift=-2, brow_slant=-3, eye_open=0.40, curve=-4, opening=0.14, width=0.34, sneer=7),
    "fear":     dict(brow_lift=4, brow_slant=6, eye_open=1.55, curve=-3, opening=0.25, width=0.50, sneer=0),
    "happy":    dict(brow_lift=1, brow_slant=0, eye_open=0.70, curve=10, opening=0.20, width=0.52, sneer=0),
    "neutral":  dict(brow_lift=0, brow_slant=0, eye_open=1.00, curve=0, opening=0.00, width=0.36, sneer=0),
    "sad":      dict(brow_lift=0, brow_slant=7, eye_open=0.80, curve=-9, opening=0.00, width=0.40, sneer=0),
    "surprise": dict(brow_lift=8, brow_slant=0, eye_open=1.70, curve=0, opening=0.90, width=0.28, sneer=0),
}


def draw_face(expression: str, rng: np.random.Generator) -> np.ndarray:
    """One random 48×48 uint8 face showing `expression`."""
    recipe = {k: v * rng.uniform(0.8, 1.2) for k, v in RECIPES[expression].items()}
    background = int(rng.uniform(10, 245))
    skin = int(rng.uniform(120, 235))
    ink = int(skin - rng.uniform(80, 120))  # Features are always darker than skin, as in photos.

    canvas = Image.new("L", (CANVAS, CANVAS), background)
    draw = ImageDraw.Draw(canvas)
    cx, cy = CANVAS / 2, CANVAS / 2
    face_w, face_h = rng.uniform(58, 70), rng.uniform(72, 84)
    draw.ellipse([cx - face_w / 2, cy - face_h / 2, cx + face_w / 2, cy + face_h / 2], fill=skin)

    eye_dx, eye_y = face_w * rng.uniform(0.19, 0.24), cy - face_h * rng.uniform(0.08, 0.14)
    eye_w, eye_h = rng.uniform(9, 12), rng.uniform(5, 7) * recipe["eye_open"]
    stroke = int(rng.integers(2, 4))
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse([ex - eye_w / 2, eye_y - eye_h / 2, ex + eye_w / 2, eye_y + eye_h / 2], fill=ink)
        # Brow: outer end at `lift`, inner end raised (or lowered) by `slant`.
        brow_y = eye_y - eye_h / 2 - rng.uniform(5, 8) - recipe["brow_lift"]
        inner, outer = ex - side * eye_w * 0.7, ex + side * eye_w * 0.7
        draw.line([(inner, brow_y - recipe["brow_slant"]), (outer, brow_y)], fill=ink, width=stroke + 1)

    nose_y = cy + face_h * 0.08
    draw.line([(cx, eye_y + 4), (cx - 2, nose_y), (cx + 2, nose_y)], fill=ink, width=max(stroke - 1, 1))

    mouth_y = cy + face_h * rng.uniform(0.24, 0.29)
    half = face_w * recipe["width"] / 2
    _draw_mouth(draw, cx, mouth_y, half, recipe, ink, background, stroke)

    angle = rng.uniform(-10, 10)
    scale = rng.uniform(0.9, 1.1)
    canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=background)
    size = int(CANVAS * scale)
    canvas = canvas.resize((size, size), Image.Resampling.BILINEAR)
    # Crop (or pad) back to the canvas with a random shift, as a face detector's box would.
    shift = rng.uniform(-4, 4, size=2)
    left, top = (size - CANVAS) / 2 + shift[0], (size - CANVAS) / 2 + shift[1]
    framed = Image.new("L", (CANVAS, CANVAS), background)
    framed.paste(canvas, (int(-left), int(-top)))
    framed = framed.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    face = np.asarray(framed.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX), dtype=np.float64)

    # Lighting: a random linear gradient and contrast, then sensor noise.
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] / IMAGE_SIZE - 0.5
    direction = rng.uniform(0, 2 * math.pi)
    gradient = (np.cos(direction) * xs + np.sin(direction) * ys) * rng.uniform(0, 60)
    face = (face - 128) * rng.uniform(0.7, 1.2) + 128 + gradient + rng.normal(0, rng.uniform(2, 9), face.shape)
    return np.clip(face, 0, 255).astype(np.uint8)


def _draw_mouth(draw, cx, y, half, recipe, ink, background, stroke):
    """A mouth as a curved upper and lower lip; an open mouth is filled dark."""
    curve, opening, sneer = recipe["curve"], recipe["opening"] * half * 2, recipe["sneer"]
    points = 12
    upper, lower = [], []
    for i in range(points + 1):
        t = i / points * 2 - 1  # -1 (left corner) .. 1 (right corner)
        bend = curve * (1 - t * t)  # Corners move relative to the middle: + curves up into a smile.
        lift = sneer * max(t, 0) * (1 - t)  # Raise one side of the upper lip only.
        x = cx + t * half
        upper.append((x, y + bend - curve - lift - opening * 0.35 * (1 - t * t)))
        lower.append((x, y + bend - curve + opening * 0.65 * (1 - t * t)))
    if opening > 1.5:
        draw.polygon(upper + lower[::-1], fill=min(ink, background) // 2, outline=ink)
    else:
        draw.line(upper, fill=ink, width=stroke)


def make_faces(per_class: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` faces of each expression: (images (N, 48, 48) uint8, labels (N,)), shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    rng.shuffle(labels)
    images = np.stack([draw_face(CLASSES[label], rng) for label in labels])
    return images, labels


def demo_split_sizes() -> dict[str, int]:
    """How many faces each split of the demo set has: {"train": 3500, "validation": 700}."""
    return {"train": DEMO_TRAIN_PER_CLASS * len(CLASSES), "validation": DEMO_VALIDATION_PER_CLASS * len(CLASSES)}


def draw_demo(*, train_per_class: int, validation_per_class: int, seed: int = 0,
              progress=None) -> dict[str, tuple[np.ndarray, np.ndarray, tuple[str, ...]]]:
    """The demo set, drawn in memory: {split: (images (N, 48, 48) uint8, labels (N,), names)}.

    Faces come class by class, each split from its own seeded stream, and are named
    "<split>/<class>/<class>_<i>" like the files of a Kaggle-layout folder.
    """
    total = (train_per_class + validation_per_class) * len(CLASSES)
    drawn = 0
    splits = {}
    for split, per_class, split_seed in (("train", train_per_class, seed),
                                         ("validation", validation_per_class, seed + 1)):
        rng = np.random.default_rng(split_seed)
        images, labels, names = [], [], []
        for label, name in enumerate(CLASSES):
            for i in range(per_class):
                images.append(draw_face(name, rng))
                labels.append(label)
                names.append(f"{split}/{name}/{name}_{i:05d}")
                drawn += 1
                if progress is not None and (drawn % 100 == 0 or drawn == total):
                    progress(drawn / total, f"Drawing demo faces {drawn:,}/{total:,}")
        splits[split] = (np.stack(images), np.array(labels, np.int64), tuple(names))
    return splits

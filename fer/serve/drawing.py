"""Drawing on images: each face's box and label tag with a drawn emoji, and encoding for downloads.

Used by Predict's photos, the webcam (fer.serve.live) and video clips (fer.serve.video); colours
come from fer.charts.palette, so a class has the same colour on a photo as in the charts.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fer.charts.palette import class_color

if TYPE_CHECKING:
    from fer.serve.prediction import FacePrediction


HIGHLIGHT_INK = "#FFFFFF"  # The ring around a chosen face's box: visible on every class colour and photo.


def annotate(image: np.ndarray, faces: Sequence[FacePrediction], *, numbered: bool = False,
             highlight: int | None = None) -> np.ndarray:
    """A copy of an (H, W, 3) RGB image with each face's box, label, confidence and emoji drawn on it.

    `numbered` starts each tag with the face's number (1, 2, ... in `faces` order), the number the
    page puts beside that face's chart; `highlight` (a 0-based index) draws that face's box thicker,
    ringed in white, and its tag last so no other tag covers it.
    """
    canvas = Image.fromarray(np.array(image[..., :3] if image.ndim == 3 else np.stack([image] * 3, -1)))
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(min(canvas.size) / 250))
    order = [index for index in range(len(faces)) if index != highlight]
    if highlight is not None and 0 <= highlight < len(faces):
        order.append(highlight)
    for index in order:
        face = faces[index]
        color = class_color(face.label)
        x, y, width, height = face.box
        if index == highlight:
            ring = 3 * line
            draw.rectangle([x - ring, y - ring, x + width - 1 + ring, y + height - 1 + ring], outline=HIGHLIGHT_INK,
                           width=ring)
            draw.rectangle([x, y, x + width - 1, y + height - 1], outline=color, width=2 * line)
        else:
            draw.rectangle([x, y, x + width - 1, y + height - 1], outline=color, width=line)
        _draw_tag(draw, face, color, canvas.size, tag_text(face, index + 1 if numbered else None))
    return np.asarray(canvas)


def tag_text(face: FacePrediction, number: int | None = None) -> str:
    """The words on a face's tag: "2 · happy 81%" (its number first when faces are numbered); a whole
    image read where no face was found says so, lest it pass for a face."""
    text = f"{face.label} {face.confidence:.0%}"
    if face.whole_image:
        text = f"no face · read as {text}"
    return f"{number} · {text}" if number is not None else text


def _draw_tag(draw: ImageDraw.ImageDraw, face: FacePrediction, color: str, image_size: tuple[int, int],
              text: str) -> None:
    """The label tag: [emoji icon][text] on the class colour, above the box (inside it at the top edge)."""
    font_size = int(np.clip(face.box.width / 6, 12, 40))
    font = _font(font_size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, font_size // 6)
    icon = font_size + pad
    tag_width, tag_height = icon + (right - left) + 3 * pad, max(bottom - top, icon) + 2 * pad
    x = int(np.clip(face.box.x, 0, max(image_size[0] - tag_width, 0)))
    y = face.box.y - tag_height if face.box.y >= tag_height else face.box.y
    draw.rectangle([x, y, x + tag_width, y + tag_height], fill=color)
    draw_emoji(draw, face.label, x + pad, y + (tag_height - icon) // 2, icon)
    text_y = y + (tag_height - (bottom - top)) / 2 - top
    draw.text((x + icon + 2 * pad - left, text_y), text, fill=_ink_on(color), font=font)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed.


def _ink_on(color: str) -> str:
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#111111" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#FFFFFF"


# Face colours of the drawn emoji: most are yellow, a few expressions change colour like their emoji do.
_EMOJI_FACE = {"angry": "#FF7043", "disgust": "#AED581", "fear": "#B3E5FC"}


def draw_emoji(draw: ImageDraw.ImageDraw, label: str, x: int, y: int, size: int) -> None:
    """Draw a small emoji-style face for `label` with `size`×`size` pixels at (x, y).

    Drawn from shapes because colour-emoji fonts are rarely installed on servers.
    """
    unit = size / 20  # Shapes below are laid out on a 20×20 grid.

    def at(*points: float) -> list[float]:
        return [x + p * unit if i % 2 == 0 else y + p * unit for i, p in enumerate(points)]

    ink = "#3E2723"
    stroke = max(1, round(1.4 * unit))
    draw.ellipse(at(0.5, 0.5, 19.5, 19.5), fill=_EMOJI_FACE.get(label, "#FFD54F"), outline=ink,
                 width=max(1, stroke // 2))
    big_eyes = label in ("surprise", "fear")
    for eye_x in (6.5, 13.5):
        if label == "disgust":
            draw.line(at(eye_x - 2, 8, eye_x + 2, 8), fill=ink, width=stroke)
        elif big_eyes:
            draw.ellipse(at(eye_x - 1.8, 6, eye_x + 1.8, 10), fill="#FFFFFF", outline=ink, width=stroke // 2 or 1)
            draw.ellipse(at(eye_x - 0.8, 7.2, eye_x + 0.8, 8.8), fill=ink)
        else:
            draw.ellipse(at(eye_x - 1.2, 6.8, eye_x + 1.2, 9.6), fill=ink)
    brows = {"angry": (3.5, 5.8), "fear": (5.0, 3.2), "sad": (5.2, 3.8), "surprise": (4.0, 4.0)}  # (outer, inner) y
    if label in brows:
        outer, inner = brows[label]
        draw.line(at(4, outer, 8.5, inner), fill=ink, width=stroke)
        draw.line(at(16, outer, 11.5, inner), fill=ink, width=stroke)
    if label == "happy":
        draw.chord(at(5, 8, 15, 16), 0, 180, fill=ink)
    elif label in ("sad", "angry"):
        draw.arc(at(6, 13, 14, 19), 200, 340, fill=ink, width=stroke)
    elif label == "surprise":
        draw.ellipse(at(8, 12, 12, 17), fill=ink)
    elif label == "fear":
        draw.rectangle(at(6.5, 13, 13.5, 16), fill=ink)
    elif label == "disgust":
        draw.line(at(6, 15, 8, 13.5, 10, 15, 12, 13.5, 14, 15), fill=ink, width=stroke)
    else:
        draw.line(at(6.5, 14.5, 13.5, 14.5), fill=ink, width=stroke)


def encode_image(image: np.ndarray, format: str = "PNG") -> bytes:
    """An RGB array encoded as PNG or JPEG bytes, for downloads."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format, **({"quality": 92} if format.upper() == "JPEG" else {}))
    return buffer.getvalue()

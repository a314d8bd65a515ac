"""Small datasets written to disk in every format users bring (used by fixtures and tests)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from PIL import Image

from fer.labels import CLASSES, FER2013_CSV_LABELS
from fer.paths import PROJECT_ROOT
from fer.data.synthetic import make_faces

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "datasets" / "fer2013"


def write_faces(folder: Path, per_class: int, seed: int, classes=CLASSES) -> None:
    images, labels = make_faces(per_class, seed=seed)
    for i, (image, label) in enumerate(zip(images, labels)):
        target = folder / classes[label]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"{i:04d}.png")


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder.parent).as_posix())
    return target


def write_fer2013_csv(path: Path, rows_per_class: int = 3, usage=("Training", "PublicTest", "PrivateTest")) -> Path:
    images, labels = make_faces(rows_per_class, seed=3)
    lines = ["emotion,pixels,Usage"]
    for i, (image, label) in enumerate(zip(images, labels)):
        code = FER2013_CSV_LABELS.index(CLASSES[label])
        lines.append(f"{code},{' '.join(map(str, image.ravel()))},{usage[i % len(usage)]}")
    path.write_text("\n".join(lines) + "\n")
    return path

"""Shared fixtures: an isolated FER Studio home, and small datasets written in every format."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylibsrtp (streamlit-webrtc's SRTP binding) segfaults when first imported after TensorFlow; some
# test modules import TensorFlow and the Predict tests import streamlit-webrtc, so load it first.
import pylibsrtp  # noqa: E402, F401

import numpy as np
import pytest
from PIL import Image

from fer.labels import CLASSES, FER2013_CSV_LABELS
from fer.synthetic import make_faces

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013"


@pytest.fixture(autouse=True)
def fer_home(tmp_path_factory, monkeypatch):
    """Every test gets its own FER Studio home (caches, runs), never the user's."""
    home = tmp_path_factory.mktemp("fer-home")
    monkeypatch.setenv("FER_STUDIO_HOME", str(home))
    return home


def write_faces(folder: Path, per_class: int, seed: int, classes=CLASSES) -> None:
    images, labels = make_faces(per_class, seed=seed)
    for i, (image, label) in enumerate(zip(images, labels)):
        target = folder / classes[label]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"{i:04d}.png")


@pytest.fixture
def kaggle_folder(tmp_path) -> Path:
    """archive/images/{train,validation}/<class>/*.png, nested one level like the Kaggle download."""
    root = tmp_path / "archive"
    write_faces(root / "images" / "train", per_class=4, seed=1)
    write_faces(root / "images" / "validation", per_class=2, seed=2)
    return root


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder.parent).as_posix())
    return target


@pytest.fixture
def kaggle_zip(kaggle_folder, tmp_path) -> Path:
    return zip_folder(kaggle_folder / "images", tmp_path / "faces.zip")


def write_fer2013_csv(path: Path, rows_per_class: int = 3, usage=("Training", "PublicTest", "PrivateTest")) -> Path:
    images, labels = make_faces(rows_per_class, seed=3)
    lines = ["emotion,pixels,Usage"]
    for i, (image, label) in enumerate(zip(images, labels)):
        code = FER2013_CSV_LABELS.index(CLASSES[label])
        lines.append(f"{code},{' '.join(map(str, image.ravel()))},{usage[i % len(usage)]}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    return write_fer2013_csv(tmp_path / "fer2013.csv")


@pytest.fixture
def class_folders(tmp_path) -> Path:
    root = tmp_path / "faces"
    write_faces(root, per_class=10, seed=4)
    return root


@pytest.fixture
def shared_zip() -> Path:
    path = SHARED_DATA / "images.zip"
    if not path.exists():
        pytest.skip(f"the real FER2013 data is not here ({path} is absent)")
    return path


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A 'tiny' preset model trained briefly on synthetic faces, saved with its card (session-wide)."""
    from fer.models import build_model, save_model

    import keras

    keras.utils.set_random_seed(0)
    images, labels = make_faces(40, seed=5)
    model = build_model("tiny")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(images[..., None].astype("float32"), keras.utils.to_categorical(labels, len(CLASSES)),
              epochs=3, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    return save_model(model, path, {"name": "tiny", "preset": "tiny", "classes": list(CLASSES),
                                    "metrics": {}, "hyperparameters": {}})

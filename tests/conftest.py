"""Shared fixtures: an isolated FER Studio home, and small datasets written in every format."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylibsrtp (streamlit-webrtc's SRTP binding) segfaults when first imported after TensorFlow; some
# test modules import TensorFlow and the Predict tests import streamlit-webrtc, so load it first.
import pylibsrtp  # noqa: E402, F401

import pytest

from helpers.dataset_files import SHARED_DATA, write_faces, write_fer2013_csv, zip_folder
from helpers.three_class import three_class_score
from helpers.videos import EMPTY, face_frame, write_mp4
from fer.train import jobs
from fer.labels import CLASSES
from fer.data.synthetic import make_faces


@pytest.fixture(autouse=True)
def fer_home(tmp_path_factory, monkeypatch):
    """Every test gets its own FER Studio home (caches, runs), never the user's."""
    home = tmp_path_factory.mktemp("fer-home")
    monkeypatch.setenv("FER_STUDIO_HOME", str(home))
    # The datasets tests write sit in pytest's temporary folders: the data roots a browser may open.
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    return home


@pytest.fixture
def kaggle_folder(tmp_path) -> Path:
    """archive/images/{train,validation}/<class>/*.png, nested one level like the Kaggle download."""
    root = tmp_path / "archive"
    write_faces(root / "images" / "train", per_class=4, seed=1)
    write_faces(root / "images" / "validation", per_class=2, seed=2)
    return root


@pytest.fixture
def kaggle_zip(kaggle_folder, tmp_path) -> Path:
    return zip_folder(kaggle_folder / "images", tmp_path / "faces.zip")


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


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A 'tiny' preset model trained briefly on synthetic faces, saved with its card (session-wide)."""
    from fer.model.presets import build_model
    from fer.model.cards import ModelCard
    from fer.model.files import save_model

    import keras

    keras.utils.set_random_seed(0)
    images, labels = make_faces(40, seed=5)
    model = build_model("tiny")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(images[..., None].astype("float32"), keras.utils.to_categorical(labels, len(CLASSES)),
              epochs=3, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    return save_model(model, path, ModelCard(name="tiny", preset="tiny", classes=CLASSES))


class Sleepers(list):
    """Stand-ins for fer.train.jobs' training process: `spawn` starts a `sleep` (with the run dir in argv,
    like a real job) and keeps it in this list."""

    def spawn(self, run_dir: Path) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(run_dir)])
        self.append(child)
        return child


@pytest.fixture
def sleepers():
    """A Sleepers list; pass its `spawn` to fer.train.jobs' functions. Its processes are killed afterwards."""
    started = Sleepers()
    yield started
    for child in started:
        child.kill()
        child.wait()


@pytest.fixture
def sleeping_jobs(sleepers, monkeypatch):
    """Sleepers that every job started in this test gets (for page tests, which cannot pass a spawner in)."""
    monkeypatch.setattr(jobs, "spawn_job", sleepers.spawn)
    return sleepers


@pytest.fixture(autouse=True)
def navigation_mode():
    """Run app.py the way a server does once st.navigation has been called (every test: AppTest would
    otherwise start each run in Streamlit's legacy pages/ mode, and pages.common.use_app_shell would
    rerun each run once more, dropping a button click the run carried)."""
    import streamlit as st

    from pages.common import leave_legacy_pages_mode

    leave_legacy_pages_mode()
    st.cache_data.clear()


@pytest.fixture
def model_copy(tiny_model_path, tmp_path):
    """The session's tiny model copied into a folder of its own (exports write beside it), with a card
    that records no export: other tests may have served, and so exported, the shared model."""
    import shutil

    from fer.model.cards import read_card, write_card

    target = tmp_path / "tiny.keras"
    shutil.copyfile(tiny_model_path, target)
    write_card(target, read_card(tiny_model_path).replace(exports=(), serving=None))
    return target


@pytest.fixture
def turned_searches(monkeypatch) -> list[float]:
    """The angles of every turned search YuNet runs during the test (YuNetDetector._search_turned, still run)."""
    from fer.serve.detection import YuNetDetector

    angles: list[float] = []
    original = YuNetDetector._search_turned
    monkeypatch.setattr(YuNetDetector, "_search_turned",
                        lambda self, bgr, angle: angles.append(angle) or original(self, bgr, angle))
    return angles


@pytest.fixture
def three_class():
    """Three classes scored by hand (helpers.three_class): scoring and its charts are checked against it."""
    return three_class_score()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s of a face moving slowly at 10 fps, then 1 s without it."""
    frames = [face_frame(shift) for shift in range(0, 40, 2)] + [EMPTY] * 10
    return write_mp4(tmp_path_factory.mktemp("clips") / "clip.mp4", frames)

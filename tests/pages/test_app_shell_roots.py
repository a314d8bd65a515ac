"""The app shell's dataset paths stay inside the data roots: the sidebar's "Path on the server" and the URL's
?dataset= open only what resolves inside FER_STUDIO_DATA_ROOTS; anything else gets one sentence and is
neither listed nor walked."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fer.data.datasets import DEMO
from fer.labels import CLASSES
from helpers.hostile_files import face_png

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PATH_CHOICE = "Path on the server"


@pytest.fixture(autouse=True)
def roots(monkeypatch, tmp_path):
    """Data roots of one folder, tmp_path/data, holding a small Kaggle-layout dataset; a secret one outside."""
    import fer.data.synthetic

    monkeypatch.setattr(fer.data.synthetic, "DEMO_TRAIN_PER_CLASS", 20)
    monkeypatch.setattr(fer.data.synthetic, "DEMO_VALIDATION_PER_CLASS", 5)
    monkeypatch.delenv("FER_STUDIO_MODEL", raising=False)
    for folder in ("data/faces", "secret"):
        for index, name in enumerate(CLASSES):
            (tmp_path / folder / "images" / "train" / name).mkdir(parents=True)
            (tmp_path / folder / "images" / "train" / name / "0.png").write_bytes(face_png(index))
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "data"))
    st.cache_resource.clear()
    st.cache_data.clear()
    return tmp_path


@pytest.fixture
def walks(monkeypatch) -> list[str]:
    """Every folder a dataset listing walks from now on."""
    import fer.data.datasets

    seen, real = [], fer.data.datasets._FolderListing

    def recording(root, *args, **kwargs):
        seen.append(str(root))
        return real(root, *args, **kwargs)

    monkeypatch.setattr(fer.data.datasets, "_FolderListing", recording)
    return seen


def active(app: AppTest) -> str:
    return app.session_state["dataset_source"] if "dataset_source" in app.session_state else DEMO


def open_path(path: str, query_params: dict | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params.update(query_params or {})
    app.run()
    app.sidebar.radio(key="dataset_choice").set_value(PATH_CHOICE).run()
    app.sidebar.text_input(key="dataset_path").input(path)
    app.sidebar.button[0].click().run()
    assert not app.exception, app.exception
    return app


@pytest.mark.parametrize("path", ["/", "/etc", "{tmp}/secret", "{tmp}/data/../secret", "{tmp}/data/link"])
def test_a_path_outside_the_roots_gets_one_sentence_and_is_not_walked(roots, walks, path):
    (roots / "data" / "link").symlink_to(roots / "secret")
    typed = path.format(tmp=roots)
    app = open_path(typed)
    assert len(app.sidebar.error) == 1
    message = app.sidebar.error[0].value
    assert message.startswith(f"Could not open it: '{typed}' is outside the folders this server opens datasets from")
    assert message.endswith("; copy the dataset into one of them or upload it. The previous dataset stays active.")
    assert "0.png" not in message and "images" not in message.replace(typed, "")
    assert walks == []
    assert active(app) == DEMO


def test_a_path_inside_the_roots_opens(roots):
    app = open_path(str(roots / "data" / "faces"))
    assert not app.sidebar.error
    assert app.session_state["dataset_source"] == str(roots / "data" / "faces")


@pytest.mark.parametrize("outside", ["/etc", "{tmp}/secret", "{tmp}/data/../secret"])
def test_a_url_naming_a_dataset_outside_the_roots_is_not_opened(roots, walks, outside):
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["dataset"] = outside.format(tmp=roots)
    app.run()
    assert not app.exception, app.exception
    assert active(app) == DEMO
    assert app.query_params["dataset"] == DEMO  # The URL now says what is shown.
    assert walks == []


def test_a_url_naming_a_dataset_inside_the_roots_opens(roots):
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["dataset"] = str(roots / "data" / "faces")
    app.run()
    assert app.session_state["dataset_source"] == str(roots / "data" / "faces")

"""fer.serve.served: the one handle of a chosen model, built from its name."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fer.errors import FerError
from fer.labels import CLASSES
from fer.paths import SHIPPED_MODELS_DIR, user_models_dir
from fer.serve.served import ServedModel, serve_by_name


def test_the_shipped_model_by_name_is_one_handle_with_everything_a_page_asks():
    served = serve_by_name("fer2013")
    path = SHIPPED_MODELS_DIR / "fer2013.keras"
    assert isinstance(served, ServedModel)
    assert (served.name, served.path, served.shelf, served.runtime) == ("fer2013", path, "shipped", "onnxruntime")
    assert served.modified == path.stat().st_mtime and served.key == (str(path), served.modified)
    assert served.card.classes == CLASSES and served.classes == CLASSES
    probabilities = served.classifier.probabilities(np.full((2, 48, 48), 128, np.uint8))
    assert probabilities.shape == (2, 7) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    assert served.model is served.classifier.model


def test_a_users_model_is_served_by_name_and_a_replaced_file_is_a_new_key(tiny_model_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_RUNTIME", "keras")  # No ONNX export in a child process: a fast test.
    folder = user_models_dir("ann")
    folder.mkdir(parents=True)
    shutil.copyfile(tiny_model_path, folder / "mine.keras")
    shutil.copyfile(tiny_model_path.with_suffix(".json"), folder / "mine.json")
    served = serve_by_name("mine", "ann")
    assert served.name == "mine" and served.shelf == "yours" and served.runtime == "keras"
    assert served.note and "FER_STUDIO_RUNTIME=keras" in served.note
    with pytest.raises(FerError, match="no model called 'mine'"):
        serve_by_name("mine", "bob")  # Another user's model is not a name this user has.
    import os

    later = served.modified + 10
    os.utime(folder / "mine.keras", (later, later))
    assert serve_by_name("mine", "ann").key == (str(folder / "mine.keras"), later)


@pytest.mark.parametrize("hostile", ["/etc/passwd", "../fer2013", str(SHIPPED_MODELS_DIR / "fer2013.keras"),
                                     "run:../../etc"])
def test_a_path_is_never_served(hostile):
    with pytest.raises(FerError, match="chosen by its (folder's )?name"):
        serve_by_name(hostile)


def test_legacy_h5_files_are_refused_in_words(tmp_path):
    from fer.serve.runtime import load_for_serving

    legacy = tmp_path / "planted.h5"
    legacy.write_bytes(b"\x89HDF\r\n")
    with pytest.raises(FerError, match="only in those formats"):
        load_for_serving(legacy)

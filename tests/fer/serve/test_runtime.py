"""Serving (fer.serve.runtime): ONNX on onnxruntime, the Keras fallback said once, export on first use,
and no TensorFlow import on the serving path (the command line and the pages, in fresh processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer.data.synthetic import make_faces
from fer.labels import CLASSES
from fer.model import export
from fer.model.files import load_model
from fer.paths import PROJECT_ROOT
from fer.serve import runtime
from fer.serve.prediction import Classifier

ROOT = PROJECT_ROOT
SHIPPED = ROOT / "models" / "fer2013.keras"


@pytest.fixture
def exported(model_copy):
    export.export_onnx(model_copy)
    return model_copy


def faces(count: int = 20) -> np.ndarray:
    return make_faces(-(-count // 7), seed=2)[0][:count]


def test_a_model_with_an_onnx_file_is_served_on_onnxruntime_and_agrees_with_keras(exported):
    served = runtime.load_for_serving(exported)

    assert served.runtime == "onnxruntime" and served.file == exported.with_suffix(".onnx") and served.note is None
    assert served.model.input_shape == (None, 48, 48, 1) and served.model.output_shape == (None, len(CLASSES))
    pixels = faces()[..., None].astype(np.float32)
    keras_probabilities = np.asarray(load_model(exported)[0].predict_on_batch(pixels))
    assert np.abs(served.model.predict_on_batch(pixels) - keras_probabilities).max() <= 1e-4
    classifier = Classifier(served.model, served.card.classes)
    np.testing.assert_allclose(classifier.probabilities(faces()), keras_probabilities, atol=1e-4)


def test_one_session_per_file_is_shared(exported):
    assert runtime.load_for_serving(exported).model is runtime.load_for_serving(exported).model


def test_the_cards_chosen_variant_is_served(exported):
    from fer.model.cards import Export

    variant = export.quantise_onnx(exported.with_suffix(".onnx"), "float16")
    card = export.read_card(exported).with_export(Export("onnx", "float16", variant.name))
    export.write_card(exported, card.replace(serving=variant.name))

    served = runtime.load_for_serving(exported)
    assert served.file == variant and served.model.predict_on_batch(faces()[..., None]).shape == (20, len(CLASSES))


def test_without_an_onnx_file_keras_serves_and_says_so_once(model_copy):
    first = runtime.load_for_serving(model_copy, export_missing=False)
    second = runtime.load_for_serving(model_copy, export_missing=False)

    assert first.runtime == second.runtime == "keras" and first.file == model_copy
    assert first.note == ("tiny.keras runs on Keras, which is slower to load and to run, because tiny.onnx does "
                          f"not exist. Export it with: python -m fer export {model_copy.stem} --format onnx")
    assert second.note is None
    assert Classifier(first.model, first.card.classes).probabilities(faces()).shape == (20, len(CLASSES))


def test_the_runtime_variable_forces_keras(exported, monkeypatch):
    monkeypatch.setenv(runtime.RUNTIME_VARIABLE, "keras")
    served = runtime.load_for_serving(exported)
    assert served.runtime == "keras" and "FER_STUDIO_RUNTIME=keras" in served.note


def test_a_model_registered_before_exports_is_exported_on_first_use(model_copy):
    served = runtime.load_for_serving(model_copy)

    assert served.runtime == "onnxruntime" and model_copy.with_suffix(".onnx").exists()
    assert served.card.export("onnx").max_abs_difference <= export.PARITY_TOLERANCE


def run_python(code: str, tmp_path: Path) -> dict:
    """Run `code` in a fresh interpreter at the repository root; it prints one JSON line last."""
    env = {**os.environ, "FER_STUDIO_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LOADED = ("[name for name in sys.modules if name.split('.')[0] in "
          "('tensorflow', 'keras', 'tf2onnx', 'jax', 'torch', 'mtcnn')]")


@pytest.mark.skipif(not SHIPPED.with_suffix(".onnx").exists(), reason="the shipped model's ONNX export is missing")
def test_fer_predict_and_evaluate_never_import_tensorflow(tmp_path):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo)
    result = run_python(f"""
import json, sys
from fer.cli import main
codes = [main(["predict", {str(photo)!r}]), main(["evaluate", "--dataset", "demo"])]
print(json.dumps({{"codes": codes, "loaded": {LOADED}}}))
""", tmp_path)
    assert result == {"codes": [0, 0], "loaded": []}


@pytest.mark.skipif(not SHIPPED.with_suffix(".onnx").exists(), reason="the shipped model's ONNX export is missing")
def test_home_predict_and_evaluate_pages_never_import_tensorflow(tmp_path):
    result = run_python(f"""
import json, sys
import fer.data.synthetic as synthetic
synthetic.DEMO_TRAIN_PER_CLASS, synthetic.DEMO_VALIDATION_PER_CLASS = 20, 5
import streamlit_webrtc
from types import SimpleNamespace
streamlit_webrtc.webrtc_streamer = lambda key, **kwargs: SimpleNamespace(state=SimpleNamespace(playing=False))
from streamlit.testing.v1 import AppTest
errors = {{}}
for page in ("pages/home.py", "pages/predict.py", "pages/evaluate.py"):
    at = AppTest.from_file(page, default_timeout=240)
    at.session_state["model_name"] = "fer2013"
    at.run()
    errors[page] = [str(item.value) for item in at.exception] + [item.value for item in at.error]
print(json.dumps({{"errors": errors, "loaded": {LOADED}, "onnxruntime": "onnxruntime" in sys.modules}}))
""", tmp_path)
    assert result["errors"] == {"pages/home.py": [], "pages/predict.py": [], "pages/evaluate.py": []}
    assert result["loaded"] == [] and result["onnxruntime"]  # The model was loaded, on onnxruntime.


def test_an_onnx_file_the_card_does_not_record_is_not_served(exported):
    from fer.model.cards import read_card, write_card

    write_card(exported, read_card(exported).replace(exports=(), serving=None))  # e.g. the model was saved again.

    served = runtime.load_for_serving(exported, export_missing=False)
    assert served.runtime == "keras" and "its card does not record tiny.onnx as its export" in served.note
    assert runtime.load_for_serving(exported).runtime == "onnxruntime"  # Exported again on first use.
    assert read_card(exported).export("onnx") is not None

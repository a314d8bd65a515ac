"""Saving and loading models with their cards (fer.model.files)."""

import json

import numpy as np
import pytest

from fer.errors import FerError
from fer.model.cards import ModelCard, read_card
from fer.model.presets import build_model
from fer.model.files import load_model, save_model


def test_save_and_load_round_trip_gives_identical_predictions(tmp_path):
    model = build_model("seed")
    pixels = np.random.default_rng(1).integers(0, 256, (8, 48, 48, 1)).astype("float32")
    path = save_model(model, tmp_path / "m", ModelCard(name="m", preset="seed", classes=tuple("abcdefg")))
    assert path.suffix == ".keras" and path.with_suffix(".json").exists()
    loaded, card = load_model(path)
    np.testing.assert_array_equal(np.asarray(model(pixels)), np.asarray(loaded(pixels)))
    assert card.preset == "seed" and card.input_size == (48, 48, 1) and card.created
    assert card == read_card(path) and card.classes == tuple("abcdefg")
    assert json.loads(path.with_suffix(".json").read_text())["classes"] == list("abcdefg")
    assert not list(tmp_path.glob(".*"))  # The temporary files of the atomic writes are gone.


def test_loading_something_that_is_not_a_model(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(FerError, match="junk.keras is not a Keras model FER Studio can load"):
        load_model(junk)
    with pytest.raises(FerError, match="does not exist"):
        load_model(tmp_path / "absent.keras")


@pytest.mark.parametrize("name", ["planted.h5", "planted.hdf5", "planted.keras.h5"])
def test_a_legacy_file_is_refused_in_words_before_keras_opens_it(tmp_path, name):
    planted = tmp_path / name
    planted.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(FerError, match="not a .keras file"):
        load_model(planted)


def test_a_keras_file_with_a_lambda_layer_is_refused_by_safe_mode(tmp_path):
    import keras

    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Lambda(lambda pixels: pixels * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(FerError, match="is not a Keras model FER Studio can load"):
        load_model(path)  # safe_mode: the Lambda's Python code is not deserialised.

"""fer.model.files: a model is loaded only from a .keras file, with Keras's safe mode on."""

from __future__ import annotations

import pytest

from fer.errors import FerError
from fer.model.files import load_model


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

"""fer.serve.tflite_runtime: a TFLite file answers like the Keras model it came from, at any batch size."""

from __future__ import annotations

import numpy as np

from fer.serve.tflite_runtime import TfliteModel


def test_a_tflite_file_predicts_like_keras_whatever_the_batch_size(tmp_path):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(7, activation="softmax")])
    path = tmp_path / "dense.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    pixels = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1)).astype(np.float32) / 255

    runtime = TfliteModel(path)

    assert runtime.input_shape == (None, 48, 48, 1) and runtime.output_shape == (None, 7)
    for count in (5, 1, 3):  # The interpreter is resized whenever the batch size changes.
        probabilities = runtime.predict_on_batch(pixels[:count])
        assert probabilities.shape == (count, 7) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, model.predict_on_batch(pixels[:count]), atol=1e-5)

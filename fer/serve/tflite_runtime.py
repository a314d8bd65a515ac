"""Run a TFLite file (the exports for phones and small devices) on TensorFlow's interpreter.

The app serves ONNX files (`fer.serve.runtime`); this runtime scores the TFLite exports when they are
made, with the same model interface: `predict_on_batch`, `input_shape` and `output_shape`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class TfliteModel:
    """A TFLite file on TensorFlow's interpreter, with predict_on_batch (any batch size)."""

    def __init__(self, path: str | Path):
        import tensorflow as tf

        self._interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count())
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = None
        self.input_shape = (None, *self._input["shape"][1:])
        self.output_shape = (None, int(self._output["shape"][-1]))

    def predict_on_batch(self, images) -> np.ndarray:
        pixels = np.ascontiguousarray(images, np.float32)
        if self._batch != len(pixels):
            self._interpreter.resize_tensor_input(self._input["index"], pixels.shape)
            self._interpreter.allocate_tensors()
            self._batch = len(pixels)
        self._interpreter.set_tensor(self._input["index"], pixels)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output["index"]), np.float32)

"""FER Studio's engine, along the path data takes: data, model, train, evaluate, serve, explain, charts.

Pages and the CLI call into this package; it never imports Streamlit.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine) is noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from fer.errors import DatasetError, FerError  # noqa: E402
from fer.labels import CLASSES, EMOJI  # noqa: E402

__all__ = ["CLASSES", "EMOJI", "DatasetError", "FerError"]

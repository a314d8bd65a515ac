"""Load a model for serving: its ONNX file on onnxruntime when there is one, else Keras (said once).

Serving never imports TensorFlow or Keras when the model has an ONNX file: onnxruntime imports and
loads the shipped model in a fraction of a second where TensorFlow takes several. `load_for_serving`
is the one function pages and the command line use. A model registered before exports existed is
exported on first use in a child process (`python -m fer export`), so the serving process stays free
of TensorFlow; if that fails the model runs on Keras and the reason is given once.

`OnnxModel` has the three things the rest of FER Studio uses of a model: `predict_on_batch`,
`input_shape` and `output_shape`. One session per model file is shared by every caller in the
process (the Predict page and its webcam thread alike); onnxruntime's `run` is thread-safe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fer.errors import FerError
from fer.model.cards import ModelCard, read_card
from fer.paths import PROJECT_ROOT

RUNTIME_VARIABLE = "FER_STUDIO_RUNTIME"  # "keras" serves every model on Keras (for comparisons).
EXPORT_TIMEOUT_S = 600


class SessionSettings(NamedTuple):
    """onnxruntime settings; the defaults were measured on the 2-core machine (bench/bench_serving.py)."""

    intra_op_threads: int = 0  # 0: one per core onnxruntime finds (2 here).
    inter_op_threads: int = 1  # The networks are one chain of layers: nothing to run side by side.
    optimization: str = "all"  # "basic", "extended" or "all" graph optimisations.
    spinning: bool = False  # Idle threads that spin keep a shared core busy between webcam frames.


DEFAULT_SETTINGS = SessionSettings()


class OnnxModel:
    """An ONNX classifier on onnxruntime with the model interface FER Studio uses."""

    def __init__(self, path: str | Path, settings: SessionSettings = DEFAULT_SETTINGS):
        import onnxruntime

        self.path = Path(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.intra_op_threads
        options.inter_op_num_threads = settings.inter_op_threads
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[settings.optimization]
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.spinning else "0")
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise FerError(f"{self.path.name} is not an ONNX model onnxruntime can load ({_first_line(error)})") \
                from error
        (source,), (target,) = self.session.get_inputs(), self.session.get_outputs()
        self._input, self._input_type = source.name, np.float16 if "float16" in source.type else np.float32
        self.input_shape = (None, *source.shape[1:])
        self.output_shape = (None, target.shape[-1])

    def predict_on_batch(self, images) -> np.ndarray:
        """(N, C) float32 probabilities for (N, 48, 48, 1) pixel values 0..255."""
        pixels = np.ascontiguousarray(images, dtype=self._input_type)
        return np.asarray(self.session.run(None, {self._input: pixels})[0], dtype=np.float32)

    def __call__(self, images) -> np.ndarray:
        return self.predict_on_batch(images)


class ServingModel(NamedTuple):
    """A model ready to serve: `model` has predict_on_batch/input_shape/output_shape."""

    model: object  # OnnxModel, or a keras.Model when falling back.
    card: ModelCard
    runtime: str  # "onnxruntime" or "keras".
    file: Path  # The file that runs: the .onnx, or the .keras on fallback.
    note: str | None = None  # Why Keras serves this model; set the first time only, to say once.


_sessions: dict[tuple[str, float], OnnxModel] = {}
_sessions_lock = threading.Lock()
_fallbacks_told: set[str] = set()


def onnx_session(path: str | Path) -> OnnxModel:
    """The process's one OnnxModel for this file (a new one when the file is replaced)."""
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime)
    with _sessions_lock:
        if key not in _sessions:
            _sessions[key] = OnnxModel(path)
        return _sessions[key]


def served_file(model_path: str | Path, card: ModelCard | None = None) -> Path | None:
    """The ONNX file that serves a .keras model: the card's chosen variant, else `<name>.onnx`; None if absent.

    Only files the card records as exports count: a model saved again (re-shipped, retrained) gets a
    new card, so an .onnx file left from its previous version is never served in its place.
    """
    model_path = Path(model_path)
    card = card or read_card(model_path)
    recorded = {export.file for export in card.exports if export.format == "onnx"}
    candidates = ([card.serving] if card.serving else []) + [model_path.with_suffix(".onnx").name]
    return next((model_path.with_name(name) for name in candidates
                 if name in recorded and model_path.with_name(name).exists()), None)


def load_for_serving(path: str | Path, *, export_missing: bool = True) -> ServingModel:
    """The model at `path` (.keras or .onnx) ready to serve, on onnxruntime when it has an ONNX file.

    A .keras model without one is exported first (`export_missing`, in a child process); if there is
    still none, it is served on Keras and `note` says why, the first time for that file in this process.
    Raises FerError when the model cannot be loaded at all.
    """
    path = Path(path)
    if path.suffix.lower() not in (".keras", ".onnx"):
        raise FerError(f"{path.name} is not a .keras or .onnx file; FER Studio serves models only in those formats "
                       "(an .h5 file can run code when it is opened)")
    if not path.exists():
        raise FerError(f"model file {path} does not exist; expected a .keras or .onnx file saved by FER Studio")
    card = read_card(path)
    if path.suffix == ".onnx":
        return ServingModel(onnx_session(path), card, "onnxruntime", path)
    forced_keras = os.environ.get(RUNTIME_VARIABLE, "").lower() == "keras"
    onnx = None if forced_keras else served_file(path, card)
    onnx_name = path.with_suffix(".onnx").name
    reason = (f"{RUNTIME_VARIABLE}=keras" if forced_keras else f"{onnx_name} does not exist"
              if not path.with_suffix(".onnx").exists() else f"its card does not record {onnx_name} as its export")
    if onnx is None and not forced_keras and export_missing:
        onnx, reason = _export_in_child(path)
        card = read_card(path)
    if onnx is not None:
        return ServingModel(onnx_session(onnx), card, "onnxruntime", onnx)
    from fer.model.files import load_model

    model, card = load_model(path)
    note = None
    if str(path.resolve()) not in _fallbacks_told:
        _fallbacks_told.add(str(path.resolve()))
        note = (f"{path.name} runs on Keras, which is slower to load and to run, because {reason}. "
                f"Export it with: python -m fer export {path.stem} --format onnx")
    return ServingModel(model, card, "keras", path, note)


def _export_in_child(path: Path) -> tuple[Path | None, str]:
    """Export `path` to ONNX in a child process (TensorFlow stays out of this one); (file or None, why not)."""
    command = [sys.executable, "-m", "fer", "export", str(path), "--format", "onnx"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, cwd=PROJECT_ROOT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"exporting it to ONNX failed ({_first_line(error)})"
    onnx = served_file(path)
    if done.returncode == 0 and onnx is not None:
        return onnx, ""
    message = next((line.removeprefix("error: ") for line in reversed(done.stderr.splitlines())
                    if line.startswith("error: ")), None)
    return None, f"exporting it to ONNX failed ({message or f'exit status {done.returncode}'})"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]

"""A run as other tools see it: TensorBoard event files in every run directory, and MLflow when asked.

TensorBoard: `tensorboard --logdir $FER_STUDIO_HOME/runs` lists every run (its `tensorboard/` folder):
per-epoch loss and accuracy (train and validation), the learning rate, and a few training faces.
MLflow (the optional requirements-tracking.txt): a run logs its parameters, per-epoch metrics, the model
card and the best model (MLflow's Keras flavour) when MLFLOW_TRACKING_URI is set or the Train page's
switch is on (then into a local store under FER_STUDIO_HOME/mlruns). A server that cannot be reached is
noted once and the run trains on without it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from fer.paths import home_dir

TENSORBOARD_FOLDER = "tensorboard"  # In the run directory.
SAMPLE_FACES = 8  # Training faces shown on TensorBoard's Images tab: one per class, then more.
PROBE_SECONDS = 3.0  # How long to wait for an MLflow server before training goes on without it.


def tensorboard_dir(run_path: str | Path) -> Path:
    return Path(run_path) / TENSORBOARD_FOLDER


def tensorboard_callbacks(run_path: str | Path, images: np.ndarray, labels: np.ndarray,
                          classes: tuple[str, ...]) -> list[keras.callbacks.Callback]:
    """Keras's TensorBoard callback (per-epoch metrics and learning rate) and a few sample faces,
    writing into the run's tensorboard/ folder; empty when TensorFlow's summary writer or TensorBoard's
    summary ops (the tensorboard package) are missing."""
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        print("note: TensorFlow or TensorBoard is not installed, so this run writes no TensorBoard files",
              file=sys.stderr)
        return []
    log_dir = tensorboard_dir(run_path)
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, update_freq="epoch",
                                        profile_batch=0),
            SampleFaces(log_dir / "samples", sample_faces(images, labels), classes)]


def sample_faces(images: np.ndarray, labels: np.ndarray, count: int = SAMPLE_FACES) -> np.ndarray:
    """Up to `count` row indices: the first face of each class in turn, then the next of each, ..."""
    order = []
    for rank in range(count):
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            if rank < len(rows) and len(order) < count:
                order.append(int(rows[rank]))
    return np.asarray((images[order] if len(order) else images[:0]))


class SampleFaces(keras.callbacks.Callback):
    """Writes a few training faces to TensorBoard once, when training begins."""

    def __init__(self, log_dir: Path, faces: np.ndarray, classes: tuple[str, ...]):
        super().__init__()
        self.log_dir, self.faces, self.classes = log_dir, faces, classes

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        if not len(self.faces):
            return
        faces = self.faces.reshape(len(self.faces), *self.faces.shape[1:3], -1).astype("float32") / 255.0
        writer = tf.summary.create_file_writer(str(self.log_dir))
        with writer.as_default():
            tf.summary.image("training faces", faces, step=0, max_outputs=len(faces))
        writer.close()


# --- MLflow -------------------------------------------------------------------------------------


def mlflow_uri(switch: bool, environ=None) -> str | None:
    """Where this run logs to MLflow: MLFLOW_TRACKING_URI when set; a local store under FER_STUDIO_HOME
    when only the switch is on; None (no MLflow) otherwise."""
    environ = os.environ if environ is None else environ
    if environ.get("MLFLOW_TRACKING_URI"):
        return environ["MLFLOW_TRACKING_URI"]
    return (home_dir() / "mlruns").resolve().as_uri() if switch else None


def mlflow_installed() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


class MlflowLogger(keras.callbacks.Callback):
    """Logs a run to MLflow through its own client (no process-wide active run): the parameters when
    training begins, each epoch's metrics, and, from `finish`, the model card and the model.

    Any MLflow failure is noted once through `note` and switches the logger off: training goes on."""

    def __init__(self, uri: str, run_name: str, params: dict, *, experiment: str = "FER Studio",
                 note: Callable[[str], None] | None = None):
        super().__init__()
        self.uri, self.run_name, self.run_params, self.experiment = uri, run_name, params, experiment
        self.note = note or (lambda message: print(f"note: {message}", file=sys.stderr, flush=True))
        self.client, self.run_id, self.off = None, None, False
        # MLflow retries a request 7 times with growing pauses (minutes in all) by default; a training
        # process would sit that long on every call to a server that has gone away.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        # MLflow 3.7+ refuses its file store unless asked; the client-only install has no database store,
        # and a folder of files is what a local run needs.
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

    @property
    def logging(self) -> bool:
        """Whether the run is being logged (started, and no failure yet)."""
        return not self.off and self.run_id is not None

    def on_train_begin(self, logs=None):
        if self.off or self.run_id is not None:
            return
        with self._guard("start the run"):
            import mlflow

            unreachable = _unreachable(self.uri)
            if unreachable:
                raise ConnectionError(unreachable)
            self.client = mlflow.MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
            self.run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id
            self.client.log_batch(self.run_id, params=[
                mlflow.entities.Param(key, _param_text(value)) for key, value in _flat(self.run_params).items()])

    def on_epoch_end(self, epoch, logs=None):
        if not self.logging:
            return
        with self._guard("log epoch metrics"):
            import mlflow

            stamp = int(time.time() * 1000)
            metrics = [mlflow.entities.Metric(key, float(value), stamp, epoch + 1)
                       for key, value in (logs or {}).items() if _is_number(value)]
            if metrics:
                self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, model_path: Path | None, card_path: Path | None, status: str = "FINISHED") -> None:
        """Log the model card and the model at `model_path` (MLflow's Keras flavour), and end the run."""
        if not self.logging:
            return
        with self._guard("log the model"):
            import mlflow.keras

            if card_path is not None and card_path.exists():
                self.client.log_artifact(self.run_id, str(card_path), "card")
            if model_path is not None and model_path.exists():
                model = keras.models.load_model(model_path, compile=False)
                with tempfile.TemporaryDirectory() as folder:
                    saved = Path(folder) / "model"
                    # Listing the requirements spares MLflow inferring them by loading the model in a subprocess.
                    mlflow.keras.save_model(model, str(saved), pip_requirements=[f"keras=={keras.__version__}"])
                    self.client.log_artifacts(self.run_id, str(saved), "model")
        if self.logging:
            with self._guard("end the run"):
                self.client.set_terminated(self.run_id, status)

    @contextlib.contextmanager
    def _guard(self, what: str):
        try:
            yield
        except Exception as error:  # Tracking is a bystander: any failure of it leaves training alone.
            self.off = True
            self.note(f"MLflow at {self.uri} could not {what} ({_short(error)}); this run is not logged "
                      "there any further, and training goes on")


def _unreachable(uri: str) -> str | None:
    """Why an http(s) MLflow server cannot be reached within PROBE_SECONDS; None when it answers (or is local)."""
    import socket

    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=PROBE_SECONDS):
            return None
    except OSError as error:
        return f"{parsed.hostname}:{port} did not answer: {(error.strerror or str(error) or 'timed out').lower()}"


def _flat(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _param_text(value) -> str:
    return str(value)[:6000]  # MLflow's limit on a parameter's value.


def _is_number(value) -> bool:
    try:
        return np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]

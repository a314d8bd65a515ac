"""fer.train.tracking: TensorBoard event files in every run, read back; MLflow against a local file store;
an MLflow server that cannot be reached is noted once and training goes on."""

import importlib.util
import socket
from pathlib import Path

import numpy as np
import pytest

from fer.data.datasets import dataset_from_arrays
from fer.data.synthetic import make_faces
from fer.train import tracking
from fer.train.config import TrainConfig
from fer.train.loop import train

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="MLflow is not installed (pip install -r requirements-tracking.txt)")


def events(folder: Path) -> dict[str, list]:
    """{tag: [(step, value or image count), ...]} from every event file under `folder`."""
    import tensorflow as tf

    found: dict[str, list] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, []).append((event.step, tensor.tolist() if tensor.ndim == 0
                                                        else len(tensor) - 2))  # An image summary: w, h, then PNGs.
    return found


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    """One tiny two-epoch run, logged to MLflow's local file store through MLFLOW_TRACKING_URI."""
    folder = tmp_path_factory.mktemp("tracked")
    store = (folder / "mlruns").as_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store)
        patch.setenv("FER_STUDIO_HOME", str(folder / "home"))
        dataset = dataset_from_arrays({"train": make_faces(6, seed=1), "validation": make_faces(2, seed=2)})
        result = train(dataset, TrainConfig(preset="tiny", epochs=2, batch_size=16), folder / "run",
                       evaluate_splits=False)
    return result, store


def test_every_run_writes_metrics_learning_rate_and_faces_for_tensorboard(tracked_run):
    result, _ = tracked_run
    board = tracking.tensorboard_dir(result.run_dir)
    train_events, validation_events = events(board / "train"), events(board / "validation")
    assert [step for step, _ in train_events["epoch_loss"]] == [0, 1]
    np.testing.assert_allclose([value for _, value in train_events["epoch_loss"]],
                               [epoch["loss"] for epoch in result.history], rtol=1e-4)
    assert [value for _, value in train_events["epoch_learning_rate"]] == pytest.approx([1e-3, 1e-3])
    assert [step for step, _ in validation_events["epoch_accuracy"]] == [0, 1]
    assert events(board / "samples")["training faces"] == [(0, tracking.SAMPLE_FACES)]


def test_sample_faces_take_each_class_in_turn():
    labels = np.array([0, 0, 1, 2, 2, 2])
    images = np.arange(6)[:, None, None] * np.ones((6, 2, 2))
    assert tracking.sample_faces(images, labels, count=4)[:, 0, 0].tolist() == [0, 2, 3, 1]


@needs_mlflow
def test_a_run_logs_params_metrics_card_and_model_to_mlflow(tracked_run, monkeypatch):
    import mlflow

    result, store = tracked_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # For the runs:/ address below.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    (logged,) = client.search_runs([client.get_experiment_by_name("FER Studio").experiment_id])
    assert logged.info.run_name == result.run_dir.name and logged.info.status == "FINISHED"
    assert logged.data.params["preset"] == "tiny" and logged.data.params["batch_size"] == "16"
    assert logged.data.params["placement.strategy"] == "one device"
    history = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [(point.step, round(point.value, 4)) for point in history] == [
        (epoch["epoch"], round(epoch["val_loss"], 4)) for epoch in result.history]
    run_id = logged.info.run_id
    artifacts = {item.path for folder in ("card", "model") for item in client.list_artifacts(run_id, folder)}
    assert {"card/best.json", "model/MLmodel", "model/data"} <= artifacts
    model = mlflow.keras.load_model(f"runs:/{logged.info.run_id}/model")  # MLflow's Keras 3 flavour reads it back.
    assert model.output_shape == (None, 7)


def test_mlflow_is_used_when_its_uri_is_set_or_the_switch_is_on(monkeypatch, fer_home):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.mlflow_uri(False) is None
    assert tracking.mlflow_uri(True) == (fer_home / "mlruns").resolve().as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.org:5000")
    assert tracking.mlflow_uri(False) == tracking.mlflow_uri(True) == "http://mlflow.example.org:5000"


@needs_mlflow
def test_an_unreachable_mlflow_server_is_noted_once_and_training_goes_on():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # Closed once the block ends: nobody answers there.
    notes = []
    logger = tracking.MlflowLogger(f"http://127.0.0.1:{port}", "a-run", {"preset": "tiny"}, note=notes.append)
    logger.on_train_begin()
    for epoch in range(3):
        logger.on_epoch_end(epoch, {"loss": 1.0})
    logger.finish(None, None)
    assert len(notes) == 1
    assert notes[0].startswith(f"MLflow at http://127.0.0.1:{port} could not start the run (127.0.0.1:{port} did not "
                               "answer: connection refused); this run is not logged there any further, and "
                               "training goes on")

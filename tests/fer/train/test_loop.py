"""fer.train.loop and fer.train.config: run directories, model cards, resume, graceful stop, callbacks, distribution."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from fer.data.datasets import dataset_from_arrays
from fer.errors import FerError
from fer.data.synthetic import make_faces
from fer.train.config import TrainConfig
from fer.train.loop import class_weights, train
from fer.train.run_dir import RunDir, RunState
from fer.paths import PROJECT_ROOT
from types import SimpleNamespace
from fer.train import loop

ROOT = PROJECT_ROOT


@pytest.fixture(scope="module")
def small_dataset():
    return dataset_from_arrays({"train": make_faces(12, seed=1), "validation": make_faces(4, seed=2)})


class EpochsSeen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch + 1)


def tiny(**changes):
    return TrainConfig(**{"preset": "tiny", "epochs": 2, "batch_size": 16, **changes})


def test_a_run_directory_holds_config_metrics_checkpoints_and_a_model_card(small_dataset, tmp_path):
    seen = EpochsSeen()
    result = train(small_dataset, tiny(), tmp_path / "run", callbacks=[seen])
    run = tmp_path / "run"
    assert seen.epochs == [1, 2]
    assert (run / "checkpoints" / "last.keras").exists()
    assert result.model_path == run / "best.keras" and result.model_path.exists()
    metrics = RunDir(run).read_metrics()
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_second"} <= set(metrics[0])
    assert RunDir(run).read_state().status == "finished" and RunDir(run).read_state().epochs_done == 2
    card = json.loads((run / "best.json").read_text())
    assert card["preset"] == "tiny" and card["classes"][0] == "angry"
    assert card["dataset"]["fingerprint"] == small_dataset.fingerprint
    assert set(card["metrics"]) == {"train", "validation"}
    assert card["metrics"]["validation"]["images"] == 28
    assert card["hyperparameters"]["batch_size"] == 16 and card["training_seconds"] > 0
    assert json.loads((run / "config.json").read_text())["config"]["preset"] == "tiny"


def test_resume_continues_from_the_last_checkpoint(small_dataset, tmp_path):
    train(small_dataset, tiny(epochs=1), tmp_path / "run")
    seen = EpochsSeen()
    train(small_dataset, tiny(epochs=3), tmp_path / "run", callbacks=[seen])
    assert seen.epochs == [2, 3]
    assert [m["epoch"] for m in RunDir(tmp_path / "run").read_metrics()] == [1, 2, 3]


def test_resume_refuses_a_different_preset(small_dataset, tmp_path):
    train(small_dataset, tiny(epochs=1), tmp_path / "run")
    with pytest.raises(FerError, match="holds a 'tiny' run; cannot resume it as 'seed'"):
        train(small_dataset, TrainConfig(preset="seed", epochs=2), tmp_path / "run")


class StopAfter(keras.callbacks.Callback):
    """Asks for a graceful stop the way the Train page does: by creating the STOP file."""

    def __init__(self, run_dir, batches):
        super().__init__()
        self.flag, self.batches = Path(run_dir) / "STOP", batches

    def on_train_batch_begin(self, batch, logs=None):
        if batch + 1 == self.batches:
            self.flag.touch()


def test_a_stop_ends_after_the_current_batch_and_keeps_a_checkpoint(small_dataset, tmp_path):
    run = tmp_path / "run"
    result = train(small_dataset, tiny(epochs=3), run, callbacks=[StopAfter(run, batches=2)])
    assert result.stopped
    state = RunDir(run).read_state()
    assert state.status == "stopped" and state.epochs_done == 0
    assert RunDir(run).read_metrics()[0]["partial"] is True
    assert (run / "checkpoints" / "last.keras").exists() and (run / "best.keras").exists()
    # Resuming re-runs the interrupted epoch, then finishes.
    seen = EpochsSeen()
    train(small_dataset, tiny(epochs=3), run, callbacks=[seen])
    assert seen.epochs == [1, 2, 3]
    assert RunDir(run).read_state().status == "finished"
    assert [m["partial"] for m in RunDir(run).read_metrics()] == [False, False, False]


def test_class_weights_are_inverse_frequency():
    weights = class_weights(np.array([0, 0, 0, 1]), num_classes=3)
    assert weights == {0: pytest.approx(4 / 9), 1: pytest.approx(4 / 3), 2: 0.0}  # n / (k · count)


def test_training_with_class_weights_and_cosine_schedule(small_dataset, tmp_path):
    config = tiny(class_weights=True, schedule="cosine", warmup_epochs=1, optimizer="sgd", learning_rate=0.05)
    train(small_dataset, config, tmp_path / "run", evaluate_splits=False)
    rates = [m["lr"] for m in RunDir(tmp_path / "run").read_metrics()]
    assert rates[0] == pytest.approx(0.05, rel=0.05)  # End of warm-up: the peak rate.
    assert rates[1] < 0.01  # End of the cosine decay.


def test_resuming_with_more_epochs_anneals_the_cosine_schedule_over_the_new_length(small_dataset, tmp_path):
    config = dict(schedule="cosine", optimizer="sgd", learning_rate=0.05)
    train(small_dataset, tiny(epochs=1, **config), tmp_path / "run", evaluate_splits=False)
    train(small_dataset, tiny(epochs=4, **config), tmp_path / "run", evaluate_splits=False)
    rates = [m["lr"] for m in RunDir(tmp_path / "run").read_metrics()]
    # Sized for 1 epoch the schedule would sit at its floor (0.0005) from epoch 1 on; resized for
    # 4 epochs it decays smoothly from where the step counter is.
    expected = [0.05 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * e / 4))) for e in (2, 3, 4)]
    assert rates[1:] == pytest.approx(expected, rel=0.02)


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    """The distributed path: MirroredStrategy over two logical CPU devices (needs a fresh process)."""
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from fer.data.datasets import dataset_from_arrays
        from fer.data.synthetic import make_faces
        from fer.train.config import TrainConfig
        from fer.train.loop import train
        from fer.train.run_dir import RunDir
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        dataset = dataset_from_arrays({{"train": make_faces(8, seed=1), "validation": make_faces(2, seed=2)}})
        result = train(dataset, TrainConfig(preset="tiny", epochs=1, batch_size=16), {str(tmp_path / 'run')!r},
                       strategy=strategy)
        print("replicas", strategy.num_replicas_in_sync, "status", RunDir(result.run_dir).read_state().status)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas 2 status finished" in done.stdout


class Run:
    def __init__(self):
        self.progress = []

    def write_progress(self, record):
        self.progress.append(record)


def test_the_first_eta_does_not_extrapolate_from_the_first_batch(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])
    run = Run()
    config = SimpleNamespace(batch_size=64, epochs=30, parent=None)
    recorder = loop.RunRecorder(run, RunState(), None, config, "val_accuracy", train_images=64 * 100)
    recorder.on_epoch_begin(0)
    now[0] = 20.0  # The first batch: 20 s of tracing and compiling, then 0.05 s of work.
    recorder.on_train_batch_end(0, {"loss": 2.0})
    assert run.progress[-1].images_per_second is None  # Unknown yet: no ETA rather than a wrong one.
    for batch in range(1, 41):  # Then 0.05 s a batch: 1,280 images a second.
        now[0] += 0.05
        recorder.on_train_batch_end(batch, {"loss": 1.9})
    assert run.progress[-1].images_per_second == pytest.approx(64 / 0.05)

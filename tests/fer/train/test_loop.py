"""The live training speed (fer/train/loop.py's RunRecorder): the first batch's start-up is left out."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fer.train import loop


class Run:
    def __init__(self):
        self.progress = []

    def write_progress(self, record):
        self.progress.append(record)


def test_the_first_eta_does_not_extrapolate_from_the_first_batch(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])
    run = Run()
    config = SimpleNamespace(batch_size=64, epochs=30)
    recorder = loop.RunRecorder(run, {"epochs_done": 0}, None, config, "val_accuracy", train_images=64 * 100)
    recorder.on_epoch_begin(0)
    now[0] = 20.0  # The first batch: 20 s of tracing and compiling, then 0.05 s of work.
    recorder.on_train_batch_end(0, {"loss": 2.0})
    assert run.progress[-1]["images_per_second"] is None  # Unknown yet: no ETA rather than a wrong one.
    for batch in range(1, 41):  # Then 0.05 s a batch: 1,280 images a second.
        now[0] += 0.05
        recorder.on_train_batch_end(batch, {"loss": 1.9})
    assert run.progress[-1]["images_per_second"] == pytest.approx(64 / 0.05)

"""fer.train.run_dir: a run directory's paths, JSON files, metrics, checkpoint and naming."""

from __future__ import annotations

import json
import time

import pytest

from fer.paths import runs_dir
from fer.train.run_dir import RunDir, read_json, write_json


def test_json_files_are_written_whole_and_read_as_objects(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"status": "running", "pid": 7})
    assert read_json(path) == {"status": "running", "pid": 7}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # No temporary file left behind.
    assert read_json(tmp_path / "missing.json") == {}
    path.write_text('{"status": "runn')  # Cut short.
    assert read_json(path) == {}
    path.write_text("[1, 2]")  # Not an object.
    assert read_json(path) == {}


def test_a_rerun_epoch_replaces_the_earlier_record_and_a_half_written_line_is_skipped(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics({"epoch": 1, "loss": 2.0, "partial": True})
    run.append_metrics({"epoch": 1, "loss": 1.9, "partial": False})
    run.append_metrics({"epoch": 2, "loss": 1.8, "partial": False})
    with open(run.metrics_file, "a") as metrics:
        metrics.write('{"epoch": 3, "lo')
    assert [(r["epoch"], r["loss"]) for r in run.read_metrics()] == [(1, 1.9), (2, 1.8)]
    assert RunDir(tmp_path / "nothing").read_metrics() == []


def test_resuming_drops_epochs_the_checkpoint_does_not_hold(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    for epoch, partial in ((1, True), (1, False), (2, False), (3, False)):
        run.append_metrics({"epoch": epoch, "partial": partial})
    with open(run.metrics_file, "a") as metrics:
        metrics.write('{"epoch": 4, "par')
    run.drop_epochs_after(2)
    assert [(r["epoch"], r["partial"]) for r in map(json.loads, run.metrics_file.read_text().splitlines())] == [
        (1, True), (1, False), (2, False)]


def test_new_run_directories_are_named_by_time_and_preset_under_the_studio_home(monkeypatch):
    assert RunDir.new("tiny").name.startswith(time.strftime("%Y%m%d-"))
    monkeypatch.setattr(time, "strftime", lambda pattern: "20261201-120000")  # Two runs in the same second.
    first = RunDir.new("tiny")
    assert first.path == runs_dir() / "20261201-120000-tiny" and not first.path.exists()
    first.path.mkdir(parents=True)
    assert RunDir.new("tiny").path == runs_dir() / "20261201-120000-tiny-2"


class SavedModel:
    """Stands in for a Keras model: `save` writes its bytes, or dies half-way like a killed process."""

    def __init__(self, content: bytes, dies: bool = False):
        self.content, self.dies = content, dies

    def save(self, path):
        with open(path, "wb") as file:
            file.write(self.content[: len(self.content) // 2] if self.dies else self.content)
        if self.dies:
            raise KeyboardInterrupt


def test_a_checkpoint_save_that_dies_half_way_leaves_the_previous_checkpoint_whole(tmp_path):
    run = RunDir(tmp_path / "run")
    run.save_checkpoint(SavedModel(b"epoch 1 weights"))
    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint(SavedModel(b"epoch 2 weights", dies=True))
    assert run.checkpoint.read_bytes() == b"epoch 1 weights"
    run.save_checkpoint(SavedModel(b"epoch 2 weights"))  # The next save replaces what the dead one left.
    assert run.checkpoint.read_bytes() == b"epoch 2 weights"
    assert [p.name for p in run.checkpoint.parent.iterdir()] == ["last.keras"]


def test_a_folder_is_a_run_once_it_has_a_job_spec_or_a_config(tmp_path):
    run = RunDir(tmp_path / "run")
    assert not run.is_run()
    run.write_job({"dataset": "demo", "created": 1234.0})
    assert run.is_run() and run.started() == 1234.0
    other = RunDir(tmp_path / "cli-run")
    other.write_config({"preset": "tiny"}, {"source": "demo"})
    assert other.is_run() and other.started() == other.config_file.stat().st_mtime
    assert other.read_config() == {"config": {"preset": "tiny"}, "dataset": {"source": "demo"}}


def test_stop_requests_and_state_updates(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    assert not run.stop_requested
    run.request_stop()
    assert run.stop_requested
    run.clear_stop()
    assert not run.stop_requested
    run.write_state({"status": "running", "epochs_done": 1})
    assert run.update_state(status="failed", error="boom") == {"status": "failed", "epochs_done": 1, "error": "boom"}
    assert run.read_state()["error"] == "boom"

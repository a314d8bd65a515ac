"""fer.train.run_dir: a run directory's paths, JSON files, metrics, checkpoint and naming."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fer.paths import runs_dir
from fer.train.run_dir import DatasetFacts, JobSpec, ProgressRecord, RunConfig, RunDir, RunState, read_json, write_json


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
    assert RunDir.create("tiny").name.startswith(time.strftime("%Y%m%d-"))
    monkeypatch.setattr(time, "strftime", lambda pattern: "20261201-120000")  # Two runs in the same second.
    first = RunDir.create("tiny")
    assert first.path == runs_dir() / "20261201-120000-tiny" and first.path.is_dir()
    assert RunDir.create("tiny").path == runs_dir() / "20261201-120000-tiny-2"


def test_runs_created_at_once_by_many_threads_never_share_a_folder(monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda pattern: "20261201-120000")  # All in the same second.
    start = threading.Barrier(8)

    def create(_):
        start.wait()
        return RunDir.create("tiny").path

    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(create, range(8)))
    assert len(set(folders)) == 8 and all(folder.is_dir() for folder in folders)


def test_runs_created_at_once_by_processes_never_share_a_folder(tmp_path):
    script = ("import sys, time; time.strftime = lambda pattern: '20261201-120000'; "
              "from fer.train.run_dir import RunDir; print(RunDir.create('tiny', sys.argv[1]).path)")
    children = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
                for _ in range(4)]
    folders = [child.communicate(timeout=60)[0].strip() for child in children]
    assert len(set(folders)) == 4 and sorted(p.name for p in tmp_path.iterdir()) == [
        "20261201-120000-tiny", "20261201-120000-tiny-2", "20261201-120000-tiny-3", "20261201-120000-tiny-4"]


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
    assert not run.is_run() and run.read_job() is None and run.read_config() is None
    run.write_job(JobSpec(register_as="mine", created=1234.0))
    assert run.is_run() and run.started() == 1234.0
    assert run.read_job() == JobSpec(register_as="mine", created=1234.0)
    other = RunDir(tmp_path / "cli-run")
    other.write_config(RunConfig({"preset": "tiny"}, DatasetFacts(source="demo")))
    assert other.is_run() and other.started() == other.config_file.stat().st_mtime
    assert other.read_config() == RunConfig({"preset": "tiny"}, DatasetFacts(source="demo"))
    assert json.loads(other.config_file.read_text())["dataset"]["source"] == "demo"


def test_a_job_of_an_older_version_keeps_its_config_in_job_json_alone(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.job_file.write_text(json.dumps({"dataset": "faces.zip", "config": {"preset": "tiny"}, "register_as": "old",
                                        "models_dir": "/m", "created": 5.0}))
    assert run.read_config() == RunConfig({"preset": "tiny"}, DatasetFacts(source="faces.zip"))
    assert run.read_job() == JobSpec(register_as="old", created=5.0)  # models_dir: the registry decides now.


def test_stop_requests_and_state_updates(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    assert not run.stop_requested
    run.request_stop()
    assert run.stop_requested
    run.clear_stop()
    assert not run.stop_requested
    assert run.read_state() == RunState()
    run.write_state(RunState(status="running", epochs_done=1))
    assert run.update_state(status="failed", error="boom") == RunState(status="failed", epochs_done=1, error="boom")
    assert run.read_state().error == "boom" and run.read_state().next_epoch == 2
    run.state_file.write_text('{"status": "running", "epochs_done": 3, "added_later": true}')  # A newer version's.
    assert run.read_state() == RunState(status="running", epochs_done=3)


def test_progress_is_read_as_written(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    assert run.read_progress() is None
    run.write_progress(ProgressRecord(epoch=2, epochs=3, batch=5, batches=10, images_per_second=250.0, time=7.0))
    assert run.read_progress() == ProgressRecord(epoch=2, epochs=3, batch=5, batches=10, images_per_second=250.0,
                                                 time=7.0)

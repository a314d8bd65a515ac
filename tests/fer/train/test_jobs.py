"""fer.train.jobs: background training jobs, their queue, run status, progress and the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from pathlib import Path

from helpers.dataset_files import write_faces
from helpers.stand_ins import TENSORFLOW_START_UP
from helpers.run_files import TINY, record, write_run
from fer.train import jobs
from fer.errors import FerError
from fer.model.augmentation import Augmentation
from fer.paths import PROJECT_ROOT, jobs_dir, runs_dir, user_models_dir
from fer.train.config import TrainConfig
from fer.train.run_dir import DatasetFacts, JobSpec, RunConfig, RunDir

ROOT = PROJECT_ROOT

# --- Helpers -------------------------------------------------------------------------------------


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


# --- A real job ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_job_trains_in_background_stops_after_a_batch_then_resumes_and_registers(tmp_path, capsys):
    faces = tmp_path / "faces"
    write_faces(faces / "train", per_class=24, seed=1)
    write_faces(faces / "validation", per_class=4, seed=2)
    models = user_models_dir()
    config = TrainConfig(preset="tiny", epochs=4, batch_size=4, seed=1)

    run_dir = jobs.start_job(str(faces), config, register_as="tiny-test")  # A real job process.

    assert jobs.active_runs() == [run_dir]
    first = wait_for(lambda: RunDir(run_dir).read_metrics(), 150, "the first epoch's metrics")
    assert jobs.run_summary(run_dir).status == "running"  # Metrics arrive while the run goes on.
    jobs.stop_job(run_dir)
    stopped = wait_for(lambda: (s := jobs.run_summary(run_dir)).status == "stopped" and s, 60, "the stop")
    assert 1 <= stopped.epochs_done < 4 and first[0]["epoch"] == 1
    assert (run_dir / "checkpoints" / "last.keras").exists()
    assert jobs.active_runs() == [] and not (models / "tiny-test.keras").exists()
    assert "epoch 1/4" in RunDir(run_dir).log_tail(200)
    assert RunDir(run_dir).log_tail(200).startswith(time.strftime("%Y-%m-%d"))  # The job's own first line.

    # The job body once more, in this process (a second TensorFlow start-up would double the test's time).
    assert jobs.run(run_dir) == 0
    done = jobs.run_summary(run_dir)
    assert done.status == "finished" and done.epochs_done == 4
    assert [r["epoch"] for r in RunDir(run_dir).read_metrics()] == [1, 2, 3, 4]
    assert "epoch 4/4" in capsys.readouterr().out
    assert done.registered_model == str(models / "tiny-test.keras")
    assert json.loads((models / "tiny-test.json").read_text())["name"] == "tiny-test"


def test_job_body_records_a_failure_with_its_message(tmp_path, capsys):
    run_dir = runs_dir() / "broken"
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text(json.dumps({"dataset": str(tmp_path / "missing"), "config": TINY.to_dict()}))

    assert jobs.run(run_dir) == 1

    summary = jobs.run_summary(run_dir)
    assert summary.status == "failed" and "does not exist" in summary.error
    assert "DatasetError" in capsys.readouterr().err  # The traceback goes to the job's log.


def test_job_stopped_while_starting_exits_before_training(kaggle_folder):
    run_dir = runs_dir() / "early-stop"
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text(json.dumps({"dataset": str(kaggle_folder), "config": TINY.to_dict()}))
    (run_dir / "STOP").touch()

    assert jobs.run(run_dir) == 0

    assert jobs.run_summary(run_dir).status == "stopped"
    assert not (run_dir / "STOP").exists() and not (run_dir / "metrics.jsonl").exists()


def test_the_job_log_starts_with_the_jobs_own_lines_without_tensorflows_start_up(tmp_path):
    run = RunDir(runs_dir() / "quiet")
    run.write_config(RunConfig(TINY.to_dict(), DatasetFacts(source=str(tmp_path / "missing"))))
    run.write_job(JobSpec())
    with open(run.log_file, "w") as log:  # As spawn_job starts a job, with the server's environment.
        finished = subprocess.run([sys.executable, "-m", "fer.train.jobs", str(run.path)], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=ROOT, timeout=300)
    text = run.log_file.read_text()
    assert finished.returncode == 1  # Keras loaded, then the dataset was not there.
    assert text.splitlines()[0].endswith(f"starting {run.name}"), text[:500]
    assert not [noise for noise in TENSORFLOW_START_UP if noise in text], text[:1000]
    assert "DatasetError" in text and "does not exist" in jobs.run_summary(run.path).error


# --- The queue: one job at a time by default, the rest wait ----------------------------------------


def test_a_second_start_while_one_runs_waits_in_the_queue_and_starts_when_the_first_ends(sleepers):
    first = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    second = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    assert first != second and jobs.active_runs() == [first] and len(sleepers) == 1
    waiting = jobs.run_summary(second)
    assert (waiting.status, waiting.queue_position, waiting.pending, waiting.active) == ("queued", 1, True, False)
    assert json.loads((jobs_dir() / "slot-1.lock").read_text())["pid"] == sleepers[0].pid

    sleepers[0].kill()  # The first job ends (here: dies without freeing its slot).
    sleepers[0].wait()
    assert jobs.active_runs(spawn=sleepers.spawn) == [second]  # The server's next look starts the second.
    assert jobs.run_summary(second).status == "starting" and len(sleepers) == 2


def test_more_slots_run_more_jobs_at_once(sleepers, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_MAX_JOBS", "2")
    monkeypatch.setenv("FER_STUDIO_MAX_JOBS_PER_USER", "2")
    runs = [jobs.start_job("demo", TINY, spawn=sleepers.spawn) for _ in range(3)]
    assert sorted(jobs.active_runs()) == sorted(runs[:2])
    assert jobs.run_summary(runs[2]).status == "queued"


def test_stale_slot_of_a_dead_job_is_freed(sleepers):
    jobs_dir().mkdir(parents=True)
    (jobs_dir() / "slot-1.lock").write_text(json.dumps({"pid": dead_pid(), "marker": "old",
                                                         "run": str(runs_dir() / "old")}))
    run_dir = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    assert jobs.active_runs() == [run_dir]


def test_slot_naming_a_reused_pid_is_stale():
    jobs_dir().mkdir(parents=True)
    # This test process is alive, but its command line does not name the run: the pid was reused.
    (jobs_dir() / "slot-1.lock").write_text(json.dumps({"pid": os.getpid(), "marker": "gone",
                                                         "run": str(runs_dir() / "gone")}))
    assert jobs.active_runs() == []
    assert not (jobs_dir() / "slot-1.lock").exists()


def test_a_run_outside_the_queue_is_listed_but_never_blocks_or_gets_killed(sleepers):
    # Like the shipped model's long `python -m fer train --out RUN_DIR` run: alive, not a job of ours.
    outside = runs_dir() / "fer2013-vgg40"
    cli = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(outside)])
    sleepers.append(cli)
    write_run(outside, state={"status": "running", "pid": cli.pid, "epochs_done": 3})

    assert jobs.run_summary(outside).status == "running"
    run_dir = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    assert jobs.active_runs() == [run_dir]
    assert cli.poll() is None


def test_a_job_process_that_cannot_start_fails_the_run_in_words_and_frees_the_slot():
    def broken(run_dir):
        raise OSError("no such interpreter")

    run_dir = jobs.start_job("demo", TINY, spawn=broken)
    summary = jobs.run_summary(run_dir)
    assert summary.status == "failed" and "could not start: no such interpreter" in summary.error
    assert not list(jobs_dir().glob("slot-*.lock")) and summary.resumable


# --- Start, stop, resume: validation -------------------------------------------------------------


def test_start_writes_the_job_spec_and_registers_under_the_run_name_by_default(sleepers, tmp_path):
    config = TrainConfig(preset="tiny", epochs=3, augmentation=Augmentation(rotation_degrees=5, zoom=0.1))
    run_dir = jobs.start_job("demo", config, spawn=sleepers.spawn)
    spec, run_config = RunDir(run_dir).read_job(), RunDir(run_dir).read_config()
    assert run_config.dataset.source == "demo" and spec.register_as == run_dir.name
    assert TrainConfig.from_dict(run_config.config) == config
    assert "config" not in json.loads((run_dir / "job.json").read_text())  # Stored once, in config.json.
    assert sleepers[0].args[-1] == str(run_dir)


def test_start_resolves_a_relative_dataset_path(sleepers, tmp_path, monkeypatch):
    (tmp_path / "faces").mkdir()
    monkeypatch.chdir(tmp_path)
    run_dir = jobs.start_job("faces", TINY, register=False, spawn=sleepers.spawn)
    assert RunDir(run_dir).read_config().dataset.source == str(tmp_path / "faces")
    assert RunDir(run_dir).read_job().register_as is None


@pytest.mark.parametrize("name, message", [("bad name!", "must start with"), ("taken", "taken by one of your"),
                                           ("fer2013", "taken by the shipped model")])
def test_start_rejects_a_bad_or_taken_model_name(sleepers, tmp_path, name, message):
    user_models_dir().mkdir(parents=True)
    (user_models_dir() / "taken.keras").write_bytes(b"")
    with pytest.raises(FerError, match=message):
        jobs.start_job("demo", TINY, register_as=name, spawn=sleepers.spawn)
    assert not sleepers


def test_stop_creates_the_stop_file_only_for_a_running_job(sleepers):
    run_dir = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    jobs.stop_job(run_dir)
    assert (run_dir / "STOP").exists()
    assert jobs.run_summary(run_dir).status == "stopping"
    idle = write_run(runs_dir() / "idle", state={"status": "stopped", "epochs_done": 1})
    with pytest.raises(FerError, match="not running"):
        jobs.stop_job(idle)


def test_resume_restarts_a_stopped_run_in_the_same_directory(sleepers):
    run_dir = write_run(runs_dir() / "paused", state={"status": "stopped", "epochs_done": 1},
                        spec={"dataset": "demo", "config": TINY.to_dict(), "register_as": "paused"})
    (run_dir / "STOP").touch()
    assert jobs.resume_job(run_dir, spawn=sleepers.spawn) == run_dir.resolve()
    spec = RunDir(run_dir).read_job()
    assert spec.register_as == "paused" and spec.resumed is not None
    assert not (run_dir / "STOP").exists()
    assert jobs.active_runs() == [run_dir.resolve()]
    with pytest.raises(FerError, match="still going"):
        jobs.resume_job(run_dir, spawn=sleepers.spawn)


def test_resume_a_cli_run_from_its_config(sleepers):
    run_dir = write_run(runs_dir() / "from-cli", state={"status": "failed", "error": "boom", "epochs_done": 1})
    jobs.resume_job(run_dir, spawn=sleepers.spawn)
    assert RunDir(run_dir).read_job().register_as is None


def test_resume_refuses_a_finished_run():
    run_dir = write_run(runs_dir() / "done", state={"status": "finished", "epochs_done": 2})
    with pytest.raises(FerError, match="finished all its epochs"):
        jobs.resume_job(run_dir)


# --- Status of a run -----------------------------------------------------------------------------


def test_summary_of_a_finished_run():
    run_dir = write_run(runs_dir() / "done",
                        state={"status": "finished", "epochs_done": 2, "best_val_accuracy": 0.3, "best_epoch": 2,
                               "training_seconds": 21.5, "registered_model": "/m/done.keras"},
                        records=[record(1), record(2), record(3, partial=True)],
                        spec={"dataset": "demo", "config": TINY.to_dict(), "created": 1000.0})
    summary = jobs.run_summary(run_dir)
    assert (summary.status, summary.epochs_done, summary.epochs) == ("finished", 2, 2)
    assert summary.final["epoch"] == 2  # The partial epoch is not the final record.
    assert summary.best_accuracy == 0.3 and summary.registered_model == "/m/done.keras"
    assert summary.started == 1000.0 and not summary.active and not summary.resumable


def test_a_running_state_whose_process_died_is_a_failure():
    run_dir = write_run(runs_dir() / "crashed", state={"status": "running", "pid": dead_pid(), "epochs_done": 1})
    summary = jobs.run_summary(run_dir)
    assert summary.status == "failed" and "ended unexpectedly" in summary.error
    assert summary.resumable


def test_a_job_that_died_before_training_is_a_failure():
    run_dir = write_run(runs_dir() / "early", spec={"dataset": "demo", "config": TINY.to_dict()})
    (run_dir / "config.json").unlink()
    assert jobs.run_summary(run_dir).status == "failed"
    assert "before training began" in jobs.run_summary(run_dir).error


def test_a_launched_job_is_starting_until_it_trains(sleepers):
    run_dir = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    assert jobs.run_summary(run_dir).status == "starting"
    (run_dir / "state.json").write_text(json.dumps({"status": "running", "pid": sleepers[0].pid}))
    assert jobs.run_summary(run_dir).status == "running"


def test_list_runs_newest_first_and_skips_other_folders():
    write_run(runs_dir() / "old", state={"status": "finished"}, spec={"created": 1.0, "dataset": "demo"})
    write_run(runs_dir() / "new", state={"status": "stopped"}, spec={"created": 2.0, "dataset": "demo"})
    (runs_dir() / "not-a-run").mkdir()
    assert [run.name for run in jobs.list_runs()] == ["new", "old"]


def test_list_runs_without_a_runs_folder_is_empty():
    assert jobs.list_runs() == [] and jobs.active_runs() == []


# --- Progress and ETA ----------------------------------------------------------------------------


def test_progress_eta_from_measured_epochs():
    run_dir = write_run(runs_dir() / "r", state={"status": "running", "epochs_done": 1},
                        records=[record(1, seconds=20.0)],
                        progress={"epoch": 2, "epochs": 3, "batch": 5, "batches": 10, "images_per_second": 100.0,
                                  "time": 5.0})
    progress = jobs.read_progress(run_dir)
    assert (progress.epoch, progress.batch, progress.batches) == (2, 5, 10)
    assert progress.fraction == pytest.approx(15 / 30)
    assert progress.eta_seconds == pytest.approx(15 / 10 * 20.0)
    assert progress.images_per_second == 100.0 and progress.updated == 5.0


def test_progress_eta_from_speed_before_the_first_epoch_ends():
    run_dir = write_run(runs_dir() / "r", state={"status": "running", "epochs_done": 0},
                        progress={"epoch": 1, "epochs": 2, "batch": 4, "batches": 10, "images_per_second": 16.0})
    progress = jobs.read_progress(run_dir)
    assert progress.eta_seconds == pytest.approx(16 * TINY.batch_size / 16.0)


def test_progress_of_an_epoch_that_just_ended_and_of_the_final_scoring():
    run_dir = write_run(runs_dir() / "r", state={"status": "running", "epochs_done": 1}, records=[record(1)],
                        progress={"epoch": 1, "epochs": 2, "batch": 10, "batches": 10})
    assert (jobs.read_progress(run_dir).epoch, jobs.read_progress(run_dir).batch) == (2, 0)
    (run_dir / "state.json").write_text(json.dumps({"status": "running", "epochs_done": 2}))
    finishing = jobs.read_progress(run_dir)
    assert finishing.fraction == 1.0 and finishing.eta_seconds == 0


def test_no_progress_before_the_job_writes_any():
    assert jobs.read_progress(write_run(runs_dir() / "r", state={})) is None


# --- Log -----------------------------------------------------------------------------------------


def test_log_tail_keeps_the_last_lines():
    run_dir = write_run(runs_dir() / "r", log="".join(f"line {i}\n" for i in range(100)))
    assert RunDir(run_dir).log_tail(3) == "line 97\nline 98\nline 99"
    assert RunDir(runs_dir() / "nothing").log_tail() == ""


def test_a_job_caught_mid_exec_with_an_empty_command_line_still_holds_its_lock(sleepers, monkeypatch):
    run_dir = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes",
                        lambda self: b"" if self.name == "cmdline" else real_read_bytes(self))  # Exec not done yet.
    assert jobs.active_runs() == [run_dir]
    assert (jobs_dir() / "slot-1.lock").exists()

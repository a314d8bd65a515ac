"""Training runs as background jobs, so a run outlives Streamlit reruns, page changes and reloads.

Each job is a subprocess (`python -m fer.train.jobs RUN_DIR`, same interpreter and environment as the
server), so a crash inside training cannot take the server down. A started run waits in the queue
(fer.train.job_queue) until a slot is free; the server and the job share nothing but files: the
queue's, and the run directory's (fer.train.run_dir): config.json says what to train, job.json what to
do with the result and whose run it is, log.txt gets the job's output, STOP asks it to stop, and
training writes the rest. A finished run registers its best model with fer.model.registry, where the
Evaluate and Predict pages find it.

Runs belong to a user: each user's runs live in fer.paths.runs_dir(user), and every function that
starts, stops, resumes or lists runs takes the user (None without accounts) and touches no one else's.

This module does not import Keras: the job process loads it only once its stderr is held (see
fer.quiet), and the Train page reads runs through it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fer.errors import FerError
from fer.model.registry import check_model_name
from fer.paths import PROJECT_ROOT, jobs_dir, runs_dir
from fer.quiet import load_keras_quietly
from fer.train import job_queue
from fer.train.job_queue import JobBusy, Spawner
from fer.train.run_dir import DatasetFacts, JobSpec, RunConfig, RunDir, RunState

if TYPE_CHECKING:
    from fer.train.config import TrainConfig

__all__ = ["JobBusy", "Progress", "RunSummary", "Spawner", "active_runs", "list_runs", "read_progress",
           "resume_job", "run_summary", "spawn_job", "start_job", "stop_job"]

ACTIVE = ("starting", "running", "stopping")  # Statuses of a run whose process is alive.


@dataclass(frozen=True)
class Progress:
    """Where a running job is: epoch and batch, speed, and the estimated time left."""

    epoch: int  # 1-based, the epoch being trained.
    epochs: int
    batch: int  # Batches done in this epoch.
    batches: int
    images_per_second: float | None
    fraction: float  # Of the whole run, 0..1.
    eta_seconds: float | None
    updated: float | None  # When the job last wrote progress (Unix time).


@dataclass(frozen=True)
class RunSummary:
    """One run directory as the history table and the live view show it."""

    name: str
    path: Path
    status: str  # queued, starting, running, stopping, stopped, finished or failed.
    error: str | None
    epochs_done: int
    epochs: int | None
    best_accuracy: float | None  # Best validation accuracy (train accuracy when there is no validation split).
    best_epoch: int | None
    final: dict  # The last complete epoch's metrics record ({} before the first epoch ends).
    training_seconds: float
    started: float  # Unix time.
    dataset: str
    config: TrainConfig | None = None  # None when the run's config is missing or no longer valid.
    registered_model: str | None = None
    pid: int | None = None
    queue_position: int | None = None  # 1: the next to start; None unless queued.

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def pending(self) -> bool:
        """Queued or running: the Train page follows it until it ends."""
        return self.status == "queued" or self.active

    @property
    def resumable(self) -> bool:
        """A stopped or failed run can go on from its last checkpoint (or start over if it has none)."""
        return self.status in ("stopped", "failed") and bool(self.dataset) and self.config is not None


# --- Starting, stopping, resuming ----------------------------------------------------------------


def start_job(
    dataset: str,
    config: TrainConfig,
    *,
    user: str | None = None,
    register: bool = True,
    register_as: str | None = None,
    spawn: Spawner | None = None,
    mlflow: bool = False,
) -> Path:
    """Queue training `config` on the dataset source `dataset` (a path or "demo") as a run of `user`'s.

    It starts at once when a slot is free (see fer.train.job_queue), else when one frees. When the run
    finishes, its best model is registered in `user`'s models folder as `register_as` (default: the run's
    name) unless `register` is false. Returns the run directory. Raises FerError when the model name is
    invalid or taken, JobBusy when the user already has the most runs waiting. `spawn` starts the job
    process (default spawn_job). `mlflow` also logs the run to MLflow (fer.train.tracking).
    """
    register_as = register_as if register else None
    if register_as is not None:
        check_model_name(register_as, user)
    if dataset != "demo" and Path(dataset).expanduser().exists():
        dataset = str(Path(dataset).expanduser().resolve())  # The job may run in another folder.
    with job_queue.guard():
        job_queue.check_room(user)
        run = RunDir(RunDir.create(config.preset, runs_dir(user)).path.resolve())  # Named inside the guard.
        if register:
            register_as = register_as or run.name
            check_model_name(register_as, user)
        run.write_config(RunConfig(config.to_dict(), DatasetFacts(source=dataset)))
        run.write_job(JobSpec(register_as=register_as, user=user, created=time.time(), mlflow=mlflow))
        _queue(run, user, spawn)
    return run.path


def resume_job(run: str | Path, *, user: str | None = None, spawn: Spawner | None = None) -> Path:
    """Queue a stopped or failed run of `user`'s again; it continues from its last checkpoint."""
    run = user_run(run, user)
    summary = run_summary(run.path)
    if summary.pending:
        raise FerError(f"run {run.name} is still going; there is nothing to resume")
    if summary.status == "finished":
        raise FerError(f"run {run.name} has finished all its epochs; start a new run to train more")
    if not summary.resumable:
        raise FerError(f"{run.name} does not say which dataset and config it ran; it cannot be resumed")
    spec = run.read_job() or JobSpec(user=user, created=run.started())  # A CLI run registers nothing.
    with job_queue.guard():
        job_queue.check_room(user)
        run.write_job(dataclasses.replace(spec, resumed=time.time()))
        _queue(run, user, spawn)
    return run.path


def stop_job(run: str | Path, *, user: str | None = None) -> None:
    """Stop a run of `user`'s: a queued one leaves the queue; a running one finishes the current batch,
    saves a checkpoint and exits."""
    run = user_run(run, user)
    with job_queue.guard():
        if job_queue.dequeue(run.path):
            run.update_state(status="stopped")
            return
    if not run_summary(run.path).active:
        raise FerError(f"run {run.name} is not running")
    run.request_stop()


def user_run(run: str | Path, user: str | None) -> RunDir:
    """`run` (a run's name, or its folder) as one of `user`'s runs; FerError for anything else."""
    root = runs_dir(user).resolve()
    name = Path(run).name
    candidate = RunDir(root / name)
    given = Path(run)
    if name in ("", ".", "..") or (given.is_absolute() and given.resolve() != candidate.path) \
            or not candidate.is_run():
        raise FerError(f"there is no run named '{name}' among your runs")
    return candidate


def _queue(run: RunDir, user: str | None, spawn: Spawner | None) -> None:
    """With the guard held: put `run` in the queue and start what the free slots allow."""
    run.clear_stop()
    run.update_state(status="queued", error=None, pid=None)
    job_queue.enqueue(run.path, user)
    job_queue.drain(spawn or spawn_job)


def spawn_job(run_dir: Path) -> subprocess.Popen:
    """Start the job process: this interpreter, this environment (FER_STUDIO_HOME, KERAS_BACKEND…)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(RunDir(run_dir).log_file, "a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "fer.train.jobs", str(run_dir)],
            cwd=PROJECT_ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the server's terminal does not kill a run mid-epoch.
        )


def active_runs(user: str | None = None, *, spawn: Spawner | None = None) -> list[Path]:
    """`user`'s runs whose jobs are running now. Looking also frees the slots of dead jobs and starts
    waiting runs in them (the server's share of keeping the queue moving)."""
    root = runs_dir(user).resolve()
    with job_queue.guard():
        job_queue.drain(spawn or spawn_job)
        holders = job_queue.holders().values()
    return [Path(holder.run) for holder in holders if holder.run and Path(holder.run).parent == root]


# --- Reading runs --------------------------------------------------------------------------------


def run_summary(run_dir: str | Path) -> RunSummary:
    """Status, metrics and config of one run directory, judged from its files, the slots and the queue."""
    job_queue.reap()
    run = RunDir(run_dir)
    spec, run_config, state = run.read_job(), run.read_config(), run.read_state()
    complete = [r for r in run.read_metrics() if not r.get("partial")]
    status, error, pid = _status(run, state, spec)
    config = _train_config(run_config)
    return RunSummary(
        name=run.name, path=run.path, status=status, error=error,
        epochs_done=state.epochs_done, epochs=config.epochs if config else None,
        best_accuracy=state.best_val_accuracy, best_epoch=state.best_epoch,
        final=complete[-1] if complete else {}, training_seconds=state.training_seconds,
        started=run.started(), dataset=run_config.dataset.source if run_config else "",
        config=config, registered_model=state.registered_model, pid=pid,
        queue_position=job_queue.position(run.path.resolve()) if status == "queued" else None,
    )


def _train_config(run_config: RunConfig | None) -> TrainConfig | None:
    """The run's TrainConfig; None when it has none or it no longer holds (a preset since removed)."""
    from fer.train.config import TrainConfig  # Here, not at the top: it loads Keras (see the module's docstring).

    if run_config is None:
        return None
    try:
        return TrainConfig.from_dict(run_config.config)
    except (FerError, TypeError, ValueError):
        return None


def _status(run: RunDir, state: RunState, spec: JobSpec | None) -> tuple[str, str | None, int | None]:
    stopping = run.stop_requested
    absolute = str(run.path.resolve())
    holder = next((h for h in map(job_queue.SlotHolder.read, jobs_dir().glob("slot-*.lock"))
                   if h is not None and h.run == absolute), None)
    if holder and job_queue.process_alive(holder.pid, marker=run.name):
        if stopping:
            return "stopping", None, holder.pid
        # The state of an earlier attempt was set to queued when this one was queued, so "running" is this one's.
        return ("running" if state.status == "running" else "starting"), None, holder.pid
    if state.status == "queued" and job_queue.position(Path(absolute)) is not None:
        return "queued", None, None
    if state.status == "running":  # A job without our slot (e.g. `python -m fer train --out`) or one that died.
        if job_queue.process_alive(state.pid, marker=run.name):
            return ("stopping" if stopping else "running"), None, state.pid
        return "failed", "the training process ended unexpectedly (killed or crashed); see the log", None
    if state.status in ("finished", "stopped", "failed"):
        return state.status, state.error, None
    if spec:  # A job that never got as far as training.
        return "failed", state.error or "the training process ended before training began; see the log", None
    return "stopped", None, None


def list_runs(user: str | None = None) -> list[RunSummary]:
    """Every run of `user`'s (fer.paths.runs_dir(user)), newest first."""
    root = runs_dir(user)
    if not root.exists():
        return []
    found = [run_summary(path) for path in root.iterdir() if RunDir(path).is_run()]
    return sorted(found, key=lambda run: run.started, reverse=True)


def read_progress(run_dir: str | Path, summary: RunSummary | None = None) -> Progress | None:
    """The live progress of a run, with an ETA; None before the job has written any."""
    run = RunDir(run_dir)
    summary = summary or run_summary(run.path)
    progress = run.read_progress()
    epochs = (progress.epochs if progress else 0) or summary.epochs or 0
    if progress is None or not epochs:
        return None
    batches = max(progress.batches, 1)
    epoch, batch = progress.epoch, progress.batch
    if epoch <= summary.epochs_done:  # The file still describes the epoch that just ended.
        epoch, batch = summary.epochs_done + 1, 0
    if summary.epochs_done >= epochs:  # All epochs trained; the job is scoring the best model.
        epoch, batch = epochs, batches
    epoch = min(epoch, epochs)
    done_batches = (epoch - 1) * batches + batch
    fraction = min(done_batches / (epochs * batches), 1.0)
    speed = progress.images_per_second
    return Progress(
        epoch=epoch, epochs=epochs, batch=batch, batches=batches, images_per_second=speed,
        fraction=fraction, eta_seconds=_eta(summary, epochs * batches - done_batches, batches, speed),
        updated=progress.time,
    )


def _eta(summary: RunSummary, batches_left: int, batches_per_epoch: int, images_per_second) -> float | None:
    durations = [r["seconds"] for r in RunDir(summary.path).read_metrics() if not r.get("partial") and r.get("seconds")]
    if durations:  # Whole epochs measured so far include validation, so they predict best.
        return batches_left / batches_per_epoch * sum(durations) / len(durations)
    if images_per_second and summary.config:
        return batches_left * summary.config.batch_size / images_per_second
    return None


# --- The job process -----------------------------------------------------------------------------


def supervise(run_dir: str | Path, *, command: list[str] | None = None, spawn: Spawner | None = None) -> int:
    """The job process: train in a child process (`command`, default `python -m fer.train.jobs --train
    RUN_DIR`) and, however the child ends, even killed for memory, say so in the run's state, free the
    slot and start the next waiting run (with `spawn`). Its exit status is the child's."""
    run = RunDir(Path(run_dir).resolve())
    command = command or [sys.executable, "-m", "fer.train.jobs", "--train", str(run.path)]
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # Its output goes where ours goes: the log.
        # SIGTERM (e.g. a system shutdown) stops like the Stop button: after the batch, with a checkpoint.
        signal.signal(signal.SIGTERM, lambda *_: run.request_stop())
        status = child.wait()
        if status < 0 and run.read_state().status not in ("stopped", "finished", "failed"):
            run.update_state(status="failed", error=f"the training process was killed ({signal.Signals(-status).name}"
                             ", perhaps for want of memory); Resume goes on from the last checkpoint")
        return status if status >= 0 else 1
    finally:
        with job_queue.guard():
            job_queue.release(os.getpid(), str(run.path))
            job_queue.drain(spawn or spawn_job)


def run(run_dir: str | Path) -> int:
    """The body of a job: open the dataset, train (resuming), register the best model; exit status."""
    directory = RunDir(Path(run_dir).resolve())
    spec = directory.read_job() or JobSpec()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  job {os.getpid()} {'resuming' if spec.resumed else 'starting'}"
          f" {directory.name}", flush=True)
    try:
        load_keras_quietly()
        return _train_and_register(directory, spec)
    except BaseException as error:  # Everything, so the page can show it; the traceback goes to the log.
        traceback.print_exc()
        if directory.read_state().status != "failed":
            directory.update_state(status="failed", error=f"{type(error).__name__}: {error}")
        return 1


def _train_and_register(directory: RunDir, spec: JobSpec) -> int:
    from fer.data.datasets import open_dataset
    from fer.train.config import TrainConfig
    from fer.train.loop import ConsoleProgress, train

    run_config = directory.read_config()
    if run_config is None:
        raise FerError(f"{directory.path} holds no config.json: there is nothing to train")
    config = TrainConfig.from_dict(run_config.config)
    dataset = open_dataset(run_config.dataset.source)
    print(f"dataset: {dataset.source} ({', '.join(f'{k} {len(v):,}' for k, v in dataset.splits.items())})")
    if directory.stop_requested:  # Stopped while the dataset was opening: train() would clear the flag.
        directory.clear_stop()
        directory.update_state(status="stopped")
        print("stopped before training began")
        return 0
    result = train(dataset, config, directory.path, callbacks=[ConsoleProgress(sys.stdout)], resume=True,
                   mlflow=spec.mlflow)
    directory.clear_stop()  # Handled; a later resume starts clean.
    if result.stopped:
        print(f"stopped after epoch {directory.read_state().epochs_done}; resume to go on")
    elif spec.register_as:
        path = _register(result.model_path, spec.register_as, spec.user)
        directory.update_state(registered_model=str(path))
        print(f"registered the best model as {path}")
    print("done")
    return 0


def _register(model_path: Path, name: str, user: str | None) -> Path:
    from fer.model.registry import register_model

    candidate, n = name, 2
    while True:  # A name taken since the run started gets a number: registering never overwrites.
        try:
            return register_model(model_path, candidate, user)
        except FerError:
            if n > 99:
                raise
            candidate, n = f"{name}-{n}", n + 1


def main(argv: list[str] | None = None) -> int:
    """`python -m fer.train.jobs RUN_DIR` (the job process, supervise) or `--train RUN_DIR` (its child, run)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--train":
        directory = RunDir(Path(argv[1]).resolve())
        signal.signal(signal.SIGTERM, lambda *_: directory.request_stop())  # As supervise does.
        return run(directory.path)
    if len(argv) != 1:
        print("usage: python -m fer.train.jobs RUN_DIR", file=sys.stderr)
        return 2
    return supervise(argv[0])


if __name__ == "__main__":
    sys.exit(main())

"""Training runs as background jobs, so a run outlives Streamlit reruns, page changes and reloads.

Each job is a subprocess (`python -m fer.train.jobs RUN_DIR`, same interpreter and environment as the
server), so a crash inside training cannot take the server down. The server and the job share
nothing but files:

    runs_dir()/job.lock   {"pid", "run"} of the job holding the slot (one job at a time by default;
                          FER_STUDIO_MAX_JOBS=N allows N, in job.lock, job.2.lock, ...)

and the run directory (fer.train.run_dir): job.json says what to run, log.txt gets the job's output,
STOP asks it to stop, and training writes the rest. A finished run copies its best model into models/
with fer.model.registry.register_model, where the Evaluate and Predict pages find it.

This module does not import Keras: the job process loads it only once its stderr is held (see
fer.quiet), and the Train page reads runs through it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fer.errors import FerError
from fer.model.registry import check_model_name
from fer.paths import PROJECT_ROOT, runs_dir
from fer.quiet import load_keras_quietly
from fer.train.run_dir import RunDir, read_json, write_json

if TYPE_CHECKING:
    from fer.train.config import TrainConfig

ACTIVE = ("starting", "running", "stopping")  # Statuses of a run whose process is alive.
SPAWN_GRACE_SECONDS = 60.0  # How long a lock may name the server (between lock and spawn) before it is stale.

# Jobs this server process started. Polling them reaps finished children, so they do not linger
# as zombies (a zombie still answers os.kill(pid, 0) and would look alive).
_CHILDREN: dict[int, subprocess.Popen] = {}


class JobBusy(FerError):
    """Raised when every job slot is taken by a running job."""


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
    status: str  # starting, running, stopping, stopped, finished or failed.
    error: str | None
    epochs_done: int
    epochs: int | None
    best_accuracy: float | None  # Best validation accuracy (train accuracy when there is no validation split).
    best_epoch: int | None
    final: dict  # The last complete epoch's metrics record ({} before the first epoch ends).
    training_seconds: float
    started: float  # Unix time.
    dataset: str
    config: dict = field(default_factory=dict)
    registered_model: str | None = None
    pid: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def resumable(self) -> bool:
        """A stopped or failed run can go on from its last checkpoint (or start over if it has none)."""
        return self.status in ("stopped", "failed") and bool(self.dataset) and bool(self.config)


# --- Starting, stopping, resuming ----------------------------------------------------------------


def start_job(
    dataset: str,
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    register: bool = True,
    register_as: str | None = None,
    user: str | None = None,
) -> Path:
    """Start training `config` on the dataset source `dataset` (a path or "demo") in the background.

    When the run finishes, its best model is registered in `user`'s models folder as `register_as` (default:
    the run's name) unless `register` is false. Returns the run directory. Raises JobBusy when a job
    already holds every slot, and FerError when the model name is invalid or already taken.
    """
    run_dir = Path(run_dir) if run_dir is not None else RunDir.new(config.preset).path
    register_as = (register_as or run_dir.name) if register else None
    if register_as is not None:
        check_model_name(register_as, user)
    if dataset != "demo" and Path(dataset).expanduser().exists():
        dataset = str(Path(dataset).expanduser().resolve())  # The job may run in another folder.
    spec = {"dataset": dataset, "config": config.to_dict(), "register_as": register_as,
            "user": user, "created": time.time()}
    return _launch(run_dir, spec)


def resume_job(run_dir: str | Path) -> Path:
    """Start a stopped or failed run again; it continues from its last checkpoint."""
    run_dir = Path(run_dir)
    summary = run_summary(run_dir)
    if summary.active:
        raise FerError(f"run {run_dir.name} is still going; there is nothing to resume")
    if summary.status == "finished":
        raise FerError(f"run {run_dir.name} has finished all its epochs; start a new run to train more")
    spec = RunDir(run_dir).read_job() or _spec_from_config(RunDir(run_dir))
    if not spec.get("dataset") or not spec.get("config"):
        raise FerError(f"{run_dir} does not say which dataset and config it ran; it cannot be resumed")
    return _launch(run_dir, {**spec, "resumed": time.time()})


def stop_job(run_dir: str | Path) -> None:
    """Ask a running job to stop: it finishes the current batch, saves a checkpoint and exits."""
    run = RunDir(run_dir)
    if not run_summary(run.path).active:
        raise FerError(f"run {run.name} is not running")
    run.request_stop()


def _launch(run_dir: Path, spec: dict) -> Path:
    run_dir = run_dir.resolve()  # Locks name runs by absolute path; the job compares its own against it.
    root = run_dir.parent
    with _slot(root) as lock:
        run = RunDir(run_dir)
        run.clear_stop()
        run.write_job(spec)
        child = _spawn(run_dir)
        _CHILDREN[child.pid] = child
        write_json(lock, {"pid": child.pid, "run": str(run_dir), "time": time.time()})
    return run_dir


def _spawn(run_dir: Path) -> subprocess.Popen:
    """Start the job process: this interpreter, this environment (FER_STUDIO_HOME, KERAS_BACKEND…)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(RunDir(run_dir).log_file, "a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "fer.train.jobs", str(run_dir)],
            cwd=PROJECT_ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the server's terminal does not kill a run mid-epoch.
        )


# --- The job lock --------------------------------------------------------------------------------


def max_jobs() -> int:
    """How many jobs may run at once: $FER_STUDIO_MAX_JOBS, default 1."""
    try:
        return max(1, int(os.environ.get("FER_STUDIO_MAX_JOBS", "1")))
    except ValueError:
        return 1


def _lock_paths(root: Path) -> list[Path]:
    return [root / ("job.lock" if slot == 0 else f"job.{slot + 1}.lock") for slot in range(max_jobs())]


@contextlib.contextmanager
def _slot(root: Path):
    """Take a free job slot: yields its lock file, already naming this process as a placeholder."""
    root.mkdir(parents=True, exist_ok=True)
    with _guard(root):
        busy = []
        for lock in _lock_paths(root):
            holder = _live_holder(lock)
            if holder is None:
                write_json(lock, {"pid": os.getpid(), "run": None, "time": time.time()})
                break
            busy.append(holder)
        else:
            names = ", ".join(Path(h["run"]).name if h.get("run") else "one being started" for h in busy)
            raise JobBusy(f"a training run is already going ({names}); stop it or wait for it to finish "
                          "before starting another")
        try:
            yield lock
        except BaseException:
            lock.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def _guard(root: Path):
    """Serialise lock checks across server sessions and processes (flock where the OS has it)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the O(ms) window between check and write is accepted.
        yield
        return
    with open(root / ".job.guard", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _live_holder(lock: Path) -> dict | None:
    """The lock's contents if it names a live job (or a launch in progress), else None (removing it)."""
    holder = read_json(lock)
    if not holder:
        lock.unlink(missing_ok=True)
        return None
    pid, run = holder.get("pid"), holder.get("run")
    if run is None:  # Written by a server that is spawning the job right now.
        alive = _process_alive(pid) and time.time() - holder.get("time", 0) < SPAWN_GRACE_SECONDS
    else:
        alive = _process_alive(pid, marker=Path(run).name)
    if not alive:
        lock.unlink(missing_ok=True)  # Stale: the job died without releasing it (killed, power loss).
        return None
    return holder


def active_runs(root: Path | None = None) -> list[Path]:
    """Run directories of the jobs running now (stale locks are cleared on the way)."""
    _reap()
    root = Path(root) if root is not None else runs_dir()
    if not root.exists():
        return []
    with _guard(root):
        holders = [_live_holder(lock) for lock in _lock_paths(root)]
    return [Path(h["run"]) for h in holders if h and h.get("run")]


def _release(run_dir: Path) -> None:
    """Called by the job as it exits: free the slot it holds."""
    for lock in _lock_paths(run_dir.parent):
        holder = read_json(lock)
        if holder.get("run") == str(run_dir) and holder.get("pid") == os.getpid():
            lock.unlink(missing_ok=True)


def _reap() -> None:
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            del _CHILDREN[pid]


def _process_alive(pid, marker: str | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, if `marker` is given, has it in its command line."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # Exists, owned by someone else.
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # No procfs (macOS): existence is all we can tell.
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    if state in ("Z", "X"):
        return False
    if not command:
        # Mid-exec: Popen returns once the child's exec has closed its descriptors, before the kernel
        # has set up the new command line, which reads empty until then. A CI run caught a just-started
        # job's lock being cleared as stale in that window.
        return True
    return marker is None or marker in command  # The marker rules out a reused pid.


# --- Reading runs --------------------------------------------------------------------------------


def run_summary(run_dir: str | Path) -> RunSummary:
    """Status, metrics and config of one run directory, judged from its files and the job lock."""
    _reap()
    run = RunDir(run_dir)
    spec, config_file, state = run.read_job(), run.read_config(), run.read_state()
    complete = [r for r in run.read_metrics() if not r.get("partial")]
    status, error, pid = _status(run, state, spec)
    config = config_file.get("config") or spec.get("config") or {}
    return RunSummary(
        name=run.name, path=run.path, status=status, error=error,
        epochs_done=int(state.get("epochs_done", 0)), epochs=config.get("epochs"),
        best_accuracy=state.get("best_val_accuracy"), best_epoch=state.get("best_epoch"),
        final=complete[-1] if complete else {}, training_seconds=float(state.get("training_seconds", 0.0)),
        started=run.started(), dataset=spec.get("dataset") or config_file.get("dataset", {}).get("source", ""),
        config=config, registered_model=state.get("registered_model"), pid=pid,
    )


def _status(run: RunDir, state: dict, spec: dict) -> tuple[str, str | None, int | None]:
    stopping = run.stop_requested
    absolute = str(run.path.resolve())
    holder = next((h for h in map(read_json, _lock_paths(run.path.parent)) if h.get("run") == absolute), None)
    if holder and _process_alive(holder.get("pid"), marker=run.name):
        pid = holder["pid"]
        if stopping:
            return "stopping", None, pid
        running = state.get("status") == "running" and state.get("pid") == pid
        return ("running" if running else "starting"), None, pid
    status, pid = state.get("status"), state.get("pid")
    if status == "running":  # A job without our lock (e.g. `python -m fer train --out`) or one that died.
        if _process_alive(pid, marker=run.name):
            return ("stopping" if stopping else "running"), None, pid
        return "failed", "the training process ended unexpectedly (killed or crashed); see the log", None
    if status in ("finished", "stopped", "failed"):
        return status, state.get("error"), None
    if spec:  # A job that never got as far as training.
        return "failed", state.get("error") or "the training process ended before training began; see the log", None
    return "stopped", None, None


def list_runs(root: Path | None = None) -> list[RunSummary]:
    """Every run directory under `root` (default runs_dir()), newest first."""
    root = Path(root) if root is not None else runs_dir()
    if not root.exists():
        return []
    found = [run_summary(path) for path in root.iterdir() if RunDir(path).is_run()]
    return sorted(found, key=lambda run: run.started, reverse=True)


def read_progress(run_dir: str | Path, summary: RunSummary | None = None) -> Progress | None:
    """The live progress of a run, with an ETA; None before the job has written any."""
    run = RunDir(run_dir)
    summary = summary or run_summary(run.path)
    progress = run.read_progress()
    epochs = int(progress.get("epochs") or summary.epochs or 0)
    if not progress or not epochs:
        return None
    batches = max(int(progress.get("batches") or 1), 1)
    epoch, batch = int(progress.get("epoch", 1)), int(progress.get("batch", 0))
    if epoch <= summary.epochs_done:  # The file still describes the epoch that just ended.
        epoch, batch = summary.epochs_done + 1, 0
    if summary.epochs_done >= epochs:  # All epochs trained; the job is scoring the best model.
        epoch, batch = epochs, batches
    epoch = min(epoch, epochs)
    done_batches = (epoch - 1) * batches + batch
    fraction = min(done_batches / (epochs * batches), 1.0)
    speed = progress.get("images_per_second")
    return Progress(
        epoch=epoch, epochs=epochs, batch=batch, batches=batches, images_per_second=speed,
        fraction=fraction, eta_seconds=_eta(summary, epochs * batches - done_batches, batches, speed),
        updated=progress.get("time"),
    )


def _eta(summary: RunSummary, batches_left: int, batches_per_epoch: int, images_per_second) -> float | None:
    durations = [r["seconds"] for r in RunDir(summary.path).read_metrics() if not r.get("partial") and r.get("seconds")]
    if durations:  # Whole epochs measured so far include validation, so they predict best.
        return batches_left / batches_per_epoch * sum(durations) / len(durations)
    batch_size = summary.config.get("batch_size")
    if images_per_second and batch_size:
        return batches_left * batch_size / images_per_second
    return None


# --- The job process -----------------------------------------------------------------------------


def run(run_dir: str | Path) -> int:
    """The body of a job: open the dataset, train (resuming), register the best model; exit status."""
    directory = RunDir(Path(run_dir).resolve())
    spec = directory.read_job()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  job {os.getpid()} {'resuming' if spec.get('resumed') else 'starting'}"
          f" {directory.name}")
    try:
        load_keras_quietly()
        from fer.data.datasets import open_dataset
        from fer.train.config import TrainConfig
        from fer.train.loop import ConsoleProgress, train

        config = TrainConfig.from_dict(spec["config"])
        dataset = open_dataset(spec["dataset"])
        print(f"dataset: {dataset.source} ({', '.join(f'{k} {len(v):,}' for k, v in dataset.splits.items())})")
        if directory.stop_requested:  # Stopped while the dataset was opening: train() would clear the flag.
            directory.clear_stop()
            directory.update_state(status="stopped")
            print("stopped before training began")
            return 0
        result = train(dataset, config, directory.path, callbacks=[ConsoleProgress(sys.stdout)], resume=True)
        directory.clear_stop()  # Handled; a later resume starts clean.
        if result.stopped:
            print(f"stopped after epoch {directory.read_state().get('epochs_done', 0)}; resume to go on")
        elif spec.get("register_as"):
            path = _register(result.model_path, spec["register_as"], spec.get("user"))
            directory.update_state(registered_model=str(path))
            print(f"registered the best model as {path}")
        print("done")
        return 0
    except BaseException as error:  # Everything, so the page can show it; the traceback goes to the log.
        traceback.print_exc()
        if directory.read_state().get("status") != "failed":
            directory.update_state(status="failed", error=f"{type(error).__name__}: {error}")
        return 1
    finally:
        _release(directory.path)


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


def _spec_from_config(run: RunDir) -> dict:
    """A job spec for a run started elsewhere (the CLI), from the config.json fer.train.loop wrote."""
    config_file = run.read_config()
    if not config_file:
        return {}
    return {"dataset": config_file.get("dataset", {}).get("source"), "config": config_file.get("config"),
            "register_as": None, "created": run.started()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m fer.train.jobs RUN_DIR", file=sys.stderr)
        return 2
    directory = RunDir(Path(argv[0]).resolve())
    # SIGTERM (e.g. a system shutdown) stops like the Stop button: after the batch, with a checkpoint.
    signal.signal(signal.SIGTERM, lambda *_: directory.request_stop())
    return run(directory.path)


if __name__ == "__main__":
    sys.exit(main())

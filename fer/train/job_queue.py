"""The job queue: a fixed number of slots for heavy work, shared by every user, and the runs waiting for one.

Training runs wait here in the order they were started, and a run starts when a slot is free and its
user runs fewer than max_jobs_per_user() jobs. Other heavy tasks (an out-of-fold audit, a TFLite
export) take a slot for their child process or are refused in words when none is free. All of it is
files under fer.paths.jobs_dir(), shared by the server and the job processes:

    .guard            flock'ed around every look and change, so two processes never take one slot
    slot-<n>.lock     the process holding slot n (SlotHolder: pid, run or task, user, a command-line marker)
    queue/<t>.json    a run waiting for a slot (QueueEntry), named so that names sort in arrival order

Whoever frees a slot starts the next run: a job process as it exits, a task as it ends, and the server
whenever it looks (every Train page rerun), which also clears the slots of processes that died without
freeing them (killed, power loss). So queued runs start without a browser open, and a crash costs at
most the wait until the next look.

No Keras here (the Train page and the job process read it before TensorFlow loads).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fer.errors import FerError
from fer.paths import PROJECT_ROOT, jobs_dir
from fer.train.reports import format_duration
from fer.train.run_dir import RunDir, read_json, write_json

Spawner = Callable[[Path], subprocess.Popen]  # Starts the job process for a run directory.

# A user may have this many runs waiting: the queue (and the disk their run folders take) stays bounded
# on a shared server, and three cover "try these settings next" without one user booking every slot.
MAX_WAITING_PER_USER = 3

# Child processes this process started. Polling them reaps finished ones, so they do not linger as
# zombies (a zombie still answers os.kill(pid, 0) and would look alive).
_CHILDREN: dict[int, subprocess.Popen] = {}


class JobBusy(FerError):
    """Raised when a task finds every slot taken, or a user's queue is full."""


def max_jobs() -> int:
    """How many jobs may run at once on this server: $FER_STUDIO_MAX_JOBS, default 1.

    One, because a training job already uses every core (TensorFlow sizes its thread pools to the
    machine): on a 2-core machine two jobs each run at about half speed, hold two datasets and two
    models in memory, and leave the server (the webcam, the pages) no core at all.
    """
    return _positive_setting("FER_STUDIO_MAX_JOBS", 1)


def max_jobs_per_user() -> int:
    """How many jobs one user may run at once: $FER_STUDIO_MAX_JOBS_PER_USER, default 1 (the rest wait)."""
    return _positive_setting("FER_STUDIO_MAX_JOBS_PER_USER", 1)


def _positive_setting(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, str(default))))
    except ValueError:
        return default


@dataclass(frozen=True)
class SlotHolder:
    """slot-<n>.lock: the process using a slot."""

    pid: int
    marker: str  # A string in the holder's command line: a reused pid lacks it.
    run: str | None = None  # A training job's run directory (absolute); None for a task.
    task: str | None = None  # What a task does, in words ("TFLite export").
    user: str | None = None
    time: float = 0.0  # When it took the slot.

    @classmethod
    def read(cls, path: Path) -> SlotHolder | None:
        values = read_json(path)
        try:
            holder = cls(**{key: values[key] for key in values if key in cls.__dataclass_fields__})
        except TypeError:  # Missing fields: half a file from another version, or not ours.
            return None
        return holder if isinstance(holder.pid, int) and isinstance(holder.marker, str) else None


@dataclass(frozen=True)
class QueueEntry:
    """queue/<t>.json: a run waiting for a slot."""

    run: str  # The run directory, absolute.
    user: str | None = None
    enqueued: float = 0.0
    file: Path | None = dataclasses.field(default=None, compare=False)  # Where it is stored (not stored in it).

    def to_dict(self) -> dict:
        return {"run": self.run, "user": self.user, "enqueued": self.enqueued}


# --- The guard: one process at a time looks at or changes the slots and the queue -----------------


@contextlib.contextmanager
def guard():
    """Hold the queue's lock (flock where the OS has it). Not re-entrant: take it once per change."""
    root = jobs_dir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the O(ms) window between check and write is accepted.
        yield
        return
    with open(root / ".guard", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- Slots (call with the guard held) ------------------------------------------------------------


def holders() -> dict[Path, SlotHolder]:
    """The live holder of each taken slot; slots of processes that died are freed on the way."""
    reap()
    live = {}
    for lock in sorted(jobs_dir().glob("slot-*.lock")):
        holder = SlotHolder.read(lock)
        if holder is None or not process_alive(holder.pid, holder.marker):
            lock.unlink(missing_ok=True)  # Stale: its process ended without freeing it (killed, power loss).
            continue
        live[lock] = holder
    return live


def _free_slot(taken: dict[Path, SlotHolder]) -> Path | None:
    """A free slot's lock path, or None when max_jobs() slots are taken."""
    if len(taken) >= max_jobs():
        return None
    return next(lock for number in range(1, len(taken) + 2)
                if (lock := jobs_dir() / f"slot-{number}.lock") not in taken)


def take(lock: Path, holder: SlotHolder) -> None:
    write_json(lock, dataclasses.asdict(holder))


def release(pid: int, run: str | None = None) -> None:
    """Free the slot `pid` holds (for `run`, when given)."""
    for lock in jobs_dir().glob("slot-*.lock"):
        holder = SlotHolder.read(lock)
        if holder is not None and holder.pid == pid and (run is None or holder.run == run):
            lock.unlink(missing_ok=True)


# --- The queue (call with the guard held) --------------------------------------------------------


def waiting() -> list[QueueEntry]:
    """The runs waiting for a slot, first come first."""
    entries = []
    for file in sorted((jobs_dir() / "queue").glob("*.json")):
        values = read_json(file)
        if isinstance(values.get("run"), str):
            entries.append(QueueEntry(values["run"], values.get("user"), values.get("enqueued", 0.0), file))
        else:
            file.unlink(missing_ok=True)
    return entries


def enqueue(run_dir: Path, user: str | None) -> QueueEntry:
    """Put a run at the end of the queue (once); JobBusy when its user already has MAX_WAITING_PER_USER waiting."""
    entries = waiting()
    if str(run_dir) in {entry.run for entry in entries}:
        return next(entry for entry in entries if entry.run == str(run_dir))
    check_room(user, entries)
    folder = jobs_dir() / "queue"
    folder.mkdir(parents=True, exist_ok=True)
    entry = QueueEntry(str(run_dir), user, time.time(), folder / f"{time.time_ns():020d}-{os.getpid()}.json")
    write_json(entry.file, entry.to_dict())
    return entry


def check_room(user: str | None, entries: list[QueueEntry] | None = None) -> None:
    """JobBusy when `user` already has MAX_WAITING_PER_USER runs waiting."""
    entries = waiting() if entries is None else entries
    if sum(entry.user == user for entry in entries) >= MAX_WAITING_PER_USER:
        raise JobBusy(f"you already have {MAX_WAITING_PER_USER} runs waiting for a free slot; stop one or wait "
                      "for them to start")


def dequeue(run_dir: Path) -> bool:
    """Take a run out of the queue; whether it was waiting."""
    found = [entry for entry in waiting() if entry.run == str(run_dir)]
    for entry in found:
        entry.file.unlink(missing_ok=True)
    return bool(found)


def position(run_dir: Path, entries: list[QueueEntry] | None = None) -> int | None:
    """A waiting run's place in the queue (1: next), or None when it is not waiting."""
    entries = waiting() if entries is None else entries
    return next((number for number, entry in enumerate(entries, start=1) if entry.run == str(run_dir)), None)


def drain(spawn: Spawner) -> list[Path]:
    """Start waiting runs while slots are free, skipping users at their limit; the runs started.

    A run whose process cannot be started is marked failed (with the reason) and the next one is tried.
    """
    taken = holders()
    running = collections.Counter(holder.user for holder in taken.values() if holder.run)
    started = []
    for entry in waiting():
        lock = _free_slot(taken)
        if lock is None:
            break
        run = RunDir(entry.run)
        if not run.path.is_dir():  # Deleted while it waited.
            entry.file.unlink(missing_ok=True)
            continue
        if running[entry.user] >= max_jobs_per_user():
            continue
        entry.file.unlink(missing_ok=True)
        try:
            child = spawn(run.path)
        except OSError as error:
            run.update_state(status="failed", error=f"the training process could not start: {error}")
            continue
        _CHILDREN[child.pid] = child
        taken[lock] = SlotHolder(pid=child.pid, marker=run.name, run=entry.run, user=entry.user, time=time.time())
        take(lock, taken[lock])
        running[entry.user] += 1
        started.append(run.path)
    return started


# --- Tasks: heavy work other than training, in a child process with a time limit -----------------


def run_task(command: list[str], *, what: str, seconds: float, user: str | None, log: Path,
             spawn: Spawner | None = None, poll: Callable[[], None] | None = None) -> int:
    """Run `command` in a child process holding a slot, for at most `seconds`; its exit status.

    Its stdout and stderr go to `log`. `poll` is called about twice a second while it runs (to show
    progress). Raises JobBusy when no slot is free, FerError when the time runs out (the child is killed).
    Queued runs start as soon as it ends.
    """
    with guard():
        lock = _free_slot(holders())
        if lock is None:
            raise JobBusy(f"every job slot is busy ({max_jobs()} running); try the {what} again when one ends")
        with open(log, "w") as output:
            child = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=subprocess.STDOUT)
        take(lock, SlotHolder(pid=child.pid, marker=command[-1], task=what, user=user, time=time.time()))
    try:
        deadline = time.monotonic() + seconds
        while child.poll() is None:
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                raise FerError(f"the {what} took longer than {format_duration(seconds)} and was stopped")
            if poll is not None:
                poll()
            time.sleep(0.5)
        return child.returncode
    finally:
        with guard():
            release(child.pid)
            drain(spawn or default_spawner())


def default_spawner() -> Spawner:
    from fer.train.jobs import spawn_job  # The job process is fer.train.jobs'; imported late, as it imports us.

    return spawn_job


# --- Processes ---------------------------------------------------------------------------------


def reap() -> None:
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            del _CHILDREN[pid]


def process_alive(pid, marker: str | None = None) -> bool:
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

"""A training run's directory: where its files are, and their one reader and writer.

A run directory holds everything about one training run, so any process (the CLI, the Train page, a
background job, a later session) can follow, stop or resume it:

    config.json              the TrainConfig and the dataset it ran on (the run's one copy of its config)
    metrics.jsonl            one line per epoch (loss, accuracy, val_*, lr, seconds, images/s)
    progress.json            the current epoch and batch, rewritten every second or so
    state.json               status, pid, epochs done, best validation accuracy, training seconds
    checkpoints/last.keras   model + optimizer after the latest epoch (resume starts here)
    best.keras / best.json   the best model by validation accuracy, with its model card
    start_hits.json          a fine-tuning run's start: which validation faces it read right (an epoch
                             must beat it by more than chance to replace it, fer.train.finetune)
    STOP                     created by whoever wants the run to stop after the current batch
    job.json                 a background job's spec: model name to register, user, start and resume times
    log.txt                  a background job's stdout and stderr

Runs live under fer.paths.runs_dir(user) (FER_STUDIO_HOME/runs without accounts), where the Train page
lists them, unless `python -m fer train --out` puts one elsewhere. JSON files are written atomically (a temporary file,
then a rename), so a reader never sees half a file. Each file is read into a typed record (RunConfig,
JobSpec, RunState, ProgressRecord) and written from one. No Keras import here: the job lock and the
Train page read runs without loading TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from fer.paths import runs_dir


def read_json(path: str | Path) -> dict:
    """The JSON object in `path`; {} when the file is missing, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json(path: str | Path, data: dict) -> None:
    """Write `data` atomically, so a reader never sees half a file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # One per process: writers never share one.
    temporary.write_text(json.dumps(data, default=str))
    os.replace(temporary, path)


def _known(record_type, values: dict) -> dict:
    """The keys of `values` that `record_type` has fields for (a file from an older or newer version may hold more)."""
    names = {item.name for item in dataclasses.fields(record_type)}
    return {key: value for key, value in values.items() if key in names}


@dataclass(frozen=True)
class DatasetFacts:
    """The dataset a run trains on: its source as given, and what training found there."""

    source: str = ""  # A path or "demo".
    fingerprint: str | None = None  # None until training has opened the dataset.
    format: str | None = None
    classes: tuple[str, ...] = ()
    counts: dict = field(default_factory=dict)  # Split → class → images.

    @classmethod
    def from_dict(cls, values: dict) -> DatasetFacts:
        values = _known(cls, values)
        return cls(**{**values, "classes": tuple(values.get("classes") or ())})


@dataclass(frozen=True)
class RunConfig:
    """config.json: the one stored copy of a run's TrainConfig (as a dict) and the dataset it trains on."""

    config: dict  # TrainConfig.to_dict(); fer.train.config.TrainConfig.from_dict reads it back.
    dataset: DatasetFacts

    def to_dict(self) -> dict:
        return {"config": self.config, "dataset": dataclasses.asdict(self.dataset)}


@dataclass(frozen=True)
class JobSpec:
    """job.json: what a background job does beyond training (the config is in config.json, not here)."""

    register_as: str | None = None  # The model name the best model is registered under; None: not registered.
    user: str | None = None  # Whose run it is (None without accounts); the model is registered in their space.
    created: float | None = None  # Unix time the job was started.
    resumed: float | None = None  # Unix time of the latest resume.
    mlflow: bool = False  # Also log the run to MLflow (fer.train.tracking).

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunState:
    """state.json: where a run stands, written by the training process (and by jobs as they end)."""

    status: str | None = None  # queued, running, stopped, finished or failed; None before anything ran.
    pid: int | None = None  # The training process while it runs.
    epochs_done: int = 0  # Complete epochs; the checkpoint holds them.
    best_val_accuracy: float | None = None  # Of the monitored split (train when there is no validation split).
    best_epoch: int | None = None
    training_seconds: float = 0.0
    error: str | None = None
    registered_model: str | None = None  # Path of the registered copy of the best model.
    # How it trains: fer.train.distribution.Placement as a dict ({} before training began).
    placement: dict = field(default_factory=dict)

    def replace(self, **changes) -> RunState:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def next_epoch(self) -> int:
        """The 1-based number of the epoch being trained (or about to be)."""
        return self.epochs_done + 1


@dataclass(frozen=True)
class ProgressRecord:
    """progress.json: the epoch and batch being trained, rewritten every second or so."""

    epoch: int = 1  # 1-based.
    epochs: int = 0
    batch: int = 0  # Batches done in this epoch.
    batches: int = 0
    images_per_second: float | None = None
    loss: float | None = None
    accuracy: float | None = None
    time: float | None = None  # Unix time of the write.

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunDir:
    """One run directory: its files' paths, and reading and writing them."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def create(cls, preset: str, root: str | Path | None = None) -> RunDir:
        """A new, empty run directory `<time>-<preset>` under `root` (default runs_dir()), created here.

        The folder is claimed with one mkdir, which only one process can win: two runs started in the
        same second, by threads or processes, get `<stem>` and `<stem>-2`, never one folder.
        """
        root = Path(root) if root is not None else runs_dir()
        root.mkdir(parents=True, exist_ok=True)
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}"
        for number in range(1, 10_000):
            candidate = root / (stem if number == 1 else f"{stem}-{number}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return cls(candidate)
        raise FileExistsError(f"no free run folder name for {stem} in {root}")

    @property
    def name(self) -> str:
        return self.path.name

    # --- Paths ---------------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def progress_file(self) -> Path:
        return self.path / "progress.json"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.keras"

    @property
    def best_model(self) -> Path:
        """best.keras; its card (best.json) is fer.model.cards' to read and write."""
        return self.path / "best.keras"

    @property
    def start_hits_file(self) -> Path:
        """Which validation faces a fine-tuning run's starting model read right (fer.train.finetune)."""
        return self.path / "start_hits.json"

    @property
    def stop_file(self) -> Path:
        return self.path / "STOP"

    @property
    def job_file(self) -> Path:
        return self.path / "job.json"

    @property
    def log_file(self) -> Path:
        return self.path / "log.txt"

    def is_run(self) -> bool:
        """Whether this folder holds a run (a job's spec or a training config), not just any folder."""
        return self.path.is_dir() and (self.job_file.exists() or self.config_file.exists())

    def started(self) -> float:
        """When the run began (Unix time): its job's creation time, else when config.json or the folder was written."""
        spec = self.read_job()
        return (spec and spec.created) or _mtime(self.config_file) or _mtime(self.path)

    # --- config.json, job.json, state.json, progress.json --------------------------------------

    def read_config(self) -> RunConfig | None:
        """The run's config and dataset; None when neither config.json nor an older job.json holds them."""
        values = read_json(self.config_file)
        if not values.get("config"):
            values = read_json(self.job_file)  # Jobs of older versions kept the config in job.json alone.
            values = {"config": values.get("config"), "dataset": {"source": values.get("dataset") or ""}}
        if not isinstance(values.get("config"), dict) or not isinstance(values.get("dataset"), dict):
            return None
        return RunConfig(values["config"], DatasetFacts.from_dict(values["dataset"]))

    def write_config(self, config: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config_file, config.to_dict())

    def read_job(self) -> JobSpec | None:
        """The background job's spec; None for a run no job started (`python -m fer train`)."""
        values = read_json(self.job_file)
        return JobSpec(**_known(JobSpec, values)) if values else None

    def write_job(self, spec: JobSpec) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.job_file, spec.to_dict())

    def read_state(self) -> RunState:
        values = read_json(self.state_file)
        try:
            return RunState(**_known(RunState, values))
        except TypeError:
            return RunState()

    def write_state(self, state: RunState) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.state_file, state.to_dict())

    def update_state(self, **changes) -> RunState:
        """Change fields of state.json (for a process other than the one training); the new state."""
        state = self.read_state().replace(**changes)
        self.write_state(state)
        return state

    def read_start_hits(self) -> list[bool] | None:
        """The starting model's hits on the validation faces, or None when the run has none on record."""
        hits = read_json(self.start_hits_file).get("hits")
        return [bool(hit) for hit in hits] if isinstance(hits, list) else None

    def start_accuracy(self) -> float | None:
        """A fine-tuning run's starting model's accuracy on the validation faces (None when not on record)."""
        hits = self.read_start_hits()
        return sum(hits) / len(hits) if hits else None

    def write_start_hits(self, hits) -> None:
        write_json(self.start_hits_file, {"hits": [bool(hit) for hit in hits]})

    def read_progress(self) -> ProgressRecord | None:
        values = read_json(self.progress_file)
        return ProgressRecord(**_known(ProgressRecord, values)) if values else None

    def write_progress(self, progress: ProgressRecord) -> None:
        write_json(self.progress_file, progress.to_dict())

    # --- metrics.jsonl -------------------------------------------------------------------------

    def read_metrics(self) -> list[dict]:
        """The per-epoch records; a re-run epoch (after a stop) replaces the earlier record."""
        by_epoch: dict[int, dict] = {}
        for _, record in self._metric_lines():
            by_epoch[record["epoch"]] = record
        return [by_epoch[epoch] for epoch in sorted(by_epoch)]

    def append_metrics(self, record: dict) -> None:
        with open(self.metrics_file, "a") as metrics:
            metrics.write(json.dumps(record) + "\n")

    def clear_metrics(self) -> None:
        self.metrics_file.unlink(missing_ok=True)

    def drop_epochs_after(self, epochs_done: int) -> None:
        """Before resuming: drop complete records of epochs the checkpoint does not hold (a crash between writing
        an epoch's metrics and its checkpoint), and a line cut short by a crash, since those epochs run again."""
        if not self.metrics_file.exists():
            return
        kept = [line + "\n" for line, record in self._metric_lines()
                if record.get("partial") or record.get("epoch", 0) <= epochs_done]
        temporary = self.metrics_file.with_name(f".{self.metrics_file.name}.tmp")
        temporary.write_text("".join(kept))
        os.replace(temporary, self.metrics_file)

    def _metric_lines(self) -> list[tuple[str, dict]]:
        """(line, record) for each whole line of metrics.jsonl."""
        try:
            lines = self.metrics_file.read_text().splitlines()
        except OSError:
            return []
        records = []
        for line in lines:
            try:
                records.append((line, json.loads(line)))
            except ValueError:
                continue  # A line being written right now, or cut short by a crash.
        return records

    # --- STOP, the checkpoint, the log ---------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self.stop_file.exists()

    def request_stop(self) -> None:
        """Ask the training process to stop after its current batch (fer.train.loop.StopFlag)."""
        self.stop_file.touch()

    def clear_stop(self) -> None:
        self.stop_file.unlink(missing_ok=True)

    def save_checkpoint(self, model) -> None:
        """Save a Keras `model` with its optimizer as checkpoints/last.keras, atomically: a crash mid-save leaves
        the previous checkpoint whole."""
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        # One temporary name per checkpoint, so the next save overwrites what a killed one left behind.
        temporary = self.checkpoint.with_name(f".{self.checkpoint.stem}.tmp.keras")  # Keras insists on .keras.
        model.save(temporary)
        os.replace(temporary, self.checkpoint)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the job's log ('' when there is none)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0

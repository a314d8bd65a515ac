"""A training run's directory: where its files are, and their one reader and writer.

A run directory holds everything about one training run, so any process (the CLI, the Train page, a
background job, a later session) can follow, stop or resume it:

    config.json              the TrainConfig and the dataset it ran on
    metrics.jsonl            one line per epoch (loss, accuracy, val_*, lr, seconds, images/s)
    progress.json            the current epoch and batch, rewritten every second or so
    state.json               status, pid, epochs done, best validation accuracy, training seconds
    checkpoints/last.keras   model + optimizer after the latest epoch (resume starts here)
    best.keras / best.json   the best model by validation accuracy, with its model card
    STOP                     created by whoever wants the run to stop after the current batch
    job.json                 a background job's spec: dataset source, TrainConfig, model name to register
    log.txt                  a background job's stdout and stderr

Runs live under fer.paths.runs_dir() (FER_STUDIO_HOME/runs), where the Train page lists them, unless
`python -m fer train --out` puts one elsewhere. JSON files are written atomically (a temporary file,
then a rename), so a reader never sees half a file. No Keras import here: the job lock and the
Train page read runs without loading TensorFlow.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RunDir:
    """One run directory: its files' paths, and reading and writing them."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def new(cls, preset: str, root: str | Path | None = None) -> RunDir:
        """A fresh run directory `<time>-<preset>` under `root` (default runs_dir()); not created yet."""
        root = Path(root) if root is not None else runs_dir()
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}"
        candidate, n = root / stem, 2
        while candidate.exists():
            candidate, n = root / f"{stem}-{n}", n + 1
        return cls(candidate)

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
        return self.read_job().get("created") or _mtime(self.config_file) or _mtime(self.path)

    # --- config.json, job.json, state.json, progress.json --------------------------------------

    def read_config(self) -> dict:
        """{"config": TrainConfig as a dict, "dataset": {"source", "fingerprint", ...}}; {} before training began."""
        return read_json(self.config_file)

    def write_config(self, config: dict, dataset: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config_file, {"config": config, "dataset": dataset})

    def read_job(self) -> dict:
        return read_json(self.job_file)

    def write_job(self, spec: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.job_file, spec)

    def read_state(self) -> dict:
        return read_json(self.state_file)

    def write_state(self, state: dict) -> None:
        write_json(self.state_file, state)

    def update_state(self, **changes) -> dict:
        """Merge `changes` into state.json (for a process other than the one training); the new state."""
        state = {**self.read_state(), **changes}
        self.write_state(state)
        return state

    def read_progress(self) -> dict:
        return read_json(self.progress_file)

    def write_progress(self, progress: dict) -> None:
        write_json(self.progress_file, progress)

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

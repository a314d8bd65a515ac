"""Run directories written by hand, as fer.train.loop and fer.train.jobs leave them (for job and page tests).

Written file by file on purpose: the tests check fer.train.run_dir reads what training writes."""

from __future__ import annotations

import json
from pathlib import Path

from fer.train.config import TrainConfig

TINY = TrainConfig(preset="tiny", epochs=2, batch_size=8)


def write_run(run_dir: Path, *, state=None, records=(), progress=None, spec=None, config=TINY, log=None) -> Path:
    """A run directory written by hand, as fer.train.loop and fer.train.jobs would leave it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"config": config.to_dict(), "dataset": {"source": "demo"}}))
    if spec is not None:
        (run_dir / "job.json").write_text(json.dumps(spec))
    if state is not None:
        (run_dir / "state.json").write_text(json.dumps(state))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if progress is not None:
        (run_dir / "progress.json").write_text(json.dumps(progress))
    if log is not None:
        (run_dir / "log.txt").write_text(log)
    return run_dir


def record(epoch, *, partial=False, seconds=10.0, **metrics):
    return {"epoch": epoch, "loss": 2.0 - epoch / 10, "accuracy": 0.2 + epoch / 20, "val_loss": 2.1 - epoch / 10,
            "val_accuracy": 0.15 + epoch / 20, "lr": 1e-3, "seconds": seconds, "images_per_second": 300.0,
            "partial": partial, **metrics}

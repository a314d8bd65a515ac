"""A training process killed without warning (SIGKILL) resumes from its last complete epoch.

These run `python -m fer train` as users do and kill it for real, in the middle of an epoch and in
the middle of writing the checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import fer.model.augmentation  # noqa: F401  (registers the layer keras.models.load_model meets in a checkpoint)
from fer.labels import CLASSES
from fer.train.run_dir import RunDir
from fer.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
EPOCHS = 3
IMAGES = 1400  # 1,120 to train on, 280 to validate (the 20% split of class folders).
BATCH_SIZE = 2
STEPS_PER_EPOCH = 1120 // BATCH_SIZE


@pytest.fixture
def noise_faces(tmp_path) -> Path:
    """Class folders of random 48×48 images: quick to write; at batch size 2 an epoch lasts seconds."""
    rng = np.random.default_rng(0)
    root = tmp_path / "noise"
    for index in range(IMAGES):
        folder = root / CLASSES[index % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(folder / f"{index:04d}.png")
    return root


def train_command(dataset: Path, run: Path) -> list[str]:
    return [sys.executable, "-m", "fer", "train", "--dataset", str(dataset), "--preset", "tiny",
            "--epochs", str(EPOCHS), "--batch-size", str(BATCH_SIZE), "--out", str(run)]


def wait_for(condition, child: subprocess.Popen, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, f"training ended (exit {child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s"
        time.sleep(0.05)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def complete_epochs_in_raw_file(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record["epoch"] for record in map(json.loads, lines) if not record["partial"]]


def resume_to_the_end(dataset: Path, run: Path) -> str:
    finished = subprocess.run(train_command(dataset, run), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return finished.stdout


def check_the_finished_run(run: Path, before_the_kill: list[dict]) -> None:
    assert [record["epoch"] for record in RunDir(run).read_metrics()] == list(range(1, EPOCHS + 1))
    assert Counter(complete_epochs_in_raw_file(run)) == Counter(range(1, EPOCHS + 1))  # No gap, no duplicate.
    assert RunDir(run).read_metrics()[:len(before_the_kill)] == before_the_kill  # Kept, not trained again.
    state = RunDir(run).read_state()
    assert state.status == "finished" and state.epochs_done == EPOCHS
    assert keras.models.load_model(run / "checkpoints" / "last.keras").optimizer.iterations.numpy() > 0
    assert json.loads((run / "best.json").read_text())["metrics"]["validation"]["images"] == 280
    assert not [path.name for path in (run / "checkpoints").iterdir() if path.name != "last.keras"]
    assert not list(run.glob(".*.tmp.keras"))  # A killed save's half file was replaced by a whole one.


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_from_its_last_complete_epoch(noise_faces, tmp_path):
    run = tmp_path / "run"
    child = subprocess.Popen(train_command(noise_faces, run), stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / "stderr.txt", "w"), cwd=ROOT)
    try:
        # Killed once an epoch after the first is under way (how far it got depends on the machine's speed).
        wait_for(lambda: read_json(run / "progress.json").get("epoch", 0) >= 2, child, "epoch 2 under way")
    finally:
        kill(child)
    assert child.returncode == -signal.SIGKILL
    state = RunDir(run).read_state()
    done = state.epochs_done
    assert 1 <= done < EPOCHS and state.status == "running"  # Killed, not finished, and nothing said so.
    # Complete epochs on disk; one more when the kill fell between an epoch's metrics line and its checkpoint.
    assert complete_epochs_in_raw_file(run) in (list(range(1, done + 1)), list(range(1, done + 2)))
    before_the_kill = RunDir(run).read_metrics()[:done]

    out = resume_to_the_end(noise_faces, run)
    assert f"epoch {done}/{EPOCHS}" not in out  # It went on from the last complete epoch.
    assert all(f"epoch {epoch}/{EPOCHS}" in out for epoch in range(done + 1, EPOCHS + 1))
    check_the_finished_run(run, before_the_kill)


# A child that trains through the real CLI with Keras's save stalled in the middle of one file: it writes half
# the file, says so, and waits to be killed. STALL picks the file: epoch 2's checkpoint, or the first best model
# (end of epoch 1). A crash at that moment must leave the previous file whole, or none, never half of one.
SLOW_SAVE = textwrap.dedent("""
    import os
    import sys
    import time
    from pathlib import Path

    import keras

    from fer.cli import main

    RUN = Path(sys.argv[-1])
    real_save = keras.Model.save

    def stalls(path):
        if os.environ["STALL"] == "checkpoint":
            return path.parent.name == "checkpoints" and len(read_epochs()) >= 2
        return path.parent == RUN and "best" in path.name

    def slow_save(self, filepath, *args, **kwargs):
        if stalls(Path(filepath)):
            real_save(self, filepath, *args, **kwargs)
            whole = Path(filepath).read_bytes()
            Path(filepath).write_bytes(whole[: len(whole) // 2])
            (RUN / "SAVING").touch()
            time.sleep(600)
        return real_save(self, filepath, *args, **kwargs)

    def read_epochs():
        metrics = RUN / "metrics.jsonl"
        return metrics.read_text().splitlines() if metrics.exists() else []

    keras.Model.save = slow_save
    sys.exit(main(sys.argv[1:]))
""")


def kill_while_saving(stall: str, dataset: Path, run: Path) -> None:
    """Train with the save of `stall` ('checkpoint' or 'best') stalled half-written, and SIGKILL it there."""
    command = train_command(dataset, run)
    child = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, *command[3:]], stdout=subprocess.DEVNULL,
                             stderr=open(run.parent / "stderr.txt", "w"), cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "STALL": stall})
    try:
        wait_for((run / "SAVING").exists, child, f"the stalled {stall} save")
    finally:
        kill(child)
    (run / "SAVING").unlink()


@pytest.mark.slow
def test_a_run_killed_while_writing_its_checkpoint_keeps_the_previous_one(noise_faces, tmp_path):
    run = tmp_path / "run"
    kill_while_saving("checkpoint", noise_faces, run)
    # Epoch 2's metrics line was written before the kill, but its checkpoint was not: epoch 1's is still whole.
    assert complete_epochs_in_raw_file(run) == [1, 2]
    checkpoint = keras.models.load_model(run / "checkpoints" / "last.keras")
    assert int(checkpoint.optimizer.iterations.numpy()) == STEPS_PER_EPOCH
    before_the_kill = RunDir(run).read_metrics()[:1]

    out = resume_to_the_end(noise_faces, run)
    assert "epoch 1/3" not in out and "epoch 2/3" in out and "epoch 3/3" in out
    check_the_finished_run(run, before_the_kill)


@pytest.mark.slow
def test_a_run_killed_while_writing_its_first_best_model_leaves_none_not_half_of_one(noise_faces, tmp_path):
    run = tmp_path / "run"
    kill_while_saving("best", noise_faces, run)
    assert not (run / "best.keras").exists() and not (run / "best.json").exists()
    assert not (run / "checkpoints" / "last.keras").exists()  # Saved after the best model: not reached.

    out = resume_to_the_end(noise_faces, run)  # Nothing to resume from: it starts again and finishes.
    assert "epoch 1/3" in out and "epoch 3/3" in out
    check_the_finished_run(run, [])

"""Heavy work the server hands to a child process: the out-of-fold label audit and the TFLite export.

Each runs as `python -m fer.train.tasks …` or `python -m fer export …` in a child holding a job slot
(fer.train.job_queue.run_task), with a time limit, so Keras training and TensorFlow's converter stay
out of the server process and count against the same limit as training runs. When every slot is busy
the task is refused in words (JobBusy) rather than queued: the page that asked waits for its answer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from fer.errors import FerError
from fer.train.job_queue import run_task
from fer.train.run_dir import read_json, write_json

# Time limits: bounds that stop a run-away child, not estimates. The out-of-fold audit trains 3 tiny
# models (the page shows its estimate first); the TFLite export converts and scores two files.
OUT_OF_FOLD_SECONDS = 3 * 60 * 60
TFLITE_SECONDS = 20 * 60


def out_of_fold_in_child(source: str, split: str, config=None, *, user: str | None = None,
                         progress: Callable[[float, str], None] | None = None,
                         seconds: float = OUT_OF_FOLD_SECONDS) -> np.ndarray:
    """fer.explain.audit.out_of_fold_probabilities of the dataset `source`'s `split`, computed in a child
    process holding a job slot; `progress` gets (fraction, message) as the child reports them."""
    from fer.explain.audit import OutOfFold

    config = config or OutOfFold()
    with tempfile.TemporaryDirectory(prefix="fer-oof-") as work:
        folder = Path(work)
        command = [sys.executable, "-m", "fer.train.tasks", "out-of-fold", source, split, "--folds",
                   str(config.folds), "--epochs", str(config.epochs), "--preset", config.preset, "--seed",
                   str(config.seed), str(folder)]

        def report() -> None:
            said = read_json(folder / "progress.json")
            if progress is not None and said:
                progress(float(said.get("fraction", 0.0)), str(said.get("message", "")))

        status = run_task(command, what="out-of-fold audit", seconds=seconds, user=user, log=folder / "log.txt",
                          poll=report)
        if status != 0 or not (folder / "probabilities.npy").exists():
            raise FerError(f"the out-of-fold audit failed: {_last_error(folder / 'log.txt')}")
        return np.load(folder / "probabilities.npy", allow_pickle=False)


def make_tflite(model_path: str | Path, *, user: str | None = None, seconds: float = TFLITE_SECONDS) -> None:
    """`python -m fer export MODEL --format tflite` in a child process holding a job slot; FerError with
    the exporter's own sentence when it fails."""
    if not Path(model_path).is_file():  # Said at once: the child would load TensorFlow before finding out.
        raise FerError(f"could not make the TFLite files: there is no model file {Path(model_path).name}")
    with tempfile.TemporaryDirectory(prefix="fer-tflite-") as work:
        log = Path(work) / "log.txt"
        command = [sys.executable, "-m", "fer", "export", "--format", "tflite", str(model_path)]
        if run_task(command, what="TFLite export", seconds=seconds, user=user, log=log) != 0:
            raise FerError(f"could not make the TFLite files: {_last_error(log)}")


def _last_error(log: Path) -> str:
    """The child's last `error: …` line (fer's CLI words), else its last line, else a plain sentence."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return (errors or lines or ["the child process ended without a word"])[-1]


# --- The child's side ----------------------------------------------------------------------------


def _out_of_fold(args) -> int:
    from fer.data.datasets import open_dataset

    dataset = open_dataset(args.source)
    dataset.split(args.split)  # A missing split is said before Keras takes its seconds to load.
    from fer.quiet import load_keras_quietly

    load_keras_quietly()
    from fer.explain.audit import OutOfFold, out_of_fold_probabilities

    folder = Path(args.folder)

    def progress(fraction: float, message: str) -> None:
        write_json(folder / "progress.json", {"fraction": fraction, "message": message})

    config = OutOfFold(folds=args.folds, preset=args.preset, epochs=args.epochs, seed=args.seed)
    probabilities = out_of_fold_probabilities(dataset, args.split, config, progress=progress)
    np.save(folder / "probabilities.npy", probabilities)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer.train.tasks", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True)
    out_of_fold = commands.add_parser("out-of-fold", help="out-of-fold probabilities of a split, into FOLDER")
    out_of_fold.add_argument("source")
    out_of_fold.add_argument("split")
    out_of_fold.add_argument("--folds", type=int, required=True)
    out_of_fold.add_argument("--epochs", type=int, required=True)
    out_of_fold.add_argument("--preset", required=True)
    out_of_fold.add_argument("--seed", type=int, required=True)
    out_of_fold.add_argument("folder")
    out_of_fold.set_defaults(run=_out_of_fold)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except FerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

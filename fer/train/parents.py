"""Which models a run can start from (fer.train.finetune): resolving a name, a run or a file, and listing
the choices for the Train page. No Keras here: the page lists parents without loading TensorFlow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from fer.errors import FerError
from fer.model.registry import DEFAULT_MODEL_NAME, RUN_FOLDER
from fer.paths import runs_dir


def resolve_parent(given: str, user: str | None = None) -> Path:
    """The .keras file of `given`: on the command line a .keras path or a run directory; anywhere a model's
    name as fer.model.registry knows it (a registered model, `run:<folder>`) or a finished run's folder name.
    FerError in words when it is none of them."""
    from fer.model.registry import resolve_model

    text = str(given).strip()
    if not text:
        raise FerError("name the model to start from: a registered model, a finished run or a .keras file")
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix != ".keras":
            raise FerError(f"{path.name} is not a .keras model file; start from a .keras file, a registered "
                           "model or a finished run")
        return path
    if path.is_dir():
        return _run_model(path)
    if RUN_FOLDER.fullmatch(text) and (runs_dir(user) / text).is_dir():
        return _run_model(runs_dir(user) / text)
    try:
        return resolve_model(text, user).path
    except FerError:
        raise FerError(f"no model '{text[:64]}' to start from: give a registered model's name, a finished run "
                       "or a .keras file") from None


def _run_model(run: Path) -> Path:
    from fer.train.run_dir import RunDir

    status = RunDir(run).read_state().status
    best = RunDir(run).best_model
    if status in ("starting", "running", "stopping"):
        raise FerError(f"run {run.name} is still training; start from it once it has finished")
    if not best.is_file():
        raise FerError(f"{run} holds no trained model (no best.keras); start from a finished run")
    return best


def fingerprint(path: str | Path) -> str:
    """The first 16 hex digits of the file's SHA-256: names exactly which parent file a model came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def parent_choices(user: str | None = None) -> dict[str, str]:
    """{model name: label} of what the Train form offers to start from: the registered models (the shipped one
    first), then the user's finished runs (`run:<folder>`)."""
    from fer.model.registry import model_choices

    models = sorted(model_choices(user), key=lambda model: model.name != DEFAULT_MODEL_NAME)  # Stable: keeps order.
    return {model.name: model.label for model in models}


def parent_name(path: str | Path | None) -> str | None:
    """How the run history names a parent: a registered model's name, or the run a best.keras came from."""
    if not path:
        return None
    path = Path(path)
    return path.parent.name if path.name == "best.keras" else path.stem

"""Which models a run can start from (fer.train.finetune): resolving a name, a run or a file, and listing
the choices for the Train page. No Keras here: the page lists parents without loading TensorFlow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

from fer.errors import FerError
from fer.model.registry import DEFAULT_MODEL_NAME, MODEL_NAME
from fer.paths import SHIPPED_MODELS_DIR, published_models_dir, runs_dir, user_models_dir


class ParentChoice(NamedTuple):
    """A model the Train form offers to start from."""

    label: str
    path: Path


def resolve_parent(given: str, user: str | None = None) -> Path:
    """The .keras file of `given`: a .keras path, a run directory (its best model), a registered model's
    name or a run's name. FerError in words when it is none of them."""
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
    if MODEL_NAME.fullmatch(text):
        for folder in (user_models_dir(user), published_models_dir(), SHIPPED_MODELS_DIR):
            if (folder / f"{text}.keras").is_file():
                return folder / f"{text}.keras"
        if (runs_dir(user) / text).is_dir():
            return _run_model(runs_dir(user) / text)
    raise FerError(f"no model '{text}' to start from: give a registered model's name, a finished run or a "
                   ".keras file")


def _run_model(run: Path) -> Path:
    from fer.train.run_dir import RunDir

    status = RunDir(run).read_state().get("status")
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


def parent_choices(user: str | None = None) -> list[ParentChoice]:
    """The shipped model, then the user's registered and published models, then finished runs, newest first."""
    from fer.model.cards import read_card
    from fer.train.run_dir import RunDir

    choices, seen = [], set()
    shipped = SHIPPED_MODELS_DIR / f"{DEFAULT_MODEL_NAME}.keras"
    if shipped.is_file():
        choices.append(ParentChoice(f"the shipped model ({DEFAULT_MODEL_NAME})", shipped))
        seen.add(shipped.resolve())
    folders = ((user_models_dir(user), "registered"), (published_models_dir(), "published"),
               (SHIPPED_MODELS_DIR, "registered"))
    for folder, kind in folders:
        for path in sorted(folder.glob("*.keras"), key=lambda file: file.stat().st_mtime, reverse=True):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                choices.append(ParentChoice(f"{kind}: {read_card(path).replace(name=path.stem).label}", path))
    runs = sorted(runs_dir(user).glob("*/best.keras"), key=lambda file: file.stat().st_mtime, reverse=True) \
        if runs_dir(user).is_dir() else []
    for best in runs:
        if RunDir(best.parent).read_state().get("status") == "finished":
            accuracy = read_card(best).accuracy()
            shown = f" · val acc {accuracy:.1%}" if accuracy is not None else ""
            choices.append(ParentChoice(f"run: {best.parent.name}{shown}", best))
    return choices


def parent_name(path: str | Path | None) -> str | None:
    """How the run history names a parent: a registered model's name, or the run a best.keras came from."""
    if not path:
        return None
    path = Path(path)
    return path.parent.name if path.name == "best.keras" else path.stem

"""The models a user can pick: `models/<name>.keras` with a `<name>.json` card beside each."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import NamedTuple

from fer.errors import FerError
from fer.model.cards import ModelCard, read_card, write_card
from fer.paths import MODELS_DIR

DEFAULT_MODEL_NAME = "fer2013"  # The model the project ships; Predict and Evaluate start with it.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class RegisteredModel(NamedTuple):
    """A model file in the registry and its card."""

    path: Path
    card: ModelCard


def list_models(models_dir: Path = MODELS_DIR) -> list[RegisteredModel]:
    """Every registered model with its card (named after its file), newest first."""
    found = [RegisteredModel(path, read_card(path).replace(name=path.stem))
             for path in sorted(Path(models_dir).glob("*.keras"))]
    return sorted(found, key=lambda model: model.card.created or "", reverse=True)


def default_model_path(models_dir: Path = MODELS_DIR) -> Path:
    """The shipped model if present, else the newest registered one; FerError if there is none."""
    shipped = Path(models_dir) / f"{DEFAULT_MODEL_NAME}.keras"
    if shipped.exists():
        return shipped
    models = list_models(models_dir)
    if not models:
        raise FerError(f"no model in {models_dir}; train one first (python -m fer train ...)")
    return models[0].path


def check_model_name(name: str, models_dir: str | Path | None = None) -> None:
    """Raise FerError unless `name` is a valid model name and, given `models_dir`, unused there."""
    if not MODEL_NAME.fullmatch(name):
        raise FerError(f"model name '{name}' must start with a letter or digit and use only letters, digits, "
                       "'.', '_' or '-' (at most 64 characters)")
    if models_dir is not None and (Path(models_dir) / f"{name}.keras").exists():
        raise FerError(f"a model named '{name}' already exists in {models_dir}; pick another name")


def register_model(model_path: str | Path, name: str, models_dir: Path = MODELS_DIR) -> Path:
    """Copy a trained model and its card into `models_dir` as `name`, and export it to ONNX beside them
    (checked against Keras, see fer.model.export) so it is served on onnxruntime; returns the new path."""
    check_model_name(name)
    source = Path(model_path)
    target = Path(models_dir) / f"{name}.keras"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    write_card(target, read_card(source).replace(name=name, exports=(), serving=None))
    from fer.model.export import export_onnx

    try:
        export_onnx(target)
    except Exception:  # Registered all the same: serving exports again on first use, or says why it cannot.
        pass
    return target

"""The models a user can pick: `models/<name>.keras` with a `<name>.json` card beside each."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from fer.errors import FerError
from fer.model.cards import card_path, read_card
from fer.paths import MODELS_DIR

DEFAULT_MODEL_NAME = "fer2013"  # The model the project ships; Predict and Evaluate start with it.


def list_models(models_dir: Path = MODELS_DIR) -> list[dict]:
    """Every registered model's card, with `name` and `path` added, newest first."""
    found = []
    for path in sorted(Path(models_dir).glob("*.keras")):
        card = read_card(path)
        found.append({**card, "name": path.stem, "path": str(path)})
    return sorted(found, key=lambda card: card.get("created", ""), reverse=True)


def default_model_path(models_dir: Path = MODELS_DIR) -> Path:
    """The shipped model if present, else the newest registered one; FerError if there is none."""
    shipped = Path(models_dir) / f"{DEFAULT_MODEL_NAME}.keras"
    if shipped.exists():
        return shipped
    models = list_models(models_dir)
    if not models:
        raise FerError(f"no model in {models_dir}; train one first (python -m fer train ...)")
    return Path(models[0]["path"])


def register_model(model_path: str | Path, name: str, models_dir: Path = MODELS_DIR) -> Path:
    """Copy a trained model and its card into `models_dir` as `name`; returns the new path."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise FerError(f"model name '{name}' must be letters, digits, '.', '_' or '-' (at most 64)")
    source = Path(model_path)
    target = Path(models_dir) / f"{name}.keras"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    card = {**read_card(source), "name": name}
    card_path(target).write_text(json.dumps(card, indent=2) + "\n")
    return target

"""A model's files: the `.keras` file and its card beside it, saved and loaded together."""

from __future__ import annotations

import datetime
from pathlib import Path

import keras

from fer.errors import FerError
from fer.labels import IMAGE_SIZE
from fer.model.cards import ModelCard, read_card, write_card


def save_model(model: keras.Model, path: str | Path, card: ModelCard) -> Path:
    """Save `model` as .keras (atomically: a crash mid-save leaves the previous file) with `card` beside it."""
    path = Path(path).with_suffix(".keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    temporary.replace(path)
    write_card(path, card.replace(
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        input_size=(IMAGE_SIZE, IMAGE_SIZE, 1), keras_version=keras.__version__))
    return path


def load_model(path: str | Path) -> tuple[keras.Model, ModelCard]:
    """Load a .keras model and its card, with Keras's safe mode on; FerError in words if it cannot.

    Only the .keras format is accepted: Keras ignores safe mode for legacy .h5 files, whose loading
    can run code the file carries.
    """
    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise FerError(f"{path.name} is not a .keras file; FER Studio loads models only in the .keras format "
                       "(an .h5 file can run code when it is opened)")
    if not path.is_file():
        raise FerError(f"model file {path} does not exist; expected a .keras file saved by FER Studio")
    import fer.model.presets  # noqa: F401  (registers FER Studio's own layers, which saved models use)

    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise FerError(f"{path.name} is not a Keras model FER Studio can load ({_first_line(error)})") from error
    return model, read_card(path)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]

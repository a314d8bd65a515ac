"""The models a user can pick, by name: each a `<name>.keras` file with a `<name>.json` card beside it.

Three shelves hold registered models, read in this order (a name is taken by the first shelf that has it):
- shipped: the checkout's `models/` (fer.paths.SHIPPED_MODELS_DIR), read-only; the app never writes there;
- published: fer.paths.published_models_dir(), models published for every user, read-only to them (an
  administrator's own model moves there with publish_model, and back with withdraw_model);
- the user's own: fer.paths.user_models_dir(user), the only place `register_model` writes.

A finished training run of the user's is chosen as `run:<run folder name>` and resolved only inside
fer.paths.runs_dir(user). A name is all a browser ever hands in: `resolve_model` turns it into a path,
and anything that is not a listed name gets a sentence, never a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import NamedTuple

from fer.errors import FerError
from fer.model.cards import ModelCard, card_path, read_card, write_card
from fer.paths import SHIPPED_MODELS_DIR, home_dir, published_models_dir, runs_dir, user_dir, user_models_dir

DEFAULT_MODEL_NAME = "fer2013"  # The model the project ships; Predict and Evaluate start with it.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RUN_PREFIX = "run:"  # A finished run's best model: "run:<run folder name>".
RUN_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SHELVES = ("shipped", "published", "yours")


class RegisteredModel(NamedTuple):
    """A model a user can choose: its name (what browsers and settings hold), file, card and shelf."""

    name: str
    path: Path
    card: ModelCard
    shelf: str  # "shipped", "published", "yours" or "run".

    @property
    def label(self) -> str:
        """How pickers show it: the card's label, with where it comes from when it is not the user's own."""
        where = {"shipped": " · shipped", "published": " · published", "run": " · training run"}.get(self.shelf, "")
        return f"{self.card.label}{where}"


def shelf_dir(shelf: str, user: str | None = None) -> Path:
    """The folder of a shelf of registered models."""
    return {"shipped": SHIPPED_MODELS_DIR, "published": published_models_dir(),
            "yours": user_models_dir(user)}[shelf]


def _shelf_models(folder: Path, shelf: str) -> list[RegisteredModel]:
    if not folder.is_dir():
        return []
    return [RegisteredModel(path.stem, path, read_card(path).replace(name=path.stem), shelf)
            for path in sorted(folder.glob("*.keras")) if MODEL_NAME.fullmatch(path.stem) and path.is_file()]


def list_models(user: str | None = None) -> list[RegisteredModel]:
    """Every registered model this user can choose (shipped, published, their own), each name once,
    newest first; a name on an earlier shelf hides the same name on a later one."""
    found: dict[str, RegisteredModel] = {}
    for shelf in SHELVES:
        for model in _shelf_models(shelf_dir(shelf, user), shelf):
            found.setdefault(model.name, model)
    return sorted(found.values(), key=lambda model: model.card.created or "", reverse=True)


def list_runs(user: str | None = None) -> list[RegisteredModel]:
    """The user's finished training runs that saved a best model, as `run:<folder>` choices, newest first."""
    root = runs_dir(user)
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        best = folder / "best.keras"
        if RUN_FOLDER.fullmatch(folder.name) and _finished(folder) and best.is_file():
            card = read_card(best)
            found.append(RegisteredModel(f"{RUN_PREFIX}{folder.name}", best,
                                         card.replace(name=f"{RUN_PREFIX}{folder.name}"), "run"))
    return sorted(found, key=lambda model: model.card.created or "", reverse=True)


def _finished(folder: Path) -> bool:
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("status") == "finished"


def model_choices(user: str | None = None) -> list[RegisteredModel]:
    """What a model picker offers: the registered models, then the user's finished runs."""
    return [*list_models(user), *list_runs(user)]


def resolve_model(name: str, user: str | None = None) -> RegisteredModel:
    """The model called `name` for this user; FerError in words for anything else (a path, another
    user's run, a name nobody registered). Only names are looked up: nothing given is opened as a path."""
    if not isinstance(name, str) or not name:
        raise FerError("no model name given")
    if name.startswith(RUN_PREFIX):
        folder = name.removeprefix(RUN_PREFIX)
        if not RUN_FOLDER.fullmatch(folder):
            raise FerError("a training run is chosen by its folder's name, not by a path")
        for model in list_runs(user):
            if model.name == name:
                return model
        raise FerError(f"there is no finished training run called '{folder}' among yours")
    if not MODEL_NAME.fullmatch(name):
        raise FerError("a model is chosen by its name, not by a path or a file")
    for model in list_models(user):
        if model.name == name:
            return model
    raise FerError(f"there is no model called '{name}'; choose one of the models in the sidebar")


def _shown(name: str) -> str:
    """A rejected name as a sentence may quote it: printable, at most 40 characters."""
    text = "".join(character for character in name if character.isprintable())
    return text if len(text) <= 40 else text[:40] + "…"


def default_model(user: str | None = None) -> RegisteredModel:
    """The model the user made their default (the Models page), else the shipped model if present, else the
    newest one this user can choose; FerError if there is none."""
    models = list_models(user)
    for preferred in (chosen_default_name(user), DEFAULT_MODEL_NAME):
        for model in models:
            if model.name == preferred:
                return model
    if not models:
        raise FerError("there is no model yet; train one first (on the Train page, or python -m fer train ...)")
    return models[0]


def default_model_path(user: str | None = None) -> Path:
    """The default model's .keras file (see `default_model`)."""
    return default_model(user).path


def check_model_name(name: str, user: str | None = None) -> None:
    """FerError unless `name` is a valid model name that no shelf this user sees has taken yet."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise FerError(f"model name '{_shown(str(name))}' must start with a letter or digit and use only letters, "
                       "digits, '.', '_' or '-' (at most 64 characters)")
    for shelf in SHELVES:
        if (shelf_dir(shelf, user) / f"{name}.keras").exists():
            whose = {"shipped": "the shipped model", "published": "a published model",
                     "yours": "one of your models"}[shelf]
            raise FerError(f"the name '{name}' is taken by {whose}; pick another name")


def register_model(model_path: str | Path, name: str, user: str | None = None, *, export: bool = True) -> Path:
    """Copy a trained model and its card into the user's models folder as `name`, and (with `export`) export
    it to ONNX beside them (checked against Keras, see fer.model.export) so it is served on onnxruntime.

    Refuses, in words, a name any shelf has taken, and never writes over an existing file (two
    registrations racing for one name: the second is refused). Returns the new .keras path.
    """
    check_model_name(name, user)
    source = Path(model_path)
    if source.suffix != ".keras" or not source.is_file():
        raise FerError(f"{source.name} is not a .keras model file to register")
    target = user_models_dir(user) / f"{name}.keras"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as written, open(source, "rb") as read:  # "x": fails if the name exists.
            shutil.copyfileobj(read, written)
    except FileExistsError as error:
        raise FerError(f"the name '{name}' was just taken; pick another name") from error
    if card_path(target).exists() or target.with_suffix(".onnx").exists():
        target.unlink()  # Files of an unregistered model under this name: never written over.
        raise FerError(f"files named '{name}' already exist in your models folder; pick another name")
    write_card(target, read_card(source).replace(name=name, exports=(), serving=None))
    if not export:
        return target
    from fer.model.export import export_onnx

    try:
        export_onnx(target)
    except Exception:  # noqa: BLE001  Registered all the same: serving exports on first use, or says why not.
        pass
    return target


# --- Managing the user's own models (the Models page) --------------------------------------------

DEFAULT_FILE = "default_model.json"  # In the user's space: the model their pages start with.


def _own_model(name: str, user: str | None, doing: str) -> RegisteredModel:
    """The user's own registered model `name`; FerError for shipped and published models, which are protected."""
    model = resolve_model(name, user)
    if model.shelf != "yours":
        whose = {"shipped": "the model FER Studio ships", "published": "a published model",
                 "run": "a training run, not a registered model"}.get(model.shelf, "not one of your models")
        raise FerError(f"'{name}' is {whose}; only your own models can be {doing}")
    return model


def model_files(model_path: Path) -> list[Path]:
    """A registered model's files that exist: the .keras file, its card and every export its card records."""
    card = read_card(model_path)
    names = [model_path.name, card_path(model_path).name, model_path.with_suffix(".onnx").name,
             *(export.file for export in card.exports)]
    return [model_path.with_name(name) for name in dict.fromkeys(names)
            if (model_path.parent / name).is_file() and name.startswith(model_path.stem + ".")]


def rename_model(name: str, new_name: str, user: str | None = None) -> Path:
    """Rename one of the user's models with all its files and its card; returns the new .keras path.

    Refuses, in words, a protected model, a bad or taken name; never writes over a file (each file is
    linked under its new name first, which fails if that name exists, then the old name is removed).
    """
    model = _own_model(name, user, "renamed")
    check_model_name(new_name, user)
    _move_files([(path, path.with_name(new_name + path.name[len(name):])) for path in model_files(model.path)],
                f"'{name}' could not be renamed")
    target = model.path.with_name(f"{new_name}.keras")
    card = read_card(target)

    def renamed(file: str | None) -> str | None:
        """A file name the card lists, under the new model name ('old.onnx' → 'new.onnx')."""
        return new_name + file[len(name):] if file and file.startswith(name + ".") else file

    write_card(target, card.replace(
        name=new_name, serving=renamed(card.serving),
        exports=tuple(dataclasses.replace(export, file=renamed(export.file)) for export in card.exports)))
    if chosen_default_name(user) == name:
        set_default_model(new_name, user)
    return target


def delete_model(name: str, user: str | None = None) -> None:
    """Delete one of the user's models with all its files; shipped and published models are protected."""
    model = _own_model(name, user, "deleted")
    for path in model_files(model.path):
        path.unlink(missing_ok=True)
    if chosen_default_name(user) == name:
        (user_dir(user) / DEFAULT_FILE).unlink(missing_ok=True)


# --- Publishing for every user (administrators, fer.accounts) ------------------------------------


def publish_model(name: str, user: str | None = None) -> Path:
    """Move one of the user's models, with all its files, to the published shelf: every user can choose it
    there and nobody can rename or delete it. Returns its new .keras path.

    Only a user fer.accounts.may_publish allows. Refused in words when another user's own models hold the
    name (published, it would hide theirs from them) or the published shelf already has it."""
    from fer.accounts import may_publish

    if not may_publish(user):
        raise FerError("only the server's administrators may publish a model for everyone (FER_STUDIO_ADMINS)")
    model = _own_model(name, user, "published")
    spaces = [user_models_dir(None), *(home_dir() / "users").glob("*/models")]
    if any((space / f"{name}.keras").exists() for space in spaces if space.resolve() != model.path.parent.resolve()):
        raise FerError(f"another user has a model called '{name}', and publishing would hide it from them; "
                       "rename yours, then publish it")
    return _move_to(model.path, published_models_dir(), f"'{name}' could not be published")


def withdraw_model(name: str, user: str | None = None) -> Path:
    """Move a published model back to this administrator's own models (where it can be renamed or deleted);
    other users no longer see it. Returns its new .keras path."""
    from fer.accounts import may_publish

    if not may_publish(user):
        raise FerError("only the server's administrators may withdraw a published model")
    model = resolve_model(name, user)
    if model.shelf != "published":
        raise FerError(f"'{name}' is not a published model")
    return _move_to(model.path, user_models_dir(user), f"'{name}' could not be withdrawn")


def _move_to(model_path: Path, folder: Path, failed: str) -> Path:
    """Move a registered model's files into `folder`, names unchanged; returns its new .keras path."""
    folder.mkdir(parents=True, exist_ok=True)
    _move_files([(path, folder / path.name) for path in model_files(model_path)], failed)
    return folder / model_path.name


def _move_files(moves: list[tuple[Path, Path]], failed: str) -> None:
    """Move each (source, target); never writes over a file: every target is linked first, which fails if
    it exists, and the sources go only once all are linked. FerError starting with `failed` otherwise."""
    done = []
    try:
        for source, target in moves:
            os.link(source, target)
            done.append(target)
    except OSError as error:
        for target in done:
            target.unlink(missing_ok=True)
        reason = "a file of that name is already there" if isinstance(error, FileExistsError) else \
            (error.strerror or str(error))
        raise FerError(f"{failed}: {reason}") from error
    for source, _ in moves:
        source.unlink()


def chosen_default_name(user: str | None = None) -> str | None:
    """The model the user made their default (None when they chose none or the file is unreadable)."""
    try:
        name = json.loads((user_dir(user) / DEFAULT_FILE).read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and MODEL_NAME.fullmatch(name) else None


def set_default_model(name: str, user: str | None = None) -> None:
    """Make a registered model (any shelf) the one the user's pages start with."""
    model = resolve_model(name, user)
    if model.shelf == "run":
        raise FerError("register the run's model first (give it a name), then make it the default")
    path = user_dir(user) / DEFAULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_text(json.dumps({"name": model.name}))
    os.replace(partial, path)

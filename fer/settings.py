"""A user's last choices, the active dataset and model, kept in settings.json in the user's space.

A browser tab keeps its own choices in its URL (pages.common); this file is what a new tab starts
from: the last choice this user made in any tab. Without accounts there is one user and the file is
FER_STUDIO_HOME/settings.json; with accounts each signed-in user has their own
(FER_STUDIO_HOME/users/<id>/settings.json, see fer.paths.user_dir), so a new tab never opens another
user's dataset or model.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from fer.paths import user_dir


@dataclass(frozen=True)
class Choices:
    """The active dataset source (a path or fer.data.datasets.DEMO) and model path; None: not chosen."""

    dataset: str | None = None
    model: str | None = None


def settings_path(user: str | None = None) -> Path:
    """The settings file of `user` (None: the one local user, no accounts)."""
    return user_dir(user) / "settings.json"


def read_choices(user: str | None = None) -> Choices:
    """`user`'s saved choices; empty Choices when there is no file or it cannot be read (only a convenience)."""
    try:
        saved = json.loads(settings_path(user).read_text())
    except (OSError, ValueError):
        return Choices()
    if not isinstance(saved, dict):
        return Choices()
    return Choices(**{name: value for name, value in saved.items()
                      if name in Choices.__dataclass_fields__ and isinstance(value, str) and value})


def write_choices(choices: Choices, user: str | None = None) -> None:
    """Save `user`'s choices atomically (two tabs may write at once); a file that cannot be written is skipped."""
    path = settings_path(user)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
        partial.write_text(json.dumps(asdict(choices), indent=2))
        os.replace(partial, path)
    except OSError:
        pass  # Losing the choice for new tabs costs a click, not the session.

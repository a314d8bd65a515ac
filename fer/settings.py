"""The user's last choices, the active dataset and model, kept in FER_STUDIO_HOME/settings.json.

A browser tab keeps its own choices in its URL (pages.common); this file is what a new tab starts
from: the last choice made in any tab on this machine.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from fer.paths import home_dir


@dataclass(frozen=True)
class Choices:
    """The active dataset source (a path or fer.data.datasets.DEMO) and model path; None: not chosen."""

    dataset: str | None = None
    model: str | None = None


def settings_path() -> Path:
    return home_dir() / "settings.json"


def read_choices() -> Choices:
    """The saved choices; empty Choices when there is no file or it cannot be read (it is only a convenience)."""
    try:
        saved = json.loads(settings_path().read_text())
    except (OSError, ValueError):
        return Choices()
    if not isinstance(saved, dict):
        return Choices()
    return Choices(**{name: value for name, value in saved.items()
                      if name in Choices.__dataclass_fields__ and isinstance(value, str) and value})


def write_choices(choices: Choices) -> None:
    """Save the choices atomically (two tabs may write at once); a file that cannot be written is skipped."""
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
        partial.write_text(json.dumps(asdict(choices), indent=2))
        os.replace(partial, path)
    except OSError:
        pass  # Losing the choice for new tabs costs a click, not the session.

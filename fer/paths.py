"""Where FER Studio keeps files: what ships in the checkout, and what it writes under FER_STUDIO_HOME.

The checkout's `models/` holds only what ships (read-only to the app). Everything FER Studio writes goes
under FER_STUDIO_HOME (~/.cache/fer-studio). When accounts are configured, each signed-in user gets a
private space `FER_STUDIO_HOME/users/<user id>/` with the same layout; without accounts the one local
user's space is FER_STUDIO_HOME itself. Functions that take `user` read None as "no accounts".

    FER_STUDIO_HOME/
      cache/            decoded datasets, shared by everyone (keyed by the source's content)
      published/        models published for everyone, read-only to each user
      jobs/             the job queue and its slots, shared by everyone (fer.train.job_queue)
      users/<id>/       one user's space (accounts on); without accounts these sit at the top:
        runs/           training runs
        models/         registered models: <name>.keras + <name>.json card + exports
        uploads/        uploaded datasets
        datasets/       datasets the user made (collected faces, corrected copies)
        settings.json   the last choices, for a new tab
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS_DIR = PROJECT_ROOT / "models"  # What ships: fer2013.keras and its exports, the face detector.
MODELS_DIR = SHIPPED_MODELS_DIR  # Older name, still used for the vendored detector's path.
_SAFE_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def home_dir() -> Path:
    """FER Studio's data folder: $FER_STUDIO_HOME, else ~/.cache/fer-studio."""
    return Path(os.environ.get("FER_STUDIO_HOME", Path.home() / ".cache" / "fer-studio")).expanduser()


def cache_dir() -> Path:
    """Decoded-dataset caches, shared by all users; safe to delete."""
    return home_dir() / "cache"


def jobs_dir() -> Path:
    """The job queue and the slots of running jobs, one for the whole server (every user's jobs wait here)."""
    return home_dir() / "jobs"


def published_models_dir() -> Path:
    """Models published for every user of a shared server (read-only to them)."""
    return home_dir() / "published"


def user_key(user: str | None) -> str | None:
    """The folder name of a signed-in user's space (None without accounts).

    An identity provider's subject can hold any character, so anything but a short plain id is hashed.
    """
    if user is None:
        return None
    if _SAFE_USER.fullmatch(user) and user not in {".", ".."}:
        return user
    return "u-" + hashlib.sha256(user.encode()).hexdigest()[:24]


def user_dir(user: str | None = None) -> Path:
    """A user's private space: FER_STUDIO_HOME itself without accounts, else FER_STUDIO_HOME/users/<id>."""
    key = user_key(user)
    return home_dir() if key is None else home_dir() / "users" / key


def runs_dir(user: str | None = None) -> Path:
    """Training runs (config, metrics, checkpoints, log), one folder each."""
    return user_dir(user) / "runs"


def user_models_dir(user: str | None = None) -> Path:
    """Models the user registered: <name>.keras with its card and exports."""
    return user_dir(user) / "models"


def uploads_dir(user: str | None = None) -> Path:
    """Datasets the user uploaded through the browser."""
    return user_dir(user) / "uploads"


def user_datasets_dir(user: str | None = None) -> Path:
    """Datasets the user made in the app: collected faces, corrected copies."""
    return user_dir(user) / "datasets"

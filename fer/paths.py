"""Where FER Studio keeps files outside the repository: caches, the demo set, training runs."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"  # Registered models: <name>.keras + <name>.json model card.


def home_dir() -> Path:
    """FER Studio's data folder: $FER_STUDIO_HOME, else ~/.cache/fer-studio."""
    return Path(os.environ.get("FER_STUDIO_HOME", Path.home() / ".cache" / "fer-studio")).expanduser()


def cache_dir() -> Path:
    """Decoded-dataset caches; safe to delete."""
    return home_dir() / "cache"


def runs_dir() -> Path:
    """Training runs (config, metrics, checkpoints, log), one folder each."""
    return home_dir() / "runs"

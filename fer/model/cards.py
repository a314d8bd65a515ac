"""Model cards: the JSON beside each .keras file (classes, preset, metrics, recipe, …).

Kept apart from fer.model.presets so listing models never has to import Keras/TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path


def card_path(model_path: str | Path) -> Path:
    """The JSON model card that sits beside a .keras file."""
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | Path) -> dict:
    """The model card beside a .keras file ({} when there is none or it is unreadable)."""
    try:
        return json.loads(card_path(model_path).read_text())
    except (OSError, ValueError):
        return {}


def model_label(card: dict) -> str:
    """A one-line name for a model picker: name · preset · validation accuracy (when known)."""
    accuracy = (card.get("metrics") or {}).get("validation", {}).get("accuracy")
    details = [card.get("preset")] + ([f"val acc {accuracy:.1%}"] if isinstance(accuracy, (int, float)) else [])
    return " · ".join([card["name"], *filter(None, details)])


def averages_mirror_image(card: dict) -> bool:
    """Whether the model already averages each face with its mirror image (a test-time view in its card)."""
    return any(len(view) == 3 and view[2] for view in (card.get("selection") or {}).get("views") or [])


def card_list(card: dict, key: str) -> list[str]:
    """A card field that may name several runs' values joined by '+' ("tensorflow+torch"), as a list."""
    return card[key].split("+") if card.get(key) else []


def model_facts(card: dict) -> list[str]:
    """Short sentences about how a model was made, from whatever its card records."""
    facts = []
    selection = card.get("selection") or {}
    members, views = selection.get("members") or 1, len(selection.get("views") or [])
    if members > 1 or views:
        averaged = " × ".join(([f"{members} models"] if members > 1 else [])
                              + ([f"{views} views of each face"] if views else []))
        kind = " with ".join((["an ensemble"] if members > 1 else []) + (["test-time augmentation"] if views else []))
        facts.append(f"Averages {averaged} ({kind}, chosen on the {selection.get('selected_on', 'validation')} split).")
    epochs, seconds = card.get("epochs_trained"), card.get("training_seconds")
    if isinstance(epochs, int) and isinstance(seconds, (int, float)):
        backends, devices = card_list(card, "training_backend"), card_list(card, "training_device")
        backend = f" under Keras's {' and '.join(backends)} backend{'s' * (len(backends) > 1)}" if backends else ""
        device = f" on {' and '.join(devices)}" if devices else ""
        duration = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
        facts.append(f"Trained {epochs} epochs in {duration} of training{backend}{device}.")
    return facts

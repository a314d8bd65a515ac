"""The seven expression classes, in the order every model and chart uses."""

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

EMOJI: dict[str, str] = {
    "angry": "😠",
    "disgust": "🤢",
    "fear": "😨",
    "happy": "😄",
    "neutral": "😐",
    "sad": "😢",
    "surprise": "😮",
}


def class_label(name: str) -> str:
    """A class name with its emoji, as charts and tables show it ('happy' → '😄 happy'; others as they are)."""
    return f"{EMOJI[name]} {name}" if name in EMOJI else name

# fer2013.csv numbers its labels in this (non-alphabetical) order.
FER2013_CSV_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Folder names seen in the wild, mapped to ours.
CLASS_ALIASES: dict[str, str] = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "neutrality": "neutral",
    "sadness": "sad",
    "surprised": "surprise",
}

# Split folder names (lower-case) mapped to canonical split names.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "publictest": "validation",
    "test": "test",
    "privatetest": "test",
}

IMAGE_SIZE = 48  # FER2013's native resolution: every image becomes 48×48 grayscale.


def canonical_class(name: str) -> str | None:
    """Map a folder or label name to one of CLASSES, or None if it is not one."""
    key = name.strip().lower()
    if key in CLASSES:
        return key
    return CLASS_ALIASES.get(key)

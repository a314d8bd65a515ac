"""The served-model handle: one chosen model, loaded once, with everything pages and widgets ask of it.

A `ServedModel` is built once per choice (a model's name and its file's modification time) and handed
to every page and widget, so none of them looks up a path, reads a modification time or loads the
model again. Its `classifier` runs on onnxruntime when the model has an ONNX export (fer.serve.runtime).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fer.model.cards import ModelCard
from fer.model.registry import RegisteredModel, resolve_model
from fer.serve.prediction import Classifier
from fer.serve.runtime import load_for_serving


@dataclass(frozen=True)
class ServedModel:
    """A chosen model ready to serve."""

    name: str  # What the browser, the URL and the settings file hold: a registered name or "run:<folder>".
    path: Path  # Its .keras file (Grad-CAM and the downloads read it; browsers never see it).
    modified: float  # The .keras file's modification time when loaded: a replaced file is a new handle.
    card: ModelCard
    classifier: Classifier  # Batches of 48×48 crops → probabilities, warmed up.
    runtime: str  # "onnxruntime" or "keras".
    note: str | None = None  # Why Keras serves it, when it does (said once per file and process).
    shelf: str = "yours"  # Where it comes from: "shipped", "published", "yours" or "run".

    @property
    def model(self):
        """The model object (predict_on_batch, input_shape, output_shape)."""
        return self.classifier.model

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes

    @property
    def key(self) -> tuple[str, float]:
        """What results computed with this model are cached under, in caches every session shares: its file
        (two users' models may share a name) and modification time (a replaced file gets a new key)."""
        return str(self.path), self.modified


def modification_time(choice: RegisteredModel) -> float:
    """The chosen model's file's modification time: the one read a page makes before asking for a handle."""
    return choice.path.stat().st_mtime


def serve(choice: RegisteredModel, modified: float) -> ServedModel:
    """Load `choice` for serving (FerError in words when it cannot be) and warm its classifier up."""
    served = load_for_serving(choice.path)
    classifier = Classifier(served.model, served.card.classes)
    classifier.warm_up()
    return ServedModel(choice.name, choice.path, modified, served.card, classifier, served.runtime, served.note,
                       choice.shelf)


def serve_by_name(name: str, user: str | None = None) -> ServedModel:
    """The model this user calls `name`, ready to serve; FerError in words for a name that is not theirs."""
    choice = resolve_model(name, user)
    return serve(choice, modification_time(choice))

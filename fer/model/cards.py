"""The model card: one typed record of what a model is and how it was made, stored as the JSON file
beside its `.keras` file. `read_card` is its one reader and `write_card` its one writer.

Kept apart from Keras so listing models never has to import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from fer.formatting import duration
from fer.labels import CLASSES, IMAGE_SIZE


@dataclass(frozen=True)
class Export:
    """One exported file of a model (fer.model.export), beside its `.keras` file, and what was measured on it."""

    format: str  # "onnx" or "tflite".
    variant: str  # "float32", "float16", "int8-dynamic", "int8-static" or "int8" (TFLite dynamic range).
    file: str  # Its name, in the .keras file's folder.
    bytes: int | None = None
    created: str | None = None
    # Agreement with the Keras model: the largest absolute difference of any class probability.
    max_abs_difference: float | None = None
    parity_faces: int | None = None
    parity_source: str | None = None  # Which faces, e.g. "FER2013 validation" or "synthetic demo faces".
    validation_accuracy: float | None = None
    validation_faces: int | None = None
    validation_source: str | None = None
    ms_per_face_batch: float | None = None  # Crop → probabilities, batches of 256, on the exporting machine.
    ms_one_face: float | None = None

    @classmethod
    def from_dict(cls, values: dict) -> Export:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def to_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Teacher:
    """A model whose softened probabilities a student was trained on (fer.train.distill)."""

    path: str  # The teacher's .keras file as given to training.
    name: str | None = None
    preset: str | None = None
    validation_accuracy: float | None = None  # From the teacher's own card.
    members: tuple[str, ...] = ()  # An ensemble teacher's member files, from its card.

    @classmethod
    def from_dict(cls, values: dict) -> Teacher:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in values.items() if key in known}
        fields["members"] = tuple(fields.get("members") or ())
        return cls(**fields)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["members"] = list(self.members)
        return {key: value for key, value in values.items() if value not in (None, [])}


@dataclass(frozen=True)
class Distillation:
    """How a student was distilled: loss = α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE(labels)."""

    teachers: tuple[Teacher, ...]
    temperature: float
    alpha: float

    @classmethod
    def from_dict(cls, values: dict) -> Distillation:
        return cls(teachers=tuple(Teacher.from_dict(item) for item in values.get("teachers") or ()
                                  if isinstance(item, dict)),
                   temperature=float(values["temperature"]), alpha=float(values["alpha"]))

    def to_dict(self) -> dict:
        return {"teachers": [teacher.to_dict() for teacher in self.teachers],
                "temperature": self.temperature, "alpha": self.alpha}


@dataclass(frozen=True)
class Lineage:
    """The model a fine-tuned model started from (fer.train.finetune), and how it was fine-tuned."""

    parent: str  # The parent's name (a registered model's name, or the run it came from).
    fingerprint: str  # The first 16 hex digits of the parent .keras file's SHA-256: which file exactly.
    path: str  # The parent's .keras file as given to training.
    parent_classes: tuple[str, ...] = ()
    new_head: bool = False  # True when the classes differed and the output layer was replaced.
    members: int = 1  # Networks fine-tuned (of an ensemble parent, the first `members`).
    parent_members: int = 1
    recipe: tuple[str, ...] = ()  # One line per phase, e.g. "epochs 1-5: new head only, backbone frozen, Adam 0.001".

    @classmethod
    def from_dict(cls, values: dict) -> Lineage:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in values.items() if key in known}
        for key in ("parent_classes", "recipe"):
            fields[key] = tuple(fields.get(key) or ())
        return cls(**fields)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}

    def sentence(self) -> str:
        """One sentence for Home and the run history: what it was fine-tuned from and how."""
        head = "a new head for its own classes" if self.new_head else "the same classes"
        members = (f", {self.members} of its {self.parent_members} networks" if self.parent_members > 1 else "")
        return f"Fine-tuned from {self.parent} (file {self.fingerprint}) with {head}{members}."


@dataclass(frozen=True)
class ModelCard:
    """Everything FER Studio records about a model. Only `name` and `classes` are always known."""

    name: str
    classes: tuple[str, ...] = CLASSES  # The order of the model's outputs.
    preset: str | None = None
    created: str | None = None  # ISO time the file was saved.
    input_size: tuple[int, ...] = (IMAGE_SIZE, IMAGE_SIZE, 1)
    keras_version: str | None = None
    hyperparameters: dict = field(default_factory=dict)  # The TrainConfig it was trained with.
    dataset: dict = field(default_factory=dict)  # {"source", "fingerprint"} of the training data.
    epoch: int | None = None  # The epoch a run's best model comes from.
    metrics: dict = field(default_factory=dict)  # {split: {"accuracy", "loss", "images"}}.
    training_seconds: float | None = None
    training_backend: str | None = None  # Keras backend(s), '+'-joined when members trained apart.
    training_device: str | None = None  # The same for the devices.
    # How training spread over devices and hosts: {"backend", "strategy", "devices", "processes", "device_kind"}
    # (fer.train.distribution.Placement).
    placement: dict = field(default_factory=dict)
    # Written when a run is shipped (scripts/ship_model.py):
    network: str | None = None
    epochs_trained: int | None = None
    epochs_planned: int | None = None
    best_epoch: int | None = None
    recipe: str | None = None  # The command that trains it.
    selection: dict = field(default_factory=dict)  # Members and test-time views, chosen on validation.
    validation_report: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # Per-epoch metrics of the run.
    ensemble: list = field(default_factory=list)  # Where each member came from.
    exported: str | None = None
    exports: tuple[Export, ...] = ()  # ONNX and TFLite files beside the .keras file (fer.model.export).
    serving: str | None = None  # The exported file the app serves (the chosen ONNX variant).
    distillation: Distillation | None = None  # Set when trained on a teacher's soft targets.
    lineage: Lineage | None = None  # Set when fine-tuned from a parent model.
    notes: str | None = None
    extra: dict = field(default_factory=dict)  # Fields this version does not know, kept as they were.

    @classmethod
    def from_dict(cls, values: dict, *, name: str = "model") -> ModelCard:
        """A card from its JSON object; unknown fields go to `extra`, so nothing read is lost."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        fields = {key: value for key, value in values.items() if key in known}
        fields.setdefault("name", name)
        for key in ("classes", "input_size"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
            else:
                fields.pop(key, None)
        fields["exports"] = tuple(Export.from_dict(item) for item in fields.get("exports") or ()
                                  if isinstance(item, dict))
        if isinstance(fields.get("distillation"), dict):
            fields["distillation"] = Distillation.from_dict(fields["distillation"])
        else:
            fields.pop("distillation", None)
        if isinstance(fields.get("lineage"), dict):
            fields["lineage"] = Lineage.from_dict(fields["lineage"])
        else:
            fields.pop("lineage", None)
        return cls(**fields, extra={key: value for key, value in values.items() if key not in known})

    def to_dict(self) -> dict:
        """The card's JSON object: unset fields left out, unknown ones kept."""
        values = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "exports":
                value = [export.to_dict() for export in value]
            if item.name in ("distillation", "lineage") and value is not None:
                value = value.to_dict()
            if item.name != "extra" and value not in (None, {}, [], ()):
                values[item.name] = list(value) if isinstance(value, tuple) else value
        return {**values, **self.extra}

    def replace(self, **changes) -> ModelCard:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def accuracy(self, split: str = "validation") -> float | None:
        value = (self.metrics.get(split) or {}).get("accuracy")
        return value if isinstance(value, (int, float)) else None

    def export(self, format: str, variant: str = "float32") -> Export | None:
        """The recorded export of this format and variant, if any."""
        return next((item for item in self.exports if (item.format, item.variant) == (format, variant)), None)

    def with_export(self, export: Export) -> ModelCard:
        """A copy with `export` recorded, replacing an earlier record of the same format and variant."""
        others = tuple(item for item in self.exports if (item.format, item.variant) != (export.format, export.variant))
        return self.replace(exports=others + (export,))

    @property
    def label(self) -> str:
        """A one-line name for a model picker: name · preset · validation accuracy (when known)."""
        accuracy = self.accuracy()
        details = [self.preset] + ([f"val acc {accuracy:.1%}"] if accuracy is not None else [])
        return " · ".join([self.name, *filter(None, details)])

    @property
    def averages_mirror_image(self) -> bool:
        """Whether the model already averages each face with its mirror image (a test-time view)."""
        return any(len(view) == 3 and view[2] for view in self.selection.get("views") or [])

    @property
    def backends(self) -> list[str]:
        return _joined(self.training_backend)

    @property
    def devices(self) -> list[str]:
        return _joined(self.training_device)

    def facts(self) -> list[str]:
        """Short sentences about how the model was made, from whatever the card records."""
        facts = [self.lineage.sentence()] if self.lineage else []
        members, views = self.selection.get("members") or 1, len(self.selection.get("views") or [])
        if members > 1 or views:
            averaged = " × ".join(([f"{members} models"] if members > 1 else [])
                                  + ([f"{views} views of each face"] if views else []))
            kind = " with ".join((["an ensemble"] if members > 1 else [])
                                 + (["test-time augmentation"] if views else []))
            facts.append(f"Averages {averaged} ({kind}, chosen on the "
                         f"{self.selection.get('selected_on', 'validation')} split).")
        epochs, seconds = self.epochs_trained, self.training_seconds
        if isinstance(epochs, int) and isinstance(seconds, (int, float)):
            backends, devices = self.backends, self.devices
            backend = f" under Keras's {' and '.join(backends)} backend{'s' * (len(backends) > 1)}" if backends else ""
            device = f" on {' and '.join(devices)}" if devices else ""
            each = [member.get("training_seconds") for member in self.ensemble if isinstance(member, dict)]
            if len(each) > 1 and all(isinstance(value, (int, float)) for value in each):
                # An ensemble's seconds are its networks' summed: say each one's, which is what a run took.
                per_network = epochs // len(each) if epochs % len(each) == 0 else epochs  # Cards sum epochs too.
                facts.append(f"Each of its {len(each)} networks trained {per_network} epochs in "
                             f"{duration(max(each))}{backend}{device} ({duration(seconds)} summed over the "
                             f"{len(each)}).")
            else:
                facts.append(f"Trained {epochs} epochs in {duration(seconds)} of training{backend}{device}.")
        if self.placement.get("strategy") not in (None, "one device"):
            processes = self.placement.get("processes") or 1
            facts.append(f"Trained with {self.placement['strategy']} over {self.placement.get('devices')} "
                         f"{self.placement.get('device_kind', '')} devices"
                         + (f" in {processes} processes." if processes > 1 else "."))
        return facts

    @property
    def recipes(self) -> list[str]:
        """The commands that trained it: one per network of an ensemble (each its own seed), else its recipe."""
        members = [member.get("recipe") for member in self.ensemble if isinstance(member, dict)]
        if len(members) > 1 and all(members):
            return members
        return [self.recipe] if self.recipe else []


def lineage_lines(card: ModelCard) -> list[str]:
    """Where a model came from, one sentence each: its training data, its run and best epoch, the networks
    it averages, the teachers it learnt from and the model it was fine-tuned from, as far as its card says."""
    lines = []
    source = card.dataset.get("source") if isinstance(card.dataset, dict) else None
    if source:
        fingerprint = card.dataset.get("fingerprint")
        lines.append(f"Trained on {Path(str(source)).name}"
                     + (f" (fingerprint {fingerprint})." if fingerprint else "."))
    if card.preset:
        kept = ", kept as it started: no epoch of fine-tuning read the validation faces better by more than chance"
        epoch = f", best at epoch {card.epoch}" if card.epoch else kept if card.epoch == 0 else ""
        lines.append(f"Preset {card.preset}{epoch}.")
    members = [member for member in card.ensemble if isinstance(member, dict)]
    if members:
        lines.append("Averages " + "; ".join(
            f"{member.get('source', 'a network')}" + (f" (epoch {member['epoch']})" if member.get("epoch") else "")
            for member in members) + ".")
    if card.distillation is not None and card.distillation.teachers:
        lines.append("Distilled from " + ", ".join(teacher.name or Path(teacher.path).stem
                                                  for teacher in card.distillation.teachers) + ".")
    parent = getattr(card, "lineage", None)  # A fine-tuned model's parent, where cards record one.
    if parent is not None and hasattr(parent, "sentence"):
        lines.append(parent.sentence())
    return lines


def _joined(value: str | None) -> list[str]:
    """A field that may name several runs' values joined by '+' ("tensorflow+torch"), as a list."""
    return value.split("+") if value else []


def card_path(model_path: str | Path) -> Path:
    """The JSON model card that sits beside a .keras file."""
    return Path(model_path).with_suffix(".json")


def read_card(model_path: str | Path) -> ModelCard:
    """The card beside a model file; a card with only its name (the file's stem) when there is none."""
    name = Path(model_path).stem
    try:
        values = json.loads(card_path(model_path).read_text())
    except (OSError, ValueError):
        values = {}
    return ModelCard.from_dict(values if isinstance(values, dict) else {}, name=name)


def write_card(model_path: str | Path, card: ModelCard) -> Path:
    """Write `card` beside `model_path` atomically (a reader never sees half a file); returns its path."""
    path = card_path(model_path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(card.to_dict(), indent=2, default=_jsonable) + "\n")
    os.replace(temporary, path)
    return path


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)

"""The training config, and every choice it accepts declared once beside it.

TrainConfig checks its values against these choices; `python -m fer train --help` reads them, and the
Train page draws its form from SETTINGS (one widget per declared field: label, bounds, choices, with
TrainConfig's default). A learning rate typed into the form goes: pages/train.py → TrainConfig (here)
→ config.json (fer.train.run_dir, written by fer.train.jobs) → fer.train.loop.train → the optimizer →
model.fit. A new hyperparameter is a TrainConfig field, its Setting, and the code that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from fer.errors import FerError
from fer.model.augmentation import NO_AUGMENTATION, SEED_AUGMENTATION, Augmentation
from fer.model.presets import PRESETS

# Each choice with a one-line description, the default first. The CLI's help and the form show these.
PRESET_CHOICES = {name: preset.description for name, preset in PRESETS.items()}
OPTIMIZERS = {
    "adam": "Adam, the seed recipe",
    "adamw": "Adam with decoupled weight decay (1e-4 unless a weight decay is given)",
    "sgd": "SGD with Nesterov momentum 0.9",
}
SCHEDULES = {
    "constant": "the same learning rate throughout",
    "cosine": "per-step cosine decay to 1% of the rate, after the warm-up epochs",
    "plateau": "halve the rate when the validation loss stalls for 3 epochs",
}
DTYPE_POLICIES = {
    "float32": "32-bit floats throughout",
    "mixed_bfloat16": "bfloat16 compute with float32 weights: faster only on CPUs with bf16 units",
}
AUGMENTATION_MODES = {
    "preset's own": "the augmentation the preset was designed with",
    "custom": "the settings given",
    "off": "no random transforms",
}
CUSTOM_AUGMENTATION = SEED_AUGMENTATION  # Where custom settings start: the seed recipe (rotation 20°, zoom 20%, flip).

NEW_HEADS = {
    "features": "a fresh softmax layer on the features the parent's head read",
    "probe": "a layer on each network's own probabilities, their logits averaged, starting as the logistic "
             "regression that reads the new classes best from the networks' mean probabilities",
}

# TrainConfig fields that take one of a set of choices.
FIELD_CHOICES = {
    "preset": PRESET_CHOICES,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "dtype_policy": DTYPE_POLICIES,
    "new_head": NEW_HEADS,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the seed recipe: the `seed` preset's baseline training."""

    preset: str = "seed"  # One of PRESET_CHOICES.
    epochs: int = 30
    batch_size: int = 64  # Barely changes CPU speed; 64 is a common FER2013 choice.
    learning_rate: float = 1e-3  # Adam 1e-3: the seed recipe.
    optimizer: str = "adam"  # One of OPTIMIZERS.
    schedule: str = "constant"  # One of SCHEDULES.
    warmup_epochs: int = 0
    weight_decay: float = 0.0  # Decoupled weight decay for adamw / sgd.
    label_smoothing: float = 0.0
    class_weights: bool = False  # Weight the loss by inverse class frequency.
    early_stopping_patience: int = 0  # Epochs without val_accuracy gain before stopping; 0 = off.
    seed: int = 0
    augmentation: Augmentation | None = None  # None: the preset's own augmentation.
    dtype_policy: str = "float32"  # One of DTYPE_POLICIES; "mixed_bfloat16" is faster only on CPUs with bf16 units.
    train_split: str = "train"
    validation_split: str = "validation"
    # Knowledge distillation (fer.train.distill): loss = α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE(labels).
    teacher: str | None = None  # A .keras model or ensemble file to learn soft targets from; None: no teacher.
    distill_temperature: float = 4.0  # T: Hinton et al. 2015 use 1–20; 4 softens 7 classes without flattening them.
    distill_alpha: float = 0.5  # α: the teacher's and the labels' terms weighed equally, a common starting point.
    # Fine-tuning (fer.train.finetune): start from a trained model instead of random weights.
    parent: str | None = None  # The .keras model or ensemble file to start from; None: random weights.
    head_epochs: int = 5  # New classes: epochs training only the new head, backbone frozen (a random head's
    #                       first gradients are large and would scramble a backbone trained at the same time).
    backbone_rate: float = 0.1  # The backbone's learning rate as a share of learning_rate: small steps keep
    #                             what the parent learned from far more faces than a few dozen per class.
    parent_members: int = 0  # Of an ensemble parent, how many of its networks to fine-tune (the first N); 0: all.
    new_head: str = "probe"  # One of NEW_HEADS. The probe head won on validation (docs/benchmarks.md, few-shot).

    def __post_init__(self):
        for name, choices in FIELD_CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise FerError(f"unknown {name.replace('_', ' ')} '{value}'; choose {either(choices)}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise FerError("epochs and batch size must be at least 1 and the learning rate above 0")
        if self.distill_temperature <= 0 or not 0 <= self.distill_alpha <= 1:
            raise FerError("the distillation temperature must be above 0 and its weight (alpha) between 0 and 1")
        if self.head_epochs < 0 or not 0 < self.backbone_rate <= 1 or self.parent_members < 0:
            raise FerError("head epochs and members must be 0 or more and the backbone's rate above 0 and at most 1")
        if self.parent and self.teacher:
            raise FerError("start from a parent model or learn from a teacher, not both in one run")
        if self.parent and (self.augmentation is not None or self.dtype_policy != "float32"):
            raise FerError("a fine-tuned model keeps its parent's augmentation and float32 weights; leave both "
                           "at their defaults when starting from a model")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        if values.get("augmentation") is not None:
            values["augmentation"] = Augmentation(**values["augmentation"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class Setting:
    """How the Train form asks for one TrainConfig field; the value it starts at is TrainConfig's default.

    The widget follows from the declaration: a select box for `choices`, a stepped slider for `options`,
    a checkbox for a yes/no field, a slider when `slider` is set, else a number box.
    """

    field: str  # The TrainConfig field.
    label: str
    group: str  # Where the form shows it: one of FORM_GROUPS.
    choices: Mapping[str, str] | None = None  # Name → one-line description (listed in the widget's help).
    described_choices: bool = False  # Each choice shown with its description (short lists of long names).
    options: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    slider: bool = False
    number_format: str | None = None  # printf-style, for a number box.


# "distillation": only with a teacher; "finetune": only when starting from a parent model.
FORM_GROUPS = ("data", "model", "optimisation", "loss", "distillation", "finetune")
SETTINGS = (
    Setting("seed", "Random seed", "data", minimum=0, step=1),
    Setting("preset", "Model preset", "model", choices=PRESET_CHOICES, described_choices=True),
    Setting("epochs", "Epochs", "model", minimum=1, maximum=500, step=1),
    Setting("batch_size", "Batch size", "model", options=(16, 32, 64, 128, 256)),
    Setting("early_stopping_patience", "Early stopping patience (epochs, 0 = off)", "model", minimum=0, step=1),
    Setting("optimizer", "Optimizer", "optimisation", choices=OPTIMIZERS),
    Setting("learning_rate", "Learning rate", "optimisation", minimum=1e-6, maximum=1.0, step=1e-4,
            number_format="%.5f"),
    Setting("schedule", "Learning-rate schedule", "optimisation", choices=SCHEDULES),
    Setting("warmup_epochs", "Warm-up epochs (cosine)", "optimisation", minimum=0, step=1),
    Setting("weight_decay", "Weight decay (adamw, sgd)", "optimisation", minimum=0.0, step=1e-4, number_format="%.5f"),
    Setting("class_weights", "Class weights (inverse class frequency)", "loss"),
    Setting("label_smoothing", "Label smoothing", "loss", minimum=0.0, maximum=0.3, step=0.05, slider=True),
    Setting("dtype_policy", "Compute precision", "loss", choices=DTYPE_POLICIES),
    Setting("distill_temperature", "Distillation temperature T", "distillation", minimum=0.5, maximum=20.0, step=0.5),
    Setting("distill_alpha", "Teacher's share of the loss (α)", "distillation", minimum=0.0, maximum=1.0, step=0.05,
            slider=True),
    Setting("head_epochs", "Head epochs (new classes: the rest frozen)", "finetune", minimum=0, maximum=100, step=1),
    Setting("backbone_rate", "Backbone's share of the learning rate", "finetune", minimum=0.01, maximum=1.0,
            step=0.01, slider=True),
    Setting("new_head", "New head reads", "finetune", choices=NEW_HEADS),
    Setting("parent_members", "Networks to fine-tune, of an ensemble (0 = all)", "finetune", minimum=0, maximum=20,
            step=1),
)
# Fields whose choices only the dataset or the registry knows (splits, models) or that take several widgets
# (augmentation): the form asks for them with widgets of their own.
FORM_SPECIAL_FIELDS = ("train_split", "validation_split", "augmentation", "teacher", "parent")


def settings_in(group: str) -> tuple[Setting, ...]:
    """The declared settings the form shows in `group`, in order."""
    return tuple(setting for setting in SETTINGS if setting.group == group)


def undeclared_fields() -> set[str]:
    """TrainConfig fields the form would not ask for (none, unless a field was added without its Setting)."""
    declared = {setting.field for setting in SETTINGS} | set(FORM_SPECIAL_FIELDS)
    return {item.name for item in fields(TrainConfig)} - declared


def either(choices) -> str:
    """'a, b or c'."""
    names = list(choices)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def augmentation_for(mode: str, custom: Augmentation) -> Augmentation | None:
    """TrainConfig.augmentation for one of AUGMENTATION_MODES: None (the preset's own), `custom`, or none at all."""
    return {"preset's own": None, "custom": custom, "off": NO_AUGMENTATION}[mode]


def applied_augmentation(preset: str, augmentation: Augmentation | None) -> Augmentation:
    """The augmentation a run of `preset` trains with: `augmentation`, or the preset's own when it is None."""
    return augmentation if augmentation is not None else PRESETS[preset].augmentation

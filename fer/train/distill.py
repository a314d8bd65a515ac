"""Knowledge distillation: a student learns from a teacher model's (or ensemble file's) softened probabilities.

loss = α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE(labels, student), where p_T = softmax(log p / T)
(Hinton et al. 2015; the T² keeps the soft term's gradients the same size whatever T is).

The teacher must see the very batch the student sees, and augmentation is a layer inside our models.
So the training model (distillation_model) augments the batch once, with the student's augmentation,
and feeds the augmented faces both to the student, built without random transforms, and to the frozen
teacher in inference mode. The soft term is added with `add_loss`; the compiled loss is the labels'
term. Plain functional Keras, so it runs the same under the JAX and TensorFlow backends. When the best
epoch is saved, student_of() copies the student's weights into the preset's ordinary model (with its
augmentation back), so a distilled student is served exactly like any other model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
from keras import layers

from fer.errors import FerError
from fer.labels import IMAGE_SIZE
from fer.model.augmentation import NO_AUGMENTATION, FaceAugmentation
from fer.model.cards import Distillation, Teacher, read_card
from fer.model.presets import build_model, transfer_weights
from fer.train.config import TrainConfig, applied_augmentation

EPSILON = 1e-7  # Floor under probabilities before their log: a saved softmax can hold exact zeros.


# --- The loss ------------------------------------------------------------------------------------


def soft_log_probabilities(probabilities, temperature: float):
    """log softmax(log p / T): a model's probabilities softened by temperature T, as logs."""
    ops = keras.ops
    logits = ops.log(ops.clip(ops.cast(probabilities, "float32"), EPSILON, 1.0))
    return ops.log_softmax(logits / temperature, axis=-1)


def distillation_term(teacher_probabilities, student_probabilities, temperature: float):
    """T²·KL(teacher_T ‖ student_T), averaged over the batch (the teacher gets no gradient)."""
    ops = keras.ops
    teacher_log = soft_log_probabilities(ops.stop_gradient(teacher_probabilities), temperature)
    student_log = soft_log_probabilities(student_probabilities, temperature)
    kl = ops.sum(ops.exp(teacher_log) * (teacher_log - student_log), axis=-1)  # (N,)
    return temperature**2 * ops.mean(kl)


def distillation_loss(labels, student_probabilities, teacher_probabilities, *, temperature: float, alpha: float,
                      label_smoothing: float = 0.0):
    """The whole loss on one batch: α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE(labels, student)."""
    cross_entropy = keras.ops.mean(keras.losses.categorical_crossentropy(
        labels, student_probabilities, label_smoothing=label_smoothing))
    return alpha * distillation_term(teacher_probabilities, student_probabilities, temperature) + \
        (1 - alpha) * cross_entropy


@keras.saving.register_keras_serializable(package="fer")
class LabelTerm(keras.losses.Loss):
    """(1−α)·CE(labels, student): the compiled part of the distillation loss."""

    def __init__(self, alpha=0.5, label_smoothing=0.0, name="label_term", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha, self.label_smoothing = float(alpha), float(label_smoothing)

    def call(self, y_true, y_pred):
        return (1 - self.alpha) * keras.losses.categorical_crossentropy(
            y_true, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="fer")
class DistillationTerm(layers.Layer):
    """Adds α·T²·KL(teacher_T ‖ student_T) to the model's losses and passes the student's probabilities on."""

    def __init__(self, temperature=4.0, alpha=0.5, **kwargs):
        super().__init__(**kwargs)
        self.temperature, self.alpha = float(temperature), float(alpha)

    def call(self, inputs):
        teacher_probabilities, student_probabilities = inputs
        if self.alpha:
            self.add_loss(self.alpha * distillation_term(teacher_probabilities, student_probabilities,
                                                         self.temperature))
        return student_probabilities

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="fer")
class FrozenTeacher(layers.Layer):
    """The teacher, always in inference mode (batch norm's moving statistics, no dropout) and never trained.

    A layer rather than the bare model: a functional model passes its own `training` flag to every
    model it calls, which would switch the teacher's dropout on.
    """

    def __init__(self, teacher, **kwargs):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if isinstance(teacher, dict):  # From a saved training checkpoint (resuming a run).
            teacher = keras.saving.deserialize_keras_object(teacher)
        self.teacher = teacher
        self.teacher.trainable = False

    def call(self, inputs):
        return keras.ops.cast(self.teacher(inputs, training=False), "float32")

    def compute_output_shape(self, input_shape):
        return self.teacher.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "teacher": keras.saving.serialize_keras_object(self.teacher)}


# --- The training model --------------------------------------------------------------------------


def load_teacher(path: str | Path, classes) -> tuple[keras.Model, Teacher]:
    """The teacher model at `path` and its record for the student's card; its classes must be `classes`."""
    from fer.model.files import load_model

    path = Path(path)
    if not path.exists():
        raise FerError(f"teacher model not found: {path}")
    model, card = load_model(path)
    if tuple(card.classes) != tuple(classes):
        raise FerError(f"the teacher {path.name} predicts {', '.join(card.classes)}; "
                       f"the dataset has {', '.join(classes)}")
    return model, teacher_record(path)


def teacher_record(path: str | Path) -> Teacher:
    """What the student's card says about one teacher: its file, preset, members and validation accuracy."""
    card = read_card(path)
    members = tuple(str(member.get("source")) for member in card.ensemble if isinstance(member, dict))
    return Teacher(path=str(path), name=card.name, preset=card.preset or card.network,
                   validation_accuracy=card.accuracy("validation"), members=members)


def card_distillation(config: TrainConfig) -> Distillation | None:
    """The `distillation` entry of a student's card, or None for a run without a teacher."""
    if not config.teacher:
        return None
    return Distillation(teachers=(teacher_record(config.teacher),), temperature=config.distill_temperature,
                        alpha=config.distill_alpha)


def distillation_model(config: TrainConfig, classes) -> keras.Model:
    """The model that trains `config.preset` on `config.teacher`'s soft targets (see the module docstring).

    Its output is the student's probabilities, so accuracy metrics, checkpoints and the run's records
    work unchanged; compile it with label_term(config).
    """
    teacher, _ = load_teacher(config.teacher, classes)
    augmentation = applied_augmentation(config.preset, config.augmentation)
    still = dataclasses.replace(NO_AUGMENTATION, crop_size=augmentation.crop_size)  # The crop stays in the student.
    plain = build_model(config.preset, num_classes=len(classes), augmentation=still, dtype_policy=config.dtype_policy)
    student = keras.Model(plain.inputs, plain.outputs, name="student")
    settings = {key: value for key, value in dataclasses.asdict(augmentation).items() if key != "crop_size"}

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = layers.Rescaling(1.0 / 255, name="to_unit")(inputs)  # FaceAugmentation works on 0..1 (its contrast clips).
    x = FaceAugmentation(**settings, name="augment")(x)
    augmented = layers.Rescaling(255.0, name="to_pixels")(x)  # Both models take 0..255 pixels.
    student_probabilities = student(augmented)
    teacher_probabilities = FrozenTeacher(teacher, name="teacher")(augmented)
    outputs = DistillationTerm(config.distill_temperature, config.distill_alpha, name="distillation")(
        [teacher_probabilities, student_probabilities])
    return keras.Model(inputs, outputs, name=f"{config.preset}_distilled")


def label_term(config: TrainConfig) -> keras.losses.Loss:
    """The loss to compile distillation_model with: the labels' share of the distillation loss."""
    return LabelTerm(alpha=config.distill_alpha, label_smoothing=config.label_smoothing)


def is_distillation_model(model: keras.Model) -> bool:
    return any(isinstance(layer, DistillationTerm) for layer in model.layers)


def student_of(model: keras.Model, config: TrainConfig) -> keras.Model:
    """The student inside a distillation model, as the preset's ordinary model (its augmentation back)."""
    student = model.get_layer("student")
    plain = build_model(config.preset, num_classes=student.output_shape[-1], augmentation=config.augmentation,
                        dtype_policy=config.dtype_policy)
    return transfer_weights(student, plain)

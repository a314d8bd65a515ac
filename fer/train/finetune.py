"""Fine-tuning: a run that starts from a trained model (the parent) instead of random weights.

Same classes as the parent: every weight trains on, at a lower learning rate. Other classes (names or
number): each network gets a new output layer for the dataset's classes (by default a probe that starts
as the logistic regression on the networks' mean probabilities, probe_heads); the first `head_epochs` train
that head alone with the backbone frozen, then the backbone joins at `backbone_rate` × the head's rate.
The run keeps its starting model unless an epoch reads the validation faces better by more than chance
(validation_hits, reads_better).
Batch normalization stays in inference mode throughout: its statistics come from the parent's tens of
thousands of faces, and a few dozen per class would replace them with noisy ones.

An ensemble parent (several networks averaged, as the shipped model) keeps its first `parent_members`
networks (all of them by default), each fine-tuned, their outputs still averaged. fer.train.loop calls
starting_model() and phases(); the card records the parent in `lineage` (card_lineage()).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from fer.data.datasets import Dataset, Split
from fer.errors import FerError
from fer.labels import IMAGE_SIZE
from fer.model.cards import Lineage, ModelCard, read_card
from fer.train.config import NEW_HEADS, TrainConfig
from fer.train.parents import fingerprint, resolve_parent  # noqa: F401  (resolve_parent: the CLI's entry)

HEAD = "probabilities"  # The output layer's name in every preset (fer.model.presets.build_model).
MIN_FACES_PER_CLASS = 10  # 8 to train on and 2 to check on once a fifth is drawn for validation.
VALIDATION_FRACTION = 0.2  # Drawn when the dataset has no validation split, as class folders are.


@dataclasses.dataclass(frozen=True)
class SmallData:
    """The recipe a fine-tuning run starts with when the command or form leaves a value out."""

    epochs: int = 20  # Head and backbone phases together; early stopping usually ends it sooner.
    batch_size: int = 32  # 60 faces a class gives several steps an epoch even with three classes.
    learning_rate: float = 1e-3  # Adam's usual rate, for the new head; the backbone gets backbone_rate × it.
    early_stopping_patience: int = 5  # Epochs without a validation gain: a few dozen faces overfit fast.
    optimizer: str = "adam"
    schedule: str = "constant"


SMALL_DATA = SmallData()


class Phase(NamedTuple):
    """A stretch of a fine-tuning run with one set of trainable layers and one learning rate."""

    first_epoch: int  # 0-based, as Keras's initial_epoch.
    last_epoch: int  # Exclusive, as Keras's epochs.
    learning_rate: float
    backbone_trainable: bool

    def describe(self) -> str:
        what = "whole network" if self.backbone_trainable else "new head only, backbone frozen"
        return f"epochs {self.first_epoch + 1}-{self.last_epoch}: {what}, learning rate {self.learning_rate:g}"


def finetune_config(parent: str | Path, **given) -> TrainConfig:
    """The TrainConfig of a run from `parent`: the values `given`, SMALL_DATA for the rest, and the
    parent's preset (the run keeps its architecture)."""
    card = read_card(parent)
    preset = card.preset or card.network
    from fer.model.presets import PRESETS

    values = {**dataclasses.asdict(SMALL_DATA), "preset": preset if preset in PRESETS else "seed",
              **{key: value for key, value in given.items() if value is not None}, "parent": str(parent)}
    return TrainConfig(**values)


# --- Checks before training ----------------------------------------------------------------------


def prepared_dataset(dataset: Dataset, config: TrainConfig) -> Dataset:
    """`dataset` ready to fine-tune on: enough faces in every class, and a validation split (drawn from
    the training faces, a seeded stratified fifth, when it has none). FerError in words otherwise."""
    train = dataset.split(config.train_split)
    validation = dataset.splits.get(config.validation_split)
    faces = np.bincount(train.labels, minlength=len(dataset.classes))
    if validation is not None:
        faces = faces + np.bincount(validation.labels, minlength=len(dataset.classes))
    short = [(name, int(count)) for name, count in zip(dataset.classes, faces) if count < MIN_FACES_PER_CLASS]
    if short:
        listed = ", ".join(f"'{name}' has {count} (add {MIN_FACES_PER_CLASS - count})" for name, count in short)
        raise FerError(f"fine-tuning needs at least {MIN_FACES_PER_CLASS} faces in every class: {listed}")
    if len(dataset.classes) < 2:
        raise FerError("fine-tuning needs at least two classes to tell apart")
    if validation is not None and len(validation):
        return dataset
    kept, drawn = _stratified_draw(train.labels, config.seed)
    splits = {**dataset.splits, config.train_split: _subset(train, kept),
              config.validation_split: _subset(train, drawn)}
    return dataclasses.replace(dataset, splits=splits)


def _stratified_draw(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    indexes = np.arange(len(labels))
    kept, drawn = train_test_split(indexes, test_size=VALIDATION_FRACTION, stratify=labels, random_state=seed)
    return np.sort(kept), np.sort(drawn)


def _subset(split: Split, indexes: np.ndarray) -> Split:
    return Split(split.images[indexes], split.labels[indexes], tuple(split.files[i] for i in indexes))


# --- The model -----------------------------------------------------------------------------------


def networks(model: keras.Model) -> list[keras.Model]:
    """The networks inside `model` that end in an output layer named HEAD: the model itself, or an
    ensemble's members in order."""
    if any(layer.name == HEAD for layer in model.layers):
        return [model]
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += networks(layer)
    return found


def load_parent(path: str | Path) -> tuple[keras.Model, ModelCard, list[keras.Model]]:
    """The parent model, its card and its networks; FerError when FER Studio cannot fine-tune it."""
    from fer.model.files import load_model

    model, card = load_model(path)
    expected = (IMAGE_SIZE, IMAGE_SIZE, 1)
    if tuple(model.input_shape[1:]) != expected:
        shape = "×".join(str(size) for size in model.input_shape[1:])
        raise FerError(f"{Path(path).name} takes {shape} images, and FER Studio's faces are 48×48 grayscale "
                       "(48×48×1); start from a model trained on FER Studio's faces")
    found = networks(model)
    if not found:
        raise FerError(f"{Path(path).name} has no output layer named '{HEAD}' to replace; start from a model "
                       "trained in FER Studio")
    return model, card, found


def starting_model(config: TrainConfig, classes: tuple[str, ...], dataset: Dataset | None = None) -> keras.Model:
    """The model a fine-tuning run trains: the parent's networks (the first config.parent_members of an
    ensemble), each with a new head when `classes` differ from the parent's, averaged when several.

    With config.new_head "probe" the networks share one probe (probe_heads): the model starts as the logistic
    regression that reads `dataset`'s classes from the networks' mean probabilities (C chosen on validation)."""
    from fer.model.presets import ensemble

    _, card, found = load_parent(config.parent)
    chosen = found[:config.parent_members] if config.parent_members else found
    if tuple(card.classes) == tuple(classes):  # A parent fine-tuned with a probe head averages logits.
        logits = any(network.get_layer(HEAD).activation is keras.activations.linear for network in chosen)
        return softmax_of_mean(chosen) if logits else ensemble(chosen)
    if config.new_head == "probe":
        if dataset is None:
            raise ValueError("a probe head is fitted on the dataset's faces: pass the dataset")
        return probe_heads(chosen, dataset, config)
    return ensemble([with_new_head(network, len(classes), seed=config.seed + index)
                     for index, network in enumerate(chosen)])


def with_new_head(network: keras.Model, num_classes: int, seed: int = 0) -> keras.Model:
    """`network` with its output layer replaced by a fresh softmax layer of `num_classes`."""
    features = network.get_layer(HEAD).input
    head = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=HEAD,
                              kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    return keras.Model(network.inputs, head(features), name=network.name)


PROBE_C = (0.01, 0.1, 1.0, 10.0, 100.0)  # Inverse regularisation strengths tried; the validation faces pick one.
PARENT_PROBABILITIES = "parent_probabilities"  # A probe head's input: the parent network's own output layer, kept.


def probe_heads(parent_networks: list[keras.Model], dataset: Dataset, config: TrainConfig) -> keras.Model:
    """The networks, each reading its own probabilities p into logits W·p + b for the dataset's classes, the
    logits averaged before one softmax. W and b start as the logistic regression that reads the classes best
    (C chosen on the validation faces) from the networks' *mean* probabilities: since the logits are linear,
    the starting model is exactly that regression. Each network's copy of W and b then trains on its own."""
    from sklearn.linear_model import LogisticRegression

    members = [_with_logit_head(network, len(dataset.classes)) for network in parent_networks]
    readers = [keras.Model(member.inputs, member.get_layer(HEAD).input) for member in members]
    train, validation = dataset.split(config.train_split), dataset.split(config.validation_split)
    seen = {name: np.mean([reader.predict(split.images[..., None].astype("float32"), batch_size=256, verbose=0)
                           for reader in readers], axis=0)
            for name, split in (("train", train), ("validation", validation))}
    fitted = [LogisticRegression(C=c, max_iter=2000).fit(seen["train"], train.labels) for c in PROBE_C]
    best = max(fitted, key=lambda model: model.score(seen["validation"], validation.labels))
    kernel, bias = best.coef_, best.intercept_
    if kernel.shape[0] == 1:  # Two classes: scikit-learn keeps one row; softmax needs one per class.
        kernel, bias = np.vstack([-kernel / 2, kernel / 2]), np.concatenate([-bias / 2, bias / 2])
    for member in members:
        member.get_layer(HEAD).set_weights([kernel.T.astype("float32"), bias.astype("float32")])
    return softmax_of_mean(members)


def _with_logit_head(network: keras.Model, num_classes: int) -> keras.Model:
    """`network` with its output layer kept (renamed PARENT_PROBABILITIES) and a linear layer named HEAD after it."""
    old = network.get_layer(HEAD)
    taken = {layer.name for layer in _leaf_layers(network)}
    name = next(f"{PARENT_PROBABILITIES}{suffix}" for suffix in ["", *range(2, len(taken) + 2)]
                if f"{PARENT_PROBABILITIES}{suffix}" not in taken)
    kept = keras.layers.Dense(old.units, activation=old.activation, dtype="float32", name=name)
    probabilities = kept(old.input)
    kept.set_weights(old.get_weights())
    if old.activation is keras.activations.linear:  # A probe-tuned network's logits: softmax gives probabilities.
        probabilities = keras.layers.Activation("softmax", dtype="float32", name=f"{name}_softmax")(probabilities)
    head = keras.layers.Dense(num_classes, dtype="float32", name=HEAD)
    return keras.Model(network.inputs, head(probabilities), name=network.name)


def softmax_of_mean(members: list[keras.Model]) -> keras.Model:
    """One model whose probabilities are the softmax of the mean of the `members`' logits."""
    inputs = keras.Input(members[0].input_shape[1:], name="pixels")
    logits = [keras.Model(member.input, member.output, name=f"member_{index}")(inputs)
              for index, member in enumerate(members, start=1)]
    mean = keras.layers.Average(name="mean_over_members")(logits) if len(logits) > 1 else logits[0]
    outputs = keras.layers.Activation("softmax", dtype="float32", name="class_probabilities")(mean)
    return keras.Model(inputs, outputs, name=f"probe_over_{len(members)}")


SIGNIFICANCE = 0.05  # An epoch must read the validation faces better than its start with p under this.


def validation_hits(model: keras.Model, dataset: Dataset, config: TrainConfig) -> np.ndarray:
    """Which validation faces `model` reads right, in the split's order (booleans)."""
    split = dataset.split(config.validation_split)
    predicted = model.predict(split.images[..., None].astype("float32"), batch_size=256, verbose=0).argmax(axis=1)
    return predicted == split.labels


def reads_better(start_hits: np.ndarray, epoch_hits: np.ndarray) -> bool:
    """Whether an epoch reads the validation faces better than the run's starting model by more than chance.

    An exact one-sided McNemar test: of the faces exactly one of the two reads right, the epoch must win so
    many that a fair coin would do it with probability under SIGNIFICANCE. A few dozen faces a class make
    a one-face gain noise, and keeping such an epoch lost test accuracy (docs/model.md)."""
    from scipy.stats import binomtest

    start_hits, epoch_hits = np.asarray(start_hits, bool), np.asarray(epoch_hits, bool)
    won, lost = int(np.sum(epoch_hits & ~start_hits)), int(np.sum(start_hits & ~epoch_hits))
    return won > lost and bool(binomtest(won, won + lost, 0.5, alternative="greater").pvalue < SIGNIFICANCE)


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze everything but the heads; batch normalization stays frozen (see the module doc)."""
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        elif layer.name == HEAD:
            layer.trainable = True
        elif layer.weights:
            layer.trainable = trainable


def _leaf_layers(model: keras.Model) -> list:
    leaves = []
    for layer in model.layers:
        leaves += _leaf_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return leaves


def phases(config: TrainConfig, classes: tuple[str, ...]) -> list[Phase]:
    """The run's phases: the head alone first when the classes are new, then the whole network."""
    backbone_rate = config.learning_rate * config.backbone_rate
    if tuple(read_card(config.parent).classes) == tuple(classes):
        return [Phase(0, config.epochs, backbone_rate, True)]
    head = min(config.head_epochs, config.epochs)
    return ([Phase(0, head, config.learning_rate, False)] if head else []) + \
        ([Phase(head, config.epochs, backbone_rate, True)] if config.epochs > head else [])


def count_heads(path: str | Path) -> int:
    """How many networks a .keras file holds (its layers named HEAD), read from its config without
    loading any weights."""
    import json
    import zipfile

    def count(node) -> int:
        if isinstance(node, dict):
            here = node.get("class_name") == "Dense" and (node.get("config") or {}).get("name") == HEAD
            return int(here) + sum(count(value) for value in node.values())
        return sum(count(value) for value in node) if isinstance(node, list) else 0

    try:
        with zipfile.ZipFile(path) as archive:
            return max(count(json.loads(archive.read("config.json"))), 1)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return 1


def card_lineage(config: TrainConfig, classes: tuple[str, ...]) -> Lineage:
    """The `lineage` entry of a fine-tuned model's card."""
    card = read_card(config.parent)
    parent_members = count_heads(config.parent)
    members = min(config.parent_members, parent_members) if config.parent_members else parent_members
    return Lineage(parent=card.name, fingerprint=fingerprint(config.parent), path=str(config.parent),
                   parent_classes=tuple(card.classes), new_head=tuple(card.classes) != tuple(classes),
                   members=members, parent_members=parent_members,
                   recipe=(f"new head: {NEW_HEADS[config.new_head]}",) * (tuple(card.classes) != tuple(classes))
                   + tuple(phase.describe() for phase in phases(config, classes)))

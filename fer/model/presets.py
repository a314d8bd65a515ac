"""Model presets: the architectures a user can train, with rescaling and augmentation inside the model.

Every model takes 48×48×1 pixel values in 0..255 and returns class probabilities. Rescaling
and augmentation are Keras preprocessing layers in the model itself, so training and serving
cannot disagree (augmentation layers are identity at inference). Only `keras.*` and
`keras.ops` are used, so the same model also builds under the JAX backend.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import keras
from keras import layers

from fer.model.augmentation import CROP_AUGMENTATION, SEED_AUGMENTATION, Augmentation, preprocessing
from fer.errors import FerError
from fer.labels import CLASSES, IMAGE_SIZE


# Keras defaults to 0.99, whose moving statistics lag ~100 steps behind: on a few thousand images
# validation accuracy then sits at chance for epochs. 0.9 (PyTorch's default) tracks within ~10 steps.
BN_MOMENTUM = 0.9


def _seed_backbone(x):
    """The reference CNN (the `seed` preset, kept unchanged as the baseline): 3 × (Conv-BN-Pool-Dropout), Dense 512."""
    for filters in (64, 128, 256):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.Dropout(0.5)(x)


def _vgg_backbone(widths: tuple[int, ...], convs_per_stage: int = 2, dropout: float = 0.4):
    """VGG-style stages of (Conv-BN-ReLU)×n + MaxPool, then global average pooling."""

    def backbone(x):
        for filters in widths:
            for _ in range(convs_per_stage):
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
                x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
                x = layers.Activation("relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.GlobalAveragePooling2D()(x)
        return layers.Dropout(dropout)(x)

    return backbone


def _vgg_dense_backbone(widths: tuple[int, ...], dense: tuple[int, ...], dropout: float = 0.5):
    """VGG stages of (Conv-BN-ReLU)×2 + MaxPool, then flattened into fully connected layers (the VGG head)."""

    def backbone(x):
        for filters in widths:
            for _ in range(2):
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
                x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
                x = layers.Activation("relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.Flatten()(x)
        for units in dense:
            x = layers.Dropout(dropout)(x)
            x = layers.Dense(units, use_bias=False)(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = layers.Activation("relu")(x)
        return layers.Dropout(dropout)(x)

    return backbone


def _resnet_backbone(widths: tuple[int, ...] = (64, 128, 256, 512), blocks: int = 2):
    """ResNet-18 layout (4 stages × 2 basic blocks) with a 3×3 stem and no stem pooling: 48×48 faces are small."""

    def basic_block(x, filters, stride):
        shortcut = x
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = layers.BatchNormalization(momentum=BN_MOMENTUM)(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization(momentum=BN_MOMENTUM)(y)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
            shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM)(shortcut)
        return layers.Activation("relu")(layers.Add()([shortcut, y]))

    def backbone(x):
        x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.Activation("relu")(x)
        for stage, filters in enumerate(widths):
            for block in range(blocks):
                x = basic_block(x, filters, 2 if stage and not block else 1)  # (48 → 24 → 12 → 6)
        x = layers.GlobalAveragePooling2D()(x)
        return layers.Dropout(0.2)(x)

    return backbone


# The crop recipe's transforms on the whole 48×48 face: the full-face teachers keep every pixel.
FULL_FACE_AUGMENTATION = Augmentation(rotation_degrees=15.0, zoom=0.15, shift_pixels=4, contrast=0.2)


@dataclass(frozen=True)
class Preset:
    """A named architecture with the augmentation it was designed with."""

    name: str
    description: str
    backbone: object
    augmentation: Augmentation


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("seed", "Reference CNN: Conv 64/128/256 + BN + pool + dropout, Dense 512 (5.1M params)",
               _seed_backbone, SEED_AUGMENTATION),
        Preset("vgg40", "VGG-style 8 conv layers (32→256 filters) on random 40×40 crops, GAP head (1.2M params)",
               _vgg_backbone((32, 64, 128, 256)), CROP_AUGMENTATION),
        Preset("tiny", "Small fast CNN (16/32/64 filters) for demos and tests (25k params)",
               _vgg_backbone((16, 32, 64), convs_per_stage=1, dropout=0.2), SEED_AUGMENTATION),
        # Teachers and students for distillation (fer/train/distill.py); parameters and FLOPs in docs/model.md.
        Preset("vgg48", "VGG variant after Khaireddin & Chen 2021 on full 48×48 faces: 8 conv layers 64→512, "
                        "two dense 1024 layers (10.5M params)",
               _vgg_dense_backbone((64, 128, 256, 512), dense=(1024, 1024)), FULL_FACE_AUGMENTATION),
        Preset("resnet18", "ResNet-18 layout (4 stages × 2 residual blocks, 64→512 filters) on full 48×48 faces "
                           "(11.2M params)",
               _resnet_backbone(), FULL_FACE_AUGMENTATION),
        Preset("vgg40w", "vgg40 twice as wide (64→512 filters) on random 40×40 crops, GAP head (4.7M params)",
               _vgg_backbone((64, 128, 256, 512)), CROP_AUGMENTATION),
        Preset("vgg40s", "vgg40 half as wide (16→128 filters) on random 40×40 crops: a small student (0.3M params)",
               _vgg_backbone((16, 32, 64, 128), dropout=0.3), CROP_AUGMENTATION),
    )
}


def build_model(
    preset: str = "seed",
    *,
    num_classes: int = len(CLASSES),
    augmentation: Augmentation | None = None,
    dtype_policy: str = "float32",
) -> keras.Model:
    """Build an uncompiled model: 48×48×1 pixels (0..255) in, `num_classes` probabilities out.

    `augmentation` defaults to the preset's own; `dtype_policy="mixed_bfloat16"` computes in
    bfloat16 (the output layer always stays float32): 2.5× faster for the seed CNN under TensorFlow
    on a CPU with bf16 units, far slower on one without (docs/benchmarks.md).
    """
    if preset not in PRESETS:
        raise FerError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    augmentation = augmentation or spec.augmentation
    with _dtype_policy(dtype_policy):
        inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
        x = preprocessing(inputs, augmentation)
        x = spec.backbone(x)
        outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=preset)


@contextlib.contextmanager
def _dtype_policy(policy: str):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def transfer_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Copy the learned weights (conv, batch-norm, dense) of `source` into the same architecture.

    Lets a checkpoint saved by an older build of a preset move into the current build (e.g. a
    different augmentation wrapper) without retraining, and a shipped model wrapped for test-time
    views comes back as the plain network. Raises FerError if the layers differ.
    """
    sources, targets = _learned_layers(source), _learned_layers(target)
    shapes = [[w.shape for w in layer.weights] for layer in sources]
    if shapes != [[w.shape for w in layer.weights] for layer in targets]:
        raise FerError("the two models do not have the same learned layers; cannot move weights")
    for from_layer, to_layer in zip(sources, targets):
        to_layer.set_weights(from_layer.get_weights())
    return target


def _learned_layers(model: keras.Model) -> list:
    """The conv, batch-norm and dense layers of `model` in order, looking inside nested models."""
    learned = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            learned += _learned_layers(layer)
        elif isinstance(layer, (layers.Conv2D, layers.BatchNormalization, layers.Dense)):
            learned.append(layer)
    return learned


# --- Test-time augmentation ---------------------------------------------------------------------


def shifted_view(images, dx: int = 0, dy: int = 0, mirror: bool = False):
    """`images` (N, H, W, C) mirrored or not, then moved (dx, dy) pixels; the edge, mirrored, fills in."""
    ops = keras.ops
    x = ops.flip(images, axis=2) if mirror else images
    pad = max(abs(dx), abs(dy))
    if pad:
        height, width = images.shape[1], images.shape[2]
        x = ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        x = x[:, pad - dy:pad - dy + height, pad - dx:pad - dx + width, :]
    return x


@keras.saving.register_keras_serializable(package="fer")
class TestTimeViews(layers.Layer):
    """Stacks the views of a batch along the batch axis: (N, …) in, (V·N, …) out, view-major."""

    def __init__(self, views=(), **kwargs):
        super().__init__(**kwargs)
        self.views = [(int(dx), int(dy), bool(mirror)) for dx, dy, mirror in views]

    def call(self, inputs):
        return keras.ops.concatenate([shifted_view(inputs, *view) for view in self.views], axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "views": self.views}


@keras.saving.register_keras_serializable(package="fer")
class MeanOverViews(layers.Layer):
    """Undoes TestTimeViews' stacking by averaging: (V·N, K) in, (N, K) out."""

    def __init__(self, count=1, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)

    def call(self, inputs):
        ops = keras.ops
        return ops.mean(ops.reshape(inputs, (self.count, -1, inputs.shape[-1])), axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "count": self.count}


def tta_views(shift: int = 0) -> tuple[tuple[int, int, bool], ...]:
    """(dx, dy, mirror) views: the image and its mirror; with `shift`, each also moved ±shift pixels."""
    offsets = [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])
    return tuple((dx, dy, mirror) for mirror in (False, True) for dx, dy in offsets)


def with_test_time_augmentation(model: keras.Model, views) -> keras.Model:
    """Wrap `model` so that its output is the mean of its probabilities over `views`.

    The wrapper is an ordinary model with the same input and output, so everything that serves a
    model (Predict, evaluate, webcam) serves it; it costs one forward pass per view. The views go
    through `model` as one stacked batch.
    """
    views = list(views)
    inputs = keras.Input(model.input_shape[1:], name="pixels")
    stacked = TestTimeViews(views, name="views")(inputs)
    outputs = MeanOverViews(len(views), name="mean_over_views")(model(stacked))
    return keras.Model(inputs, outputs, name=f"{model.name}_tta{len(views)}")


# --- Ensembles ----------------------------------------------------------------------------------


def ensemble(members) -> keras.Model:
    """One model whose output is the mean of the `members`' probabilities.

    The members must take the same input and give the same classes in the same order (snapshots
    of one run, say). Each is wrapped under a unique name (member_1, …) so the ensemble saves as one
    .keras file even when the members share a preset's name; one member comes back unchanged.
    """
    members = list(members)
    if not members:
        raise FerError("an ensemble needs at least one model")
    if len(members) == 1:
        return members[0]
    shapes = {(member.input_shape[1:], member.output_shape[1:]) for member in members}
    if len(shapes) > 1:
        raise FerError(f"ensemble members disagree on input or output shape: {sorted(shapes)}")
    inputs = keras.Input(members[0].input_shape[1:], name="pixels")
    renamed = [keras.Model(member.input, member.output, name=f"member_{index}")
               for index, member in enumerate(members, start=1)]
    outputs = layers.Average(name="mean_over_members")([member(inputs) for member in renamed])
    return keras.Model(inputs, outputs, name=f"ensemble_of_{len(members)}")

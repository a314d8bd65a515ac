"""The augmentation: which random transforms training applies, and the layers that apply them.

They are layers inside each model (identity at inference), so training and serving cannot disagree.
`SEED_AUGMENTATION` is the seed recipe's (rotation 20°, zoom 20%, flip); the Train page's sliders,
the CLI and the presets all start from these records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers

from fer.labels import IMAGE_SIZE


@dataclass(frozen=True)
class Augmentation:
    """Random transforms applied during training only."""

    rotation_degrees: float = 20.0  # The seed recipe: ±20°.
    zoom: float = 0.2  # ±20% zoom.
    horizontal_flip: bool = True  # Expressions are left-right symmetric.
    shift_pixels: int = 0  # Random translation; with crop_size it makes random crops.
    crop_size: int = 0  # 0 keeps 48×48; else the centre crop_size² the network sees.
    contrast: float = 0.0  # Random contrast factor (0 = off).
    # Random erasing (Zhong et al. 2017): the chance that one rectangle of 2–25% of the face, aspect
    # 0.3–3.3, is filled with noise; a regulariser FER papers credit. 0 = off.
    erasing: float = 0.0

    @property
    def network_size(self) -> int:
        return self.crop_size or IMAGE_SIZE


SEED_AUGMENTATION = Augmentation()
# Random 40×40 crops: 30% fewer pixels per image than 48×48 and a strong regulariser.
CROP_AUGMENTATION = Augmentation(rotation_degrees=15.0, zoom=0.15, shift_pixels=4, crop_size=40, contrast=0.2)
NO_AUGMENTATION = Augmentation(rotation_degrees=0.0, zoom=0.0, horizontal_flip=False)


@keras.saving.register_keras_serializable(package="fer")
class FaceAugmentation(layers.Layer):
    """Random flip, rotation, zoom and shift as ONE affine warp, plus contrast; only when training.

    Keras's RandomFlip/RandomRotation/RandomZoom each resample the batch; composing them into a
    single transform costs one resample instead of three. Keras's random layers also default to
    training=True when a model is called directly (`model(x)`); this layer defaults to False.
    """

    def __init__(self, rotation_degrees=0.0, zoom=0.0, horizontal_flip=False, shift_pixels=0, contrast=0.0,
                 erasing=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.settings = dict(rotation_degrees=rotation_degrees, zoom=zoom, horizontal_flip=horizontal_flip,
                             shift_pixels=shift_pixels, contrast=contrast, erasing=erasing, seed=seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        ops, random = keras.ops, keras.random
        batch = ops.shape(inputs)[0]
        height, width = inputs.shape[1], inputs.shape[2]

        def uniform(low, high):
            return random.uniform((batch,), low, high, seed=self.seed_generator)

        settings = self.settings
        angle = uniform(-1.0, 1.0) * (settings["rotation_degrees"] * 3.141592653589793 / 180)
        scale = uniform(1 - settings["zoom"], 1 + settings["zoom"])  # Below 1 zooms in.
        flip = ops.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0) if settings["horizontal_flip"] else ops.ones((batch,))
        shift_x = uniform(-1.0, 1.0) * settings["shift_pixels"]
        shift_y = uniform(-1.0, 1.0) * settings["shift_pixels"]
        # Each output pixel p samples the input at M·(p − centre) + centre + shift, M = scale·R(angle)·F.
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
        cx, cy = (width - 1) / 2, (height - 1) / 2
        a2 = cx - a0 * cx - a1 * cy + shift_x
        b2 = cy - b0 * cx - b1 * cy + shift_y
        zeros = ops.zeros((batch,))
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        images = ops.image.affine_transform(ops.cast(inputs, "float32"), transform, interpolation="bilinear",
                                            fill_mode="nearest")
        if settings["contrast"]:
            factor = ops.reshape(uniform(1 - settings["contrast"], 1 + settings["contrast"]), (-1, 1, 1, 1))
            mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
            images = ops.clip((images - mean) * factor + mean, 0.0, 1.0)
        if settings["erasing"]:
            images = self._erase(images, uniform)
        return ops.cast(images, inputs.dtype)

    def _erase(self, images, uniform):
        """Fill one random rectangle of each chosen image with uniform noise (random erasing)."""
        ops = keras.ops
        height, width = images.shape[1], images.shape[2]
        area = uniform(0.02, 0.25) * height * width
        aspect = ops.exp(uniform(-1.2, 1.2))  # log-uniform in 0.3..3.3
        half_height = ops.sqrt(area * aspect) / 2
        half_width = ops.sqrt(area / aspect) / 2
        centre_y, centre_x = uniform(0.0, height - 1.0), uniform(0.0, width - 1.0)
        chosen = ops.cast(uniform(0.0, 1.0) < self.settings["erasing"], "float32")

        def column(values):  # (N,) → (N, 1, 1, 1), to broadcast over pixels.
            return ops.reshape(values, (-1, 1, 1, 1))

        rows = ops.reshape(ops.arange(height, dtype="float32"), (1, -1, 1, 1))
        cols = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, -1, 1))
        inside = (ops.abs(rows - column(centre_y)) <= column(half_height)) & \
            (ops.abs(cols - column(centre_x)) <= column(half_width))
        mask = ops.cast(inside, "float32") * column(chosen)
        noise = keras.random.uniform(ops.shape(images), seed=self.seed_generator)
        return images * (1 - mask) + noise * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **self.settings}


@keras.saving.register_keras_serializable(package="fer")
class CentreCrop(layers.Layer):
    """The centre size×size pixels of each image.

    Not keras.layers.CenterCrop: its `call(training=True)` default leaks into the call context,
    so a direct `model(x)` then ran batch norm and dropout in training mode.
    """

    def __init__(self, size=40, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, inputs):
        top = (inputs.shape[1] - self.size) // 2
        left = (inputs.shape[2] - self.size) // 2
        return inputs[:, top:top + self.size, left:left + self.size, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, *input_shape[3:])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def preprocessing(inputs, augmentation: Augmentation):
    """Rescale 0..255 pixels to 0..1, then augment (training only) and crop as `augmentation` says."""
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    settings = {k: v for k, v in asdict(augmentation).items() if k != "crop_size"}
    x = FaceAugmentation(**settings, name="augment")(x)
    if augmentation.crop_size:
        # A centre crop in both modes: after the random shift above it is a random crop in training.
        x = CentreCrop(augmentation.crop_size, name="crop")(x)
    return x

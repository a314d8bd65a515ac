"""Grad-CAM: where in a face the evidence for a class lies (Selvaraju et al., 2017).

For each network in a model, the gradient of the class's logit with respect to the last
convolutional feature map, averaged over space, weighs that map's channels; their weighted sum,
clipped at zero, is the heat map. An ensemble's map is the mean of its networks' maps. A network
that sees a centre crop (vgg40: 40×40 of the 48×48 face) has its map put back at the crop's place,
with zero where the network does not look. Needs gradients, so it runs on the Keras model
(TensorFlow backend), never on the ONNX serving runtime.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import keras
import numpy as np

from fer.errors import FerError
from fer.labels import IMAGE_SIZE
from fer.model.augmentation import CentreCrop

BATCH_SIZE = 128  # Gradients keep every activation alive; 128 faces of vgg40 fit in ~0.5 GB.


class Heatmaps(NamedTuple):
    """Grad-CAM maps of a batch of faces for one class each."""

    maps: np.ndarray  # (N, 48, 48) float32 in 0..1, 1 at each face's strongest evidence
    classes: np.ndarray  # (N,) the class index each map explains
    probabilities: np.ndarray  # (N, C) the whole model's probabilities


class _Probe(NamedTuple):
    """One network cut open: pixels in, (last feature map, penultimate features) out."""

    model: keras.Model
    kernel: object  # The output layer's weights: logits = penultimate · kernel + bias.
    bias: object
    crop: int  # Side of the centre crop the network sees (48 when it sees all).


def networks(model: keras.Model) -> list[keras.Model]:
    """The innermost networks of `model`: its ensemble members (or the network a test-time wrapper
    holds), or the model itself when it nests none."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if not nested:
        return [model]
    return [network for layer in nested for network in networks(layer)]


class GradCam:
    """Grad-CAM for every network of `model`; call it on (N, 48, 48[, 1]) uint8 faces."""

    def __init__(self, model: keras.Model):
        if keras.backend.backend() != "tensorflow":
            raise FerError(f"Grad-CAM needs Keras's TensorFlow backend; this process runs {keras.backend.backend()}")
        self.model = model
        self.probes = [_probe(network) for network in networks(model)]

    def __call__(self, images: np.ndarray, classes: Sequence[int] | None = None, *,
                 batch_size: int = BATCH_SIZE) -> Heatmaps:
        """Heat maps for `classes` (default: each face's predicted class), (N, 48, 48) in 0..1."""
        pixels = _as_batch(images)
        probabilities = np.concatenate([
            np.asarray(self.model.predict_on_batch(pixels[start:start + batch_size]), np.float32)
            for start in range(0, len(pixels), batch_size)
        ]) if len(pixels) else np.zeros((0, int(self.model.output_shape[-1])), np.float32)
        targets = probabilities.argmax(axis=1) if classes is None else np.asarray(classes, int)
        if len(targets) != len(pixels):
            raise ValueError(f"{len(pixels)} faces but {len(targets)} classes")
        maps = np.zeros((len(pixels), IMAGE_SIZE, IMAGE_SIZE), np.float32)
        for start in range(0, len(pixels), batch_size):
            window = slice(start, start + batch_size)
            member_maps = [_normalise(_face_map(probe, pixels[window], targets[window])) for probe in self.probes]
            maps[window] = _normalise(np.mean(member_maps, axis=0))
        return Heatmaps(maps, targets, probabilities)


def _probe(network: keras.Model) -> _Probe:
    output = network.layers[-1]
    if not isinstance(output, keras.layers.Dense):
        raise FerError(f"cannot explain network '{network.name}': its last layer is not a dense class layer")
    feature_layer = None
    for layer in network.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization, keras.layers.Activation)) \
                and len(layer.output.shape) == 4:
            feature_layer = layer  # The last convolutional stage before pooling to a vector.
    if feature_layer is None:
        raise FerError(f"cannot explain network '{network.name}': it has no convolutional layers")
    crops = [layer.size for layer in network.layers if isinstance(layer, CentreCrop)]
    probe = keras.Model(network.inputs, [feature_layer.output, output.input], name=f"{network.name}_gradcam")
    return _Probe(probe, output.kernel, output.bias, crops[-1] if crops else IMAGE_SIZE)


def _face_map(probe: _Probe, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(n, 48, 48) raw Grad-CAM of one network, placed where its crop sits in the face."""
    import tensorflow as tf

    inputs = tf.convert_to_tensor(pixels)
    with tf.GradientTape() as tape:
        features, penultimate = probe.model(inputs, training=False)  # (n, h, w, k), (n, d)
        logits = tf.matmul(tf.cast(penultimate, tf.float32), tf.cast(probe.kernel, tf.float32)) + probe.bias
        chosen = tf.gather(logits, targets, axis=1, batch_dims=1)  # (n,)
    gradients = tape.gradient(chosen, features)  # (n, h, w, k)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # (n, 1, 1, k)
    cams = tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1)).numpy()  # (n, h, w)
    offset = (IMAGE_SIZE - probe.crop) // 2
    placed = np.zeros((len(cams), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for index, cam in enumerate(cams):
        placed[index, offset:offset + probe.crop, offset:offset + probe.crop] = cv2.resize(
            cam, (probe.crop, probe.crop), interpolation=cv2.INTER_LINEAR)
    return placed


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its maximum (maps with no positive evidence stay zero)."""
    peaks = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0).astype(np.float32)


def _as_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise FerError(f"expected 48×48 grayscale faces, got an array of shape {images.shape}")
    return images.astype(np.float32)  # The model rescales 0..255 itself.


def overlay(face: np.ndarray, heatmap: np.ndarray, *, strength: float = 0.45) -> np.ndarray:
    """The face (48×48 uint8) with its heat map blended over it in the jet colour map: (48, 48, 3) RGB uint8."""
    gray = np.asarray(face, np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
    colours = cv2.applyColorMap(np.uint8(np.clip(heatmap, 0, 1) * 255), cv2.COLORMAP_JET)[..., ::-1]
    base = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    return np.uint8(np.clip((1 - strength) * base + strength * colours, 0, 255))


def hottest_square(heatmap: np.ndarray, size: int, *, coldest: bool = False,
                   within: np.ndarray | None = None) -> tuple[int, int]:
    """(top, left) of the size×size square with the most (or least) heat, optionally only squares
    wholly inside the boolean mask `within`."""
    sums = cv2.boxFilter(heatmap.astype(np.float32), -1, (size, size), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)
    half = size // 2
    tops = np.arange(IMAGE_SIZE - size + 1)
    scores = sums[tops[:, None] + half, tops[None, :] + half]  # Square (t, l) is centred at (t+half, l+half).
    if within is not None:
        inside = cv2.boxFilter(within.astype(np.float32), -1, (size, size), normalize=False,
                               borderType=cv2.BORDER_CONSTANT)[tops[:, None] + half, tops[None, :] + half]
        scores = np.where(inside >= size * size - 0.5, scores, np.nan)
    flat = np.nanargmin(scores) if coldest else np.nanargmax(scores)
    top, left = np.unravel_index(flat, scores.shape)
    return int(top), int(left)

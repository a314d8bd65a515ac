"""What the network sees and learned: its augmented inputs, and a 2-D map of its penultimate features.

Keras is imported inside the two functions that run a network, so a page can read this module's
settings (MAX_POINTS) and draw its widgets without loading TensorFlow.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from fer.errors import FerError

if TYPE_CHECKING:
    import keras

    from fer.model.augmentation import Augmentation

MAX_POINTS = 2000  # t-SNE on 2,000 points takes seconds; more points only blur the picture.
BATCH_SIZE = 256
Progress = Callable[[float, str], None]  # (fraction done, message)


# --- Augmentation preview ---------------------------------------------------------------------


def augmented_examples(images: np.ndarray, augmentation: Augmentation, *, copies: int = 4,
                       seed: int = 0) -> np.ndarray:
    """(N, copies, S, S) uint8: each face as training sees it, `copies` random draws, through the same
    rescale → FaceAugmentation → crop layers every model starts with (S is the network's input side)."""
    import keras

    from fer.model.augmentation import preprocessing

    if copies < 1:
        raise FerError(f"copies must be at least 1, got {copies}")
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    saved = random.getstate()
    random.seed(seed)  # Keras seeds an unseeded layer from Python's generator: a fixed draw, reproducible.
    try:
        inputs = keras.Input(images.shape[1:])
        layers = keras.Model(inputs, preprocessing(inputs, augmentation))
    finally:
        random.setstate(saved)
    repeated = np.repeat(images.astype(np.float32), copies, axis=0)  # (N·copies, 48, 48, 1)
    seen = np.asarray(layers(repeated, training=True))  # 0..1, (N·copies, S, S, 1)
    side = seen.shape[1]
    return np.uint8(np.clip(seen * 255, 0, 255).round()).reshape(len(images), copies, side, side)


# --- Penultimate features ---------------------------------------------------------------------


def penultimate_features(model: keras.Model, images: np.ndarray, *, batch_size: int = BATCH_SIZE,
                         progress: Progress | None = None) -> np.ndarray:
    """(N, D) float32: the vector each network hands its class layer, side by side for an ensemble."""
    import keras

    from fer.explain.gradcam import networks

    probes = []
    for network in networks(model):
        output = network.layers[-1]
        if not isinstance(output, keras.layers.Dense):
            raise FerError(f"cannot read features of network '{network.name}': its last layer is not a dense layer")
        probes.append(keras.Model(network.inputs, output.input))
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        chunks.append(np.concatenate([np.asarray(probe.predict_on_batch(batch)) for probe in probes], axis=1))
        if progress is not None:
            done = min(start + batch_size, len(images))
            progress(done / len(images), f"features of {done:,} / {len(images):,} faces")
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), np.float32)


def capped_sample(labels: np.ndarray, cap: int = MAX_POINTS, *, seed: int = 0) -> np.ndarray:
    """Sorted indexes of exactly `cap` images (all of them when there are fewer), each class keeping its
    share (at least one image each): the map then shows as many faces as were asked for."""
    labels = np.asarray(labels)
    if len(labels) <= cap:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    names, sizes = np.unique(labels, return_counts=True)
    quota = cap * sizes / sizes.sum()
    take = np.minimum(np.maximum(np.floor(quota).astype(int), 1), sizes)
    while take.sum() < cap:  # Largest remainders first, as seats are shared out in proportion.
        room = np.where(take < sizes, quota - take, -np.inf)
        take[int(np.argmax(room))] += 1
    while take.sum() > cap:  # One each for more classes than `cap` allows: trim the biggest.
        take[int(np.argmax(take))] -= 1
    chosen = [rng.choice(np.flatnonzero(labels == name), count, replace=False)
              for name, count in zip(names, take) if count > 0]
    return np.sort(np.concatenate(chosen))


class FeatureMap(NamedTuple):
    """2-D coordinates of sampled images' features."""

    indexes: np.ndarray  # (M,) positions in the split
    points: np.ndarray  # (M, 2)
    method: str  # "pca" or "tsne"
    explained: float | None  # PCA: share of the variance the two axes keep


def feature_map(features: np.ndarray, indexes: np.ndarray, *, method: str = "pca", seed: int = 0) -> FeatureMap:
    """Project `features` (M, D) of the images at `indexes` to 2-D with PCA or t-SNE (scikit-learn)."""
    from sklearn.decomposition import PCA

    features = np.asarray(features, np.float32)
    if len(features) < 3:
        raise FerError("a feature map needs at least 3 images")
    if method == "pca":
        pca = PCA(2, random_state=seed).fit(features)
        return FeatureMap(np.asarray(indexes), pca.transform(features), method,
                          float(pca.explained_variance_ratio_.sum()))
    if method == "tsne":
        from sklearn.manifold import TSNE

        # PCA to 50 dimensions first, as the t-SNE authors advise: faster and less noisy.
        reduced = PCA(min(50, *features.shape), random_state=seed).fit_transform(features)
        perplexity = min(30.0, (len(features) - 1) / 3)
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
        return FeatureMap(np.asarray(indexes), points, method, None)
    raise FerError(f"unknown map method '{method}'; choose pca or tsne")

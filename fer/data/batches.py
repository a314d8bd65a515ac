"""Keras input from NumPy arrays, for the backends that train without TensorFlow's tf.data."""

from __future__ import annotations

import keras
import numpy as np

from fer.errors import FerError


class ArrayBatches(keras.utils.PyDataset):
    """Batches of (float32 images 0..255, one-hot labels) from uint8 images and integer labels,
    in a new seeded order each epoch when `shuffle` is set (as `Dataset.tf_data` gives them)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, *,
                 batch_size: int = 64, shuffle: bool = False, seed: int = 0):
        super().__init__()
        self.images, self.labels = images, np.asarray(labels)
        self.one_hot = np.eye(num_classes, dtype="float32")
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self._new_order()

    def _new_order(self) -> np.ndarray:
        return self.rng.permutation(len(self.labels)) if self.shuffle else np.arange(len(self.labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.images[rows].astype("float32"), self.one_hot[self.labels[rows]]

    def on_epoch_end(self) -> None:
        self.order = self._new_order()


class ProcessShare(keras.utils.PyDataset):
    """This process's rows of each global batch, with the batch cut to a multiple of the device count.

    JAX shards a batch evenly over the devices, so a batch that does not divide loses its last
    rows (at most devices − 1 images; which ones changes every epoch with the shuffle)."""

    def __init__(self, batches: keras.utils.PyDataset, devices: int, processes: int, process_id: int):
        super().__init__()
        self.batches, self.devices, self.processes, self.process_id = batches, devices, processes, process_id

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        images, labels = self.batches[index]
        usable = len(labels) // self.devices * self.devices
        if usable == 0:
            raise FerError(f"a batch of {len(labels)} images cannot be split over {self.devices} devices: "
                           f"use a batch size of at least {self.devices}")
        share = usable // self.processes
        rows = slice(self.process_id * share, (self.process_id + 1) * share)
        return np.asarray(images[:usable][rows]), np.asarray(labels[:usable][rows])

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()

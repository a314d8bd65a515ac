"""Batches of arrays for Keras (fer.data.batches.ArrayBatches): every image once per epoch, in a seeded order."""

import numpy as np

from fer.data.datasets import open_dataset


def test_array_batches_cover_every_image_once_per_epoch_in_a_new_seeded_order():
    from fer.data.batches import ArrayBatches

    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 48, 48, 1), np.uint8)
    labels = np.arange(10) % 7
    batches = ArrayBatches(images, labels, 7, batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 3

    def epoch():
        rows = [batches[i] for i in range(len(batches))]
        order = np.concatenate([x[:, 0, 0, 0] for x, _ in rows]).astype(int)
        assert all(x.dtype == np.float32 and y.dtype == np.float32 for x, y in rows)
        np.testing.assert_array_equal(np.concatenate([y for _, y in rows]), np.eye(7)[labels[order]])
        batches.on_epoch_end()
        return order

    first, second = epoch(), epoch()
    assert sorted(first) == sorted(second) == list(range(10)) and list(first) != list(second)
    assert list(ArrayBatches(images, labels, 7, batch_size=4, shuffle=True, seed=0)[0][0][:, 0, 0, 0]) == \
        list(first[:4])  # The same seed gives the same order.
    plain = ArrayBatches(images, labels, 7, batch_size=4)
    assert list(plain[2][0][:, 0, 0, 0]) == [8, 9]


def test_array_batches_train_a_keras_model(kaggle_folder):
    import keras

    from fer.data.batches import ArrayBatches

    dataset = open_dataset(kaggle_folder)
    images, labels = dataset.arrays("train")
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(7, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(ArrayBatches(images, labels, 7, batch_size=8, shuffle=True), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()

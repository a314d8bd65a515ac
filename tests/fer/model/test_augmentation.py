"""Augmentation layers (fer.model.augmentation): off at inference, on in training, warping as they say."""

import keras
import numpy as np

from fer.model.presets import build_model


def test_augmentation_is_off_at_inference_and_on_in_training():
    model = build_model("seed")
    pixels = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    first, second = model(pixels), model(pixels, training=False)  # A plain call must not augment.
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    augmenter = keras.Model(model.input, model.get_layer("augment").output)
    assert not np.allclose(np.asarray(augmenter(pixels, training=True)), pixels / 255)
    np.testing.assert_allclose(np.asarray(augmenter(pixels)), pixels / 255, atol=1e-6)


def test_augmentation_warps_a_face_the_way_it_says():
    from fer.model.augmentation import FaceAugmentation
    from fer.data.synthetic import make_faces

    faces = make_faces(2, seed=0)[0][..., None].astype("float32") / 255
    flip_only = FaceAugmentation(horizontal_flip=True, seed=1)(faces, training=True)
    for original, flipped in zip(faces, np.asarray(flip_only)):
        assert np.allclose(flipped, original, atol=1e-5) or np.allclose(flipped, original[:, ::-1], atol=1e-5)
    rotated = np.asarray(FaceAugmentation(rotation_degrees=20, zoom=0.2, seed=1)(faces, training=True))
    assert rotated.shape == faces.shape
    assert 0.01 < np.abs(rotated - faces).mean() < 0.2  # Changed, but still the same face.


def test_random_erasing_fills_one_rectangle_of_each_chosen_face_with_noise_in_training_only():
    from fer.model.augmentation import FaceAugmentation

    faces = np.full((16, 48, 48, 1), 0.5, dtype="float32")
    erased = keras.ops.convert_to_numpy(FaceAugmentation(erasing=1.0, seed=1)(faces, training=True))
    changed = (np.abs(erased - 0.5) > 1e-6).reshape(16, -1).mean(axis=1)
    assert np.all(changed > 0.005) and np.all(changed < 0.3)  # One rectangle of 2–25% of the face (edges clip it).
    rows, cols = np.nonzero(np.abs(erased[0, ..., 0] - 0.5) > 1e-6)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert len(rows) > 0.9 * box  # A filled rectangle, not scattered pixels.
    assert np.array_equal(keras.ops.convert_to_numpy(FaceAugmentation(erasing=1.0)(faces)), faces)  # Inference.
    untouched = keras.ops.convert_to_numpy(FaceAugmentation(erasing=0.0, seed=1)(faces, training=True))
    assert np.allclose(untouched, faces)

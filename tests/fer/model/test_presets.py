"""Model presets (the seed CNN exactly as specified), augmentation inside the model, save/load."""

import keras
import numpy as np
import pytest

from fer.errors import FerError
from fer.model.cards import ModelCard
from fer.model.presets import PRESETS, build_model
from fer.model.files import load_model, save_model


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_seed_cnn_is_the_reference_architecture():
    model = build_model("seed")
    convs = layers_of(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [64, 128, 256]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert len(layers_of(model, keras.layers.BatchNormalization)) == 4
    assert len(layers_of(model, keras.layers.MaxPooling2D)) == 3
    assert len(layers_of(model, keras.layers.Dropout)) == 4
    assert len(layers_of(model, keras.layers.Flatten)) == 1
    dense = layers_of(model, keras.layers.Dense)
    assert [d.units for d in dense] == [512, 7]
    assert dense[-1].activation.__name__ == "softmax"
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)


def test_seed_augmentation_and_rescaling_live_in_the_model():
    model = build_model("seed")
    rescale = model.get_layer("rescale")
    assert rescale.scale == pytest.approx(1 / 255)
    settings = model.get_layer("augment").get_config()
    assert settings["horizontal_flip"] is True
    assert settings["rotation_degrees"] == 20 and settings["zoom"] == pytest.approx(0.2)  # ±20°, ±20%
    assert settings["shift_pixels"] == 0 and settings["contrast"] == 0


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_maps_pixels_to_probabilities(preset):
    model = build_model(preset, num_classes=5)
    probabilities = np.asarray(model(np.zeros((2, 48, 48, 1), "float32")))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_crop_preset_sees_a_40_pixel_centre_crop():
    model = build_model("vgg40")
    assert model.get_layer("crop").output.shape[1:3] == (40, 40)
    pixels = np.random.default_rng(4).integers(0, 256, (2, 48, 48, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model.get_layer("crop")(pixels)), pixels[:, 4:44, 4:44])


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_calling_a_model_directly_is_inference(preset):
    # Batch norm in training mode would make each image's output depend on the rest of its batch.
    model = build_model(preset)
    pixels = np.random.default_rng(5).integers(0, 256, (6, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(pixels))[:2], np.asarray(model(pixels[:2])), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(pixels)), model.predict(pixels, verbose=0), rtol=1e-5, atol=1e-6)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(FerError, match="unknown preset 'resnet9000'; choose one of: seed"):
        build_model("resnet9000")


def test_transfer_weights_moves_a_model_into_a_fresh_build():
    from fer.model.presets import transfer_weights
    from fer.model.augmentation import NO_AUGMENTATION

    trained = build_model("tiny")
    pixels = np.random.default_rng(2).integers(0, 256, (3, 48, 48, 1)).astype("float32")
    rebuilt = transfer_weights(trained, build_model("tiny", augmentation=NO_AUGMENTATION))
    np.testing.assert_allclose(np.asarray(trained(pixels)), np.asarray(rebuilt(pixels)), rtol=1e-6)
    with pytest.raises(FerError, match="not have the same learned layers"):
        transfer_weights(trained, build_model("seed"))


def test_transfer_weights_unwraps_a_model_shipped_with_test_time_views():
    from fer.model.presets import ensemble, transfer_weights, tta_views, with_test_time_augmentation

    trained = build_model("tiny")
    pixels = np.random.default_rng(3).integers(0, 256, (3, 48, 48, 1)).astype("float32")
    shipped = with_test_time_augmentation(trained, tta_views())
    plain = transfer_weights(shipped, build_model("tiny"))
    np.testing.assert_allclose(np.asarray(trained(pixels)), np.asarray(plain(pixels)), rtol=1e-6)
    with pytest.raises(FerError, match="not have the same learned layers"):  # Two members' layers.
        transfer_weights(ensemble([trained, build_model("tiny")]), build_model("tiny"))


def test_shifted_view_moves_and_mirrors_pixels():
    from fer.model.presets import shifted_view

    image = np.arange(48 * 48, dtype="float32").reshape(1, 48, 48, 1)
    right = np.asarray(shifted_view(image, dx=2))
    np.testing.assert_array_equal(right[0, :, 2:], image[0, :, :-2])  # Content moved 2 pixels right.
    np.testing.assert_array_equal(right[0, :, :2], image[0, :, 1::-1])  # The edge, mirrored, fills in.
    up_mirrored = np.asarray(shifted_view(image, dy=-3, mirror=True))
    np.testing.assert_array_equal(up_mirrored[0, :-3], image[0, 3:, ::-1])


def test_tta_model_averages_the_views_and_round_trips(tmp_path):
    from fer.evaluate.scoring import mirror
    from fer.model.presets import shifted_view, tta_views, with_test_time_augmentation

    base = build_model("vgg40")
    pixels = np.random.default_rng(3).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    flip = with_test_time_augmentation(base, tta_views())
    expected = (np.asarray(base(pixels)) + np.asarray(base(mirror(pixels)))) / 2
    np.testing.assert_allclose(np.asarray(flip(pixels)), expected, rtol=1e-5, atol=1e-6)
    assert len(tta_views(shift=2)) == 10 and flip.input_shape == base.input_shape
    crops = with_test_time_augmentation(base, tta_views(shift=2))
    views = [shifted_view(pixels, *view) for view in tta_views(shift=2)]
    expected = np.mean([np.asarray(base(view)) for view in views], axis=0)
    np.testing.assert_allclose(np.asarray(crops(pixels)), expected, rtol=1e-5, atol=1e-6)
    path = save_model(crops, tmp_path / "tta", ModelCard(name="tta", preset="vgg40"))
    loaded, _ = load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(pixels)), np.asarray(crops(pixels)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(loaded(pixels)).sum(axis=1), 1.0, rtol=1e-5)


def test_ensemble_averages_its_members_and_round_trips(tmp_path):
    from fer.model.presets import ensemble, transfer_weights, tta_views, with_test_time_augmentation

    first = build_model("tiny")
    second = transfer_weights(first, build_model("tiny"))  # Same name, same weights…
    second.layers[-1].set_weights([w * 2 for w in second.layers[-1].get_weights()])  # …then different ones.
    pixels = np.random.default_rng(4).integers(0, 256, (5, 48, 48, 1)).astype("float32")
    both = ensemble([first, second])
    expected = (np.asarray(first(pixels)) + np.asarray(second(pixels))) / 2
    assert not np.allclose(np.asarray(first(pixels)), np.asarray(second(pixels)))
    np.testing.assert_allclose(np.asarray(both(pixels)), expected, rtol=1e-5, atol=1e-6)
    assert ensemble([first]) is first
    shipped = with_test_time_augmentation(both, tta_views())
    path = save_model(shipped, tmp_path / "ensemble", ModelCard(name="ensemble", preset="tiny"))
    loaded, _ = load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(pixels)), np.asarray(shipped(pixels)), rtol=1e-5, atol=1e-6)
    with pytest.raises(FerError, match="at least one"):
        ensemble([])
    with pytest.raises(FerError, match="disagree"):
        ensemble([first, build_model("tiny", num_classes=3)])


@pytest.mark.parametrize("preset", ["vgg48", "resnet18", "vgg40w", "vgg40s"])
def test_the_new_presets_map_48x48_pixels_to_7_probabilities(preset):
    model = build_model(preset)
    faces = np.random.default_rng(0).integers(0, 256, size=(2, 48, 48, 1)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(faces))
    assert probabilities.shape == (2, 7)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)

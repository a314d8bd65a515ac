"""Model presets (the seed CNN exactly as specified), augmentation inside the model, save/load."""

import json

import keras
import numpy as np
import pytest

from fer.errors import FerError
from fer.model.cards import ModelCard, read_card, write_card
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


def test_augmentation_is_off_at_inference_and_on_in_training():
    model = build_model("seed")
    pixels = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    first, second = model(pixels), model(pixels, training=False)  # A plain call must not augment.
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    augmenter = keras.Model(model.input, model.get_layer("augment").output)
    assert not np.allclose(np.asarray(augmenter(pixels, training=True)), pixels / 255)
    np.testing.assert_allclose(np.asarray(augmenter(pixels)), pixels / 255, atol=1e-6)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_maps_pixels_to_probabilities(preset):
    model = build_model(preset, num_classes=5)
    probabilities = np.asarray(model(np.zeros((2, 48, 48, 1), "float32")))
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


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


def test_save_and_load_round_trip_gives_identical_predictions(tmp_path):
    model = build_model("seed")
    pixels = np.random.default_rng(1).integers(0, 256, (8, 48, 48, 1)).astype("float32")
    path = save_model(model, tmp_path / "m", ModelCard(name="m", preset="seed", classes=tuple("abcdefg")))
    assert path.suffix == ".keras" and path.with_suffix(".json").exists()
    loaded, card = load_model(path)
    np.testing.assert_array_equal(np.asarray(model(pixels)), np.asarray(loaded(pixels)))
    assert card.preset == "seed" and card.input_size == (48, 48, 1) and card.created
    assert card == read_card(path) and card.classes == tuple("abcdefg")
    assert json.loads(path.with_suffix(".json").read_text())["classes"] == list("abcdefg")
    assert not list(tmp_path.glob(".*"))  # The temporary files of the atomic writes are gone.


def test_loading_something_that_is_not_a_model(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(FerError, match="junk.keras is not a Keras model FER Studio can load"):
        load_model(junk)
    with pytest.raises(FerError, match="does not exist"):
        load_model(tmp_path / "absent.keras")


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


def test_model_label_names_preset_and_validation_accuracy():
    card = ModelCard.from_dict({"name": "m", "preset": "seed", "metrics": {"validation": {"accuracy": 0.651}}})
    assert card.label == "m · seed · val acc 65.1%"
    assert ModelCard(name="bare").label == "bare"


def test_a_card_keeps_fields_it_does_not_know_and_reads_missing_ones_as_unset(tmp_path):
    values = {"name": "m", "classes": ["x", "y"], "future_field": {"a": 1}, "metrics": {"train": {"accuracy": 0.5}}}
    card = ModelCard.from_dict(values)
    assert card.classes == ("x", "y") and card.extra == {"future_field": {"a": 1}} and card.preset is None
    assert card.to_dict() == {**values, "input_size": [48, 48, 1]}
    write_card(tmp_path / "m.keras", card)
    assert read_card(tmp_path / "m.keras") == card
    assert read_card(tmp_path / "absent.keras") == ModelCard(name="absent")


def test_model_facts_tell_tta_and_training_time():
    def model_facts(values: dict) -> list[str]:
        return ModelCard.from_dict(values).facts()

    card = {"selection": {"members": 1, "views": [[0, 0, False], [0, 0, True]], "selected_on": "validation"},
            "epochs_trained": 30, "training_seconds": 9000.0, "training_backend": "torch"}
    assert model_facts(card) == [
        "Averages 2 views of each face (test-time augmentation, chosen on the validation split).",
        "Trained 30 epochs in 2.5 h of training under Keras's torch backend.",
    ]
    assert model_facts({"selection": {"members": 3, "views": [], "selected_on": "validation"}}) == [
        "Averages 3 models (an ensemble, chosen on the validation split)."]
    assert model_facts({"name": "bare"}) == []
    two_runs = {"epochs_trained": 72, "training_seconds": 19994.0, "training_backend": "tensorflow+torch"}
    assert model_facts(two_runs) == [
        "Trained 72 epochs in 5.6 h of training under Keras's tensorflow and torch backends."]
    on_a_gpu = {"epochs_trained": 300, "training_seconds": 576.8, "training_backend": "jax",
                "training_device": "NVIDIA H200"}
    assert model_facts(on_a_gpu) == [
        "Trained 300 epochs in 10 min of training under Keras's jax backend on NVIDIA H200."]


def test_averages_mirror_image_reads_the_cards_views():
    def averages_mirror_image(values: dict) -> bool:
        return ModelCard.from_dict(values).averages_mirror_image

    assert averages_mirror_image({"selection": {"views": [[0, 0, False], [0, 0, True]]}})
    assert not averages_mirror_image({"selection": {"views": [[2, 0, False]]}})
    assert not averages_mirror_image({"selection": {"views": []}}) and not averages_mirror_image({})


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

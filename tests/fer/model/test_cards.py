"""Model cards (fer.model.cards): labels, unknown fields kept, facts told in words."""

from fer.model.cards import ModelCard, read_card, write_card


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
        "Trained 30 epochs in 2 h 30 min of training under Keras's torch backend.",
    ]
    assert model_facts({"selection": {"members": 3, "views": [], "selected_on": "validation"}}) == [
        "Averages 3 models (an ensemble, chosen on the validation split)."]
    assert model_facts({"name": "bare"}) == []
    two_runs = {"epochs_trained": 72, "training_seconds": 19994.0, "training_backend": "tensorflow+torch"}
    assert model_facts(two_runs) == [
        "Trained 72 epochs in 5 h 33 min of training under Keras's tensorflow and torch backends."]
    on_a_gpu = {"epochs_trained": 300, "training_seconds": 576.8, "training_backend": "jax",
                "training_device": "NVIDIA H200"}
    assert model_facts(on_a_gpu) == [
        "Trained 300 epochs in 9 min 37 s of training under Keras's jax backend on NVIDIA H200."]


def test_an_ensembles_card_tells_each_networks_time_and_recipe():
    """The shipped card sums three networks' 192 s into 577 s; each network's run is what took 3 minutes."""
    recipe = "python -m fer train --preset vgg40 --epochs 100 --seed {}"
    card = ModelCard.from_dict({
        "epochs_trained": 300, "training_seconds": 576.8, "training_backend": "jax", "recipe": recipe.format(3),
        "ensemble": [{"training_seconds": 192.3 + seed / 10, "recipe": recipe.format(seed)} for seed in (3, 4, 5)]})
    assert card.facts() == ["Each of its 3 networks trained 100 epochs in 3 min 13 s under Keras's jax backend "
                            "(9 min 37 s summed over the 3)."]
    assert card.recipes == [recipe.format(seed) for seed in (3, 4, 5)]
    assert ModelCard.from_dict({"recipe": "python -m fer train"}).recipes == ["python -m fer train"]
    assert ModelCard.from_dict({}).recipes == []


def test_model_facts_tell_how_training_spread_over_devices_and_processes():
    def placed(**placement) -> list[str]:
        return ModelCard.from_dict({"name": "m", "placement": placement}).facts()

    assert placed(backend="jax", strategy="DataParallel", devices=16, processes=2, device_kind="gpu") == [
        "Trained with DataParallel over 16 gpu devices in 2 processes."]
    assert placed(backend="tensorflow", strategy="MirroredStrategy", devices=2, processes=1, device_kind="gpu") == [
        "Trained with MirroredStrategy over 2 gpu devices."]
    assert placed(backend="jax", strategy="one device", devices=1, processes=1, device_kind="cpu") == []


def test_averages_mirror_image_reads_the_cards_views():
    def averages_mirror_image(values: dict) -> bool:
        return ModelCard.from_dict(values).averages_mirror_image

    assert averages_mirror_image({"selection": {"views": [[0, 0, False], [0, 0, True]]}})
    assert not averages_mirror_image({"selection": {"views": [[2, 0, False]]}})
    assert not averages_mirror_image({"selection": {"views": []}}) and not averages_mirror_image({})


def test_lineage_says_where_a_model_came_from():
    from fer.model.cards import lineage_lines

    card = ModelCard.from_dict({
        "preset": "vgg40", "epoch": 68, "dataset": {"source": "/data/fer2013/images.zip", "fingerprint": "0a46"},
        "ensemble": [{"source": "s3/best.keras", "epoch": 68}, {"source": "s4/best.keras"}],
        "distillation": {"teachers": [{"path": "/models/big.keras"}], "alpha": 0.5, "temperature": 4}})
    assert lineage_lines(card) == ["Trained on images.zip (fingerprint 0a46).", "Preset vgg40, best at epoch 68.",
                                   "Averages s3/best.keras (epoch 68); s4/best.keras.", "Distilled from big."]
    assert lineage_lines(ModelCard.from_dict({})) == []

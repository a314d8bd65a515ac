"""fer.train.finetune: starting a run from a parent model (new head, freezing, ensembles, lineage, bad input)."""

import json

import keras
import numpy as np
import pytest

from fer.data.datasets import dataset_from_arrays
from fer.data.synthetic import make_faces
from fer.errors import FerError
from fer.model.cards import ModelCard, lineage_lines, read_card
from fer.model.files import load_model, save_model
from fer.model.presets import build_model, ensemble
from fer.train import finetune
from fer.train.loop import RunRecorder, train
from fer.train.run_dir import RunDir, RunState

NEW_CLASSES = ("bored", "confused", "focused")


def three_classes(per_class_train: int = 12, per_class_validation: int | None = 4):
    """A dataset of three new class names, made of synthetic faces (labels folded 7 → 3)."""
    images, labels = make_faces(per_class_train * 3, seed=1)
    splits = {"train": (images[:per_class_train * 3 * 3], labels[:per_class_train * 3 * 3] % 3)}
    if per_class_validation:
        images, labels = make_faces(per_class_validation * 3, seed=2)
        splits["validation"] = (images[:per_class_validation * 9], labels[:per_class_validation * 9] % 3)
    return dataset_from_arrays(splits, classes=NEW_CLASSES)


def learned(model):
    """Every conv, batch-norm and dense weight of `model`, in order (heads included)."""
    return [weight.copy() for weight in model.get_weights()]


def last_convolution(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]


@pytest.fixture(scope="module")
def ensemble_parent(tmp_path_factory, tiny_model_path):
    """Two tiny networks averaged, saved as one file like the shipped model."""
    first, _ = load_model(tiny_model_path)
    keras.utils.set_random_seed(7)
    second = build_model("tiny")
    path = tmp_path_factory.mktemp("parents") / "pair.keras"
    return save_model(ensemble([first, second]), path, ModelCard(name="pair", preset="tiny"))


def test_new_classes_get_a_new_head_on_the_parents_backbone(tiny_model_path):
    parent, _ = load_model(tiny_model_path)
    config = finetune.finetune_config(tiny_model_path, new_head="features")
    model = finetune.starting_model(config, NEW_CLASSES)
    assert model.output_shape == (None, 3)
    assert model.get_layer(finetune.HEAD).get_weights()[0].shape == (64, 3)
    parent_backbone = [w for layer in parent.layers if layer.name != finetune.HEAD for w in layer.get_weights()]
    backbone = [w for layer in model.layers if layer.name != finetune.HEAD for w in layer.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(parent_backbone, backbone, strict=True))


def test_the_same_classes_keep_the_head_and_train_everything_at_a_lower_rate(tiny_model_path):
    parent, card = load_model(tiny_model_path)
    config = finetune.finetune_config(tiny_model_path)
    model = finetune.starting_model(config, card.classes)
    assert all(np.array_equal(a, b) for a, b in zip(learned(parent), learned(model), strict=True))
    assert finetune.phases(config, card.classes) == [finetune.Phase(0, 20, pytest.approx(1e-4), True)]


def test_new_classes_train_the_head_alone_then_the_backbone_slower(tiny_model_path):
    config = finetune.finetune_config(tiny_model_path, epochs=8, head_epochs=3)
    assert finetune.phases(config, NEW_CLASSES) == [finetune.Phase(0, 3, 1e-3, False),
                                                    finetune.Phase(3, 8, pytest.approx(1e-4), True)]


def test_freezing_leaves_the_head_trainable_and_batch_norm_frozen_throughout(tiny_model_path):
    model = finetune.starting_model(finetune.finetune_config(tiny_model_path, new_head="features"), NEW_CLASSES)
    finetune.set_backbone_trainable(model, False)
    assert [weight.path for weight in model.trainable_weights] == \
        [weight.path for weight in model.get_layer(finetune.HEAD).weights]
    finetune.set_backbone_trainable(model, True)
    trainable = {weight.path for weight in model.trainable_weights}
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert convolutions and norms
    assert all(weight.path in trainable for layer in convolutions for weight in layer.trainable_weights)
    assert not any(weight.path in trainable for layer in norms for weight in layer.weights)


def test_a_run_from_a_parent_trains_the_head_first_and_records_its_lineage(tiny_model_path, tmp_path):
    parent, _ = load_model(tiny_model_path)
    backbone_before = last_convolution(parent).get_weights()
    config = finetune.finetune_config(tiny_model_path, epochs=2, head_epochs=1, batch_size=16, new_head="features")
    result = train(three_classes(), config, tmp_path / "run")
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in metrics] == [1, 2]
    assert [record["lr"] for record in metrics] == [pytest.approx(1e-3), pytest.approx(1e-4)]
    card = read_card(result.model_path)
    assert card.classes == NEW_CLASSES
    lineage = card.lineage
    assert lineage.parent == "tiny" and lineage.fingerprint == finetune.fingerprint(tiny_model_path)
    assert lineage.new_head and lineage.parent_classes[0] == "angry"
    assert lineage.recipe == ("new head: a fresh softmax layer on the features the parent's head read",
                              "epochs 1-1: new head only, backbone frozen, learning rate 0.001",
                              "epochs 2-2: whole network, learning rate 0.0001")
    assert card.facts()[0].startswith("Fine-tuned from tiny (file ")
    assert json.loads(result.model_path.with_suffix(".json").read_text())["lineage"]["parent"] == "tiny"
    assert card.hyperparameters["parent"] == str(tiny_model_path)
    trained, _ = load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    # The backbone moved in the second phase (the first one left it, the test below checks that).
    assert not all(np.array_equal(a, b) for a, b in zip(backbone_before, last_convolution(trained).get_weights()))


def test_the_head_phase_leaves_the_backbone_as_the_parent_had_it(tiny_model_path, tmp_path):
    parent, _ = load_model(tiny_model_path)
    config = finetune.finetune_config(tiny_model_path, epochs=1, head_epochs=1, batch_size=16, new_head="features")
    result = train(three_classes(), config, tmp_path / "run", evaluate_splits=False)
    trained, _ = load_model(result.model_path)
    for before, after in zip(parent.layers, trained.layers, strict=True):
        if before.name != finetune.HEAD:
            assert all(np.array_equal(a, b) for a, b in zip(before.get_weights(), after.get_weights()))


def test_an_ensemble_parent_fine_tunes_all_its_networks_or_the_first_few(ensemble_parent, tmp_path):
    from scipy.special import softmax

    every = finetune.starting_model(finetune.finetune_config(ensemble_parent, new_head="features"), NEW_CLASSES)
    assert len(finetune.networks(every)) == 2 and every.output_shape == (None, 3)
    first = finetune.starting_model(finetune.finetune_config(ensemble_parent, parent_members=1, new_head="features"),
                                    NEW_CLASSES)
    assert len(finetune.networks(first)) == 1
    config = finetune.finetune_config(ensemble_parent, epochs=1, head_epochs=0, batch_size=16)
    result = train(three_classes(), config, tmp_path / "run", evaluate_splits=False)
    trained, card = load_model(result.model_path)
    assert len(finetune.networks(trained)) == 2
    assert (card.lineage.members, card.lineage.parent_members) == (2, 2)
    faces = three_classes().splits["validation"].images[..., None].astype("float32")
    members = [network.predict(faces, verbose=0) for network in finetune.networks(trained)]  # Logits, by default.
    assert np.allclose(trained.predict(faces, verbose=0), softmax(np.mean(members, axis=0), axis=1), atol=1e-5)


def test_a_class_with_too_few_faces_is_told_how_many_are_needed(tiny_model_path):
    images, labels = make_faces(12, seed=1)
    labels = labels % 3
    keep = (labels != 2) | (np.cumsum(labels == 2) <= 4)  # 'focused' keeps 4 faces.
    dataset = dataset_from_arrays({"train": (images[keep], labels[keep])}, classes=NEW_CLASSES)
    with pytest.raises(FerError, match=r"at least 10 faces in every class: 'focused' has 4 \(add 6\)"):
        finetune.prepared_dataset(dataset, finetune.finetune_config(tiny_model_path))


def test_a_dataset_without_validation_gets_a_stratified_fifth_drawn(tiny_model_path):
    dataset = finetune.prepared_dataset(three_classes(per_class_validation=None),
                                        finetune.finetune_config(tiny_model_path))
    train_counts, validation_counts = dataset.counts()["train"], dataset.counts()["validation"]
    for name in NEW_CLASSES:
        assert validation_counts[name] == pytest.approx(0.2 * (train_counts[name] + validation_counts[name]), abs=1)
    assert not set(dataset.splits["train"].files) & set(dataset.splits["validation"].files)


def test_a_parent_whose_input_does_not_fit_is_refused_in_words(tmp_path):
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Dense(7, activation="softmax", name="probabilities")(keras.layers.Flatten()(inputs))
    path = save_model(keras.Model(inputs, outputs), tmp_path / "colour.keras", ModelCard(name="colour"))
    with pytest.raises(FerError, match=r"colour.keras takes 64×64×3 images, and FER Studio's faces are 48×48"):
        finetune.starting_model(finetune.finetune_config(path), NEW_CLASSES, three_classes())


def test_a_probe_head_starts_as_the_logistic_regression_on_the_networks_mean_probabilities(ensemble_parent):
    from scipy.special import softmax
    from sklearn.linear_model import LogisticRegression

    dataset = three_classes()
    parent, _ = load_model(ensemble_parent)
    model = finetune.starting_model(finetune.finetune_config(ensemble_parent, new_head="probe"), NEW_CLASSES, dataset)
    faces = {name: split.images[..., None].astype("float32") for name, split in dataset.splits.items()}
    seen = {name: parent.predict(images, verbose=0) for name, images in faces.items()}  # The mean of the two.
    labels = {name: split.labels for name, split in dataset.splits.items()}
    probes = [LogisticRegression(C=c, max_iter=2000).fit(seen["train"], labels["train"]) for c in finetune.PROBE_C]
    best = max(probes, key=lambda probe: probe.score(seen["validation"], labels["validation"]))
    assert np.allclose(model.predict(faces["validation"], verbose=0), best.predict_proba(seen["validation"]),
                       atol=1e-4)
    members = finetune.networks(model)
    assert len(members) == 2  # Each network keeps its own copy of the head, so each can move on its own.
    logits = np.mean([member.predict(faces["validation"], verbose=0) for member in members], axis=0)
    assert np.allclose(model.predict(faces["validation"], verbose=0), softmax(logits, axis=1), atol=1e-5)
    finetune.set_backbone_trainable(model, False)
    assert [weight.path for weight in model.trainable_weights] == \
        [weight.path for member in members for weight in member.get_layer(finetune.HEAD).weights]


def test_a_model_fine_tuned_with_a_probe_head_is_a_parent_again(ensemble_parent, tmp_path):
    first = finetune.finetune_config(ensemble_parent, epochs=1, head_epochs=1, batch_size=16)
    child = train(three_classes(), first, tmp_path / "child", evaluate_splits=False).model_path
    faces = three_classes().splits["validation"].images[..., None].astype("float32")
    model, _ = load_model(child)
    same = finetune.starting_model(finetune.finetune_config(child), NEW_CLASSES)  # Same classes: kept as it is.
    assert np.allclose(same.predict(faces, verbose=0), model.predict(faces, verbose=0), atol=1e-5)
    two = ("calm", "upset")
    splits = three_classes().splits
    pairs = dataset_from_arrays({split: (data.images, data.labels % 2) for split, data in splits.items()}, classes=two)
    grandchild = finetune.starting_model(finetune.finetune_config(child), two, pairs)
    probabilities = grandchild.predict(faces, verbose=0)
    assert probabilities.shape == (len(faces), 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_a_run_keeps_its_starting_model_when_no_epoch_reads_validation_better(tiny_model_path, tmp_path):
    # A rate of 1e-9 leaves every weight (almost) where it started: the epoch only ties the start, and a tie keeps it.
    dataset = three_classes()
    config = finetune.finetune_config(tiny_model_path, epochs=1, head_epochs=0, learning_rate=1e-9, batch_size=16)
    start = finetune.starting_model(config, NEW_CLASSES, dataset)
    faces = dataset.splits["validation"].images[..., None].astype("float32")
    hits = start.predict(faces, verbose=0).argmax(1) == dataset.splits["validation"].labels
    assert np.array_equal(finetune.validation_hits(start, dataset, config), hits)
    expected = float(hits.mean())

    result = train(dataset, config, tmp_path / "run", evaluate_splits=False)
    state = RunDir(tmp_path / "run").read_state()
    assert (state.best_epoch, state.best_val_accuracy) == (0, pytest.approx(expected, abs=1e-5))
    kept, card = load_model(result.model_path)
    assert card.epoch == 0 and card.metrics["validation"]["accuracy"] == pytest.approx(expected, abs=1e-5)
    assert np.allclose(kept.predict(faces, verbose=0), start.predict(faces, verbose=0), atol=1e-5)
    assert "no epoch of fine-tuning read the validation faces better by more than chance" in \
        " ".join(lineage_lines(card))
    assert RunDir(tmp_path / "run").read_start_hits() == hits.tolist()


@pytest.mark.parametrize("won, lost, better", [
    (1, 0, False),  # One face more: a coin does that half the time.
    (4, 0, False),  # p = 1/16.
    (5, 0, True),  # p = 1/32.
    (9, 3, False),  # p = 299/4096 = 0.073.
    (10, 3, True),  # p = 378/8192 = 0.046.
    (3, 3, False),
    (0, 4, False),
])
def test_an_epoch_reads_better_than_the_start_only_beyond_chance(won, lost, better):
    agreed = 100  # Faces both read right or both wrong do not count.
    start = np.array([True] * agreed + [False] * won + [True] * lost)
    epoch = np.array([True] * agreed + [True] * won + [False] * lost)
    assert finetune.reads_better(start, epoch) is better


def test_an_epoch_one_face_better_than_the_start_does_not_replace_it(tiny_model_path, tmp_path, monkeypatch):
    dataset = three_classes(per_class_validation=10)  # 30 validation faces.
    config = finetune.finetune_config(tiny_model_path, epochs=3)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    saved = []
    recorder = RunRecorder(run, RunState(), dataset, config, "val_accuracy", train_images=36)
    monkeypatch.setattr(recorder, "save_best", lambda model, record: saved.append(record["epoch"]))
    monkeypatch.setattr(RunDir, "save_checkpoint", lambda self, model: None)
    start = np.array([True] * 15 + [False] * 15)
    recorder.keep_start(None, start)
    epochs = [np.array([True] * 16 + [False] * 14),  # One face more: kept out.
              np.array([True] * 22 + [False] * 8)]  # Seven more, none lost: p = 1/128.
    monkeypatch.setattr(finetune, "validation_hits", lambda model, data, cfg: epochs.pop(0))
    for epoch, accuracy in enumerate((16 / 30, 22 / 30)):
        recorder.on_epoch_begin(epoch)
        recorder.on_epoch_end(epoch, {"accuracy": 0.9, "val_accuracy": accuracy})
    assert saved == [0, 2]
    assert (recorder.state.best_epoch, recorder.state.best_val_accuracy) == (2, pytest.approx(22 / 30, abs=1e-4))

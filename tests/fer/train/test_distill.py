"""fer.train.distill and the distillation presets: the loss by hand, a distilled student's card, the new presets.

Runs under whichever Keras backend KERAS_BACKEND names (TensorFlow by default; JAX was checked too).
"""

import keras
import numpy as np
import pytest

from fer.data.datasets import dataset_from_arrays
from fer.data.synthetic import make_faces
from fer.errors import FerError
from fer.labels import CLASSES
from fer.model.cards import ModelCard, read_card
from fer.model.files import load_model, save_model
from fer.model.presets import build_model, ensemble
from fer.train import distill
from fer.train.config import TrainConfig
from fer.train.loop import train


def softmax(logits, axis=-1):
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def test_the_distillation_loss_equals_a_hand_computation():
    rng = np.random.default_rng(0)
    student = softmax(rng.normal(size=(3, 7)) * 2)
    teacher = softmax(rng.normal(size=(3, 7)) * 3)
    labels = np.eye(7)[[0, 3, 6]]
    temperature, alpha, smoothing = 4.0, 0.7, 0.1

    teacher_soft = softmax(np.log(teacher) / temperature)
    student_soft = softmax(np.log(student) / temperature)
    kl = (teacher_soft * np.log(teacher_soft / student_soft)).sum(axis=1).mean()
    smoothed = labels * (1 - smoothing) + smoothing / 7
    cross_entropy = -(smoothed * np.log(student)).sum(axis=1).mean()
    by_hand = alpha * temperature**2 * kl + (1 - alpha) * cross_entropy

    loss = distill.distillation_loss(labels.astype("float32"), student.astype("float32"), teacher.astype("float32"),
                                     temperature=temperature, alpha=alpha, label_smoothing=smoothing)
    assert float(keras.ops.convert_to_numpy(loss)) == pytest.approx(by_hand, rel=1e-4)
    # The compiled label term and the added soft term sum to the same loss.
    label_part = keras.ops.mean(distill.LabelTerm(alpha, smoothing).call(labels, student.astype("float32")))
    soft_part = alpha * distill.distillation_term(teacher.astype("float32"), student.astype("float32"), temperature)
    assert float(keras.ops.convert_to_numpy(label_part + soft_part)) == pytest.approx(by_hand, rel=1e-4)


def test_a_student_identical_to_its_teacher_has_no_soft_loss():
    probabilities = softmax(np.random.default_rng(1).normal(size=(4, 7))).astype("float32")
    term = distill.distillation_term(probabilities, probabilities, 4.0)
    assert float(keras.ops.convert_to_numpy(term)) == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def small_dataset():
    return dataset_from_arrays({"train": make_faces(12, seed=1), "validation": make_faces(4, seed=2)})


@pytest.fixture(scope="module")
def ensemble_teacher(tmp_path_factory, small_dataset):
    """Two untrained 'tiny' networks averaged, saved as an ensemble file with a card naming its members."""
    keras.utils.set_random_seed(3)
    path = tmp_path_factory.mktemp("teacher") / "teachers.keras"
    members = [{"source": "a/best.keras", "validation_accuracy": 0.5}, {"source": "b/best.keras"}]
    return save_model(ensemble([build_model("tiny"), build_model("tiny")]), path,
                      ModelCard(name="teachers", preset="tiny", classes=CLASSES, ensemble=members,
                                metrics={"validation": {"accuracy": 0.61, "images": 28}}))


def test_a_distilled_student_records_its_teachers_and_is_a_plain_preset_model(small_dataset, ensemble_teacher,
                                                                                tmp_path):
    config = TrainConfig(preset="tiny", epochs=2, batch_size=16, teacher=str(ensemble_teacher),
                         distill_temperature=3.0, distill_alpha=0.8)
    result = train(small_dataset, config, tmp_path / "run")

    distillation = result.card.distillation
    assert (distillation.temperature, distillation.alpha) == (3.0, 0.8)
    (teacher,) = distillation.teachers
    assert teacher.path == str(ensemble_teacher)
    assert teacher.validation_accuracy == 0.61
    assert teacher.members == ("a/best.keras", "b/best.keras")
    assert read_card(result.model_path).distillation == distillation  # The JSON round trip keeps it.
    assert result.card.hyperparameters["teacher"] == str(ensemble_teacher)

    student, _ = load_model(result.model_path)
    assert student.name == "tiny" and not distill.is_distillation_model(student)
    assert student.count_params() == build_model("tiny").count_params()  # No teacher inside.
    probabilities = student.predict(make_faces(1, seed=9)[0][..., None].astype("float32"), verbose=0)
    assert probabilities.shape == (7, 7) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert result.history and all("loss" in row for row in result.history)


def test_the_teacher_sees_the_batch_the_student_sees(ensemble_teacher):
    """The only random transforms in the training model are its own augment layer's: both models get its output."""
    model = distill.distillation_model(TrainConfig(preset="vgg40s", teacher=str(ensemble_teacher)), CLASSES)
    augment = model.get_layer("augment")
    assert augment.settings["shift_pixels"] == 4  # vgg40s's crop augmentation runs once, in the wrapper...
    student_augment = model.get_layer("student").get_layer("augment").settings
    assert student_augment["rotation_degrees"] == student_augment["zoom"] == student_augment["shift_pixels"] == 0
    assert not student_augment["horizontal_flip"]  # ...and not again inside the student.
    unscaled = model.get_layer("to_pixels").output
    assert model.get_layer("student").input is not None and model.get_layer("teacher").input is unscaled
    assert model.get_layer("student")._inbound_nodes[0].input_tensors[0] is unscaled


def test_a_missing_teacher_or_bad_weights_are_one_line_errors(small_dataset, tmp_path):
    with pytest.raises(FerError, match="teacher model not found"):
        train(small_dataset, TrainConfig(preset="tiny", epochs=1, teacher=str(tmp_path / "none.keras")),
              tmp_path / "run")
    with pytest.raises(FerError, match="between 0 and 1"):
        TrainConfig(distill_alpha=1.5)
    with pytest.raises(FerError, match="above 0"):
        TrainConfig(distill_temperature=0)


def test_the_soft_term_reaches_the_training_loss(ensemble_teacher):
    """With α = 1 the compiled label term is zero, so every bit of the loss is the teacher's term."""
    config = TrainConfig(preset="tiny", teacher=str(ensemble_teacher), distill_alpha=1.0)
    model = distill.distillation_model(config, CLASSES)
    model.compile(optimizer="adam", loss=distill.label_term(config))
    images, labels = make_faces(2, seed=4)
    loss = model.train_on_batch(images[..., None].astype("float32"), np.eye(7)[labels].astype("float32"))
    assert float(np.ravel(loss)[0]) > 0


def test_a_distillation_run_resumes_from_its_checkpoint(small_dataset, ensemble_teacher, tmp_path):
    config = TrainConfig(preset="tiny", epochs=1, batch_size=16, teacher=str(ensemble_teacher))
    train(small_dataset, config, tmp_path / "run", evaluate_splits=False)
    result = train(small_dataset, TrainConfig(**{**config.to_dict(), "epochs": 2}), tmp_path / "run",
                   evaluate_splits=False)
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert result.card.distillation.teachers[0].path == str(ensemble_teacher)


# --- Random erasing, a recipe the FER papers credit -------------------------------------------------

"""fer.model.registry: the model the project ships, as users get it (the default model and the default face
detector); models listed and resolved by name only, registered only into the user's folder."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

import fer.model.registry as registry
from fer.errors import FerError
from fer.labels import CLASSES
from fer.model.registry import DEFAULT_MODEL_NAME, default_model_path
from fer.paths import (MODELS_DIR, PROJECT_ROOT, SHIPPED_MODELS_DIR, published_models_dir, runs_dir,
                       user_models_dir)
from fer.serve.detection import DEFAULT_DETECTOR, make_detector
from fer.serve.prediction import Classifier, predict_file

ROOT = PROJECT_ROOT


@pytest.fixture(scope="module")
def shipped() -> Classifier:
    return Classifier.from_path(default_model_path())


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(default_model_path().with_suffix(".json").read_text())


def test_the_default_model_is_the_shipped_file():
    assert default_model_path() == MODELS_DIR / f"{DEFAULT_MODEL_NAME}.keras"


def test_the_cards_classes_are_the_models_outputs(shipped, card):
    assert tuple(card["classes"]) == CLASSES == shipped.classes
    assert shipped.model.output_shape == (None, len(card["classes"]))


def test_the_astronaut_reads_happy(shipped):
    photo = io.BytesIO()
    Image.fromarray(data.astronaut()).save(photo, format="JPEG", quality=90)
    result = predict_file("astronaut.jpg", photo.getvalue(), shipped, make_detector(DEFAULT_DETECTOR))
    assert result.ok, result.error
    assert len(result.faces) == 1 and not result.faces[0].whole_image  # Found by the detector, not a fallback.
    face = result.faces[0]
    assert face.label == "happy", face.probabilities
    assert face.confidence > 0.5


@pytest.mark.shared_data
def test_validation_accuracy_on_fer2013_is_the_cards(card, shared_zip):
    # As users run it, in a fresh process (which also catches a custom layer that only loads when a test
    # happened to import its module first); no --model, so the CLI picks the default itself.
    finished = subprocess.run([sys.executable, "-m", "fer", "evaluate", "--dataset", str(shared_zip), "--json"],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr[-2000:]
    report = json.loads(finished.stdout)
    assert report["model"] == str(default_model_path())
    assert report["images"] == card["metrics"]["validation"]["images"] == 3589
    assert abs(report["accuracy"] - card["metrics"]["validation"]["accuracy"]) <= 0.002


def write_model(folder: Path, name: str, **card) -> Path:
    """An empty .keras file with a card: listing and resolving never open the model itself."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.keras"
    path.write_bytes(b"keras")
    path.with_suffix(".json").write_text(json.dumps({"name": name, "preset": "tiny", **card}))
    return path


def write_run(user: str | None, folder: str, status: str = "finished") -> Path:
    run = runs_dir(user) / folder
    write_model(run, "best")
    (run / "state.json").write_text(json.dumps({"status": status}))
    return run / "best.keras"


def test_the_shipped_model_is_listed_first_by_name_and_is_the_default():
    names = [model.name for model in registry.list_models()]
    assert "fer2013" in names
    shipped = registry.default_model()
    assert (shipped.name, shipped.path, shipped.shelf) == ("fer2013", SHIPPED_MODELS_DIR / "fer2013.keras", "shipped")
    assert registry.resolve_model("fer2013").path == shipped.path


def test_shelves_list_published_and_the_users_own_and_an_earlier_shelf_wins_a_name():
    write_model(published_models_dir(), "lab", created="2026-01-02")
    write_model(user_models_dir("ann"), "mine", created="2026-01-03")
    write_model(user_models_dir("ann"), "lab", created="2026-01-04")  # Hidden by the published one.
    write_model(user_models_dir("bob"), "bobs")
    models = {model.name: model for model in registry.list_models("ann")}
    assert models["lab"].shelf == "published" and models["mine"].shelf == "yours"
    assert "bobs" not in models
    assert models["mine"].label.startswith("mine") and models["lab"].label.endswith(" · published")


def test_finished_runs_are_chosen_as_run_names_inside_the_users_runs_only():
    best = write_run("ann", "tiny-20260101-000000")
    write_run("ann", "tiny-20260101-000001", status="running")
    write_run("bob", "tiny-20260101-000002")
    assert [model.name for model in registry.list_runs("ann")] == ["run:tiny-20260101-000000"]
    chosen = registry.resolve_model("run:tiny-20260101-000000", "ann")
    assert chosen.path == best and chosen.shelf == "run"
    with pytest.raises(FerError, match="no finished training run called 'tiny-20260101-000001'"):
        registry.resolve_model("run:tiny-20260101-000001", "ann")  # Still training.
    with pytest.raises(FerError, match="no finished training run"):
        registry.resolve_model("run:tiny-20260101-000002", "ann")  # Another user's run.


@pytest.mark.parametrize("hostile", [
    "/etc/passwd", "../../etc/passwd", "models/fer2013.keras", str(SHIPPED_MODELS_DIR / "fer2013.keras"),
    "fer2013.keras/..", "run:../bob/runs/x", "run:/etc", "run:", "", "~/x", "a\nb",
])
def test_paths_and_odd_text_are_refused_in_words_without_being_opened(hostile):
    with pytest.raises(FerError) as refused:
        registry.resolve_model(hostile)
    assert "/" not in str(refused.value) and "passwd" not in str(refused.value)


def test_a_legacy_h5_file_is_never_a_model_to_choose():
    folder = user_models_dir()
    folder.mkdir(parents=True)
    (folder / "old.h5").write_bytes(b"\x89HDF")
    assert "old" not in [model.name for model in registry.list_models()]
    with pytest.raises(FerError, match="no model called 'old.h5'"):
        registry.resolve_model("old.h5")


def test_register_writes_only_into_the_users_folder_and_refuses_taken_names(tmp_path):
    trained = write_model(tmp_path / "run", "best", created="2026-01-01")
    path = registry.register_model(trained, "mine", "ann", export=False)
    assert path == user_models_dir("ann") / "mine.keras" and path.read_bytes() == b"keras"
    assert json.loads(path.with_suffix(".json").read_text())["name"] == "mine"
    assert registry.resolve_model("mine", "ann").path == path
    write_model(published_models_dir(), "lab")
    for name, whose in (("fer2013", "the shipped model"), ("lab", "a published model"), ("mine", "one of your models")):
        with pytest.raises(FerError, match=f"taken by {whose}"):
            registry.register_model(trained, name, "ann", export=False)
    assert (SHIPPED_MODELS_DIR / "fer2013.keras").read_bytes() != b"keras"  # The shipped model is untouched.
    assert path.read_bytes() == b"keras"


def test_register_never_writes_over_a_card_left_under_the_name(tmp_path):
    trained = write_model(tmp_path / "run", "best")
    folder = user_models_dir()
    folder.mkdir(parents=True)
    (folder / "orphan.json").write_text("{}")
    with pytest.raises(FerError, match="already exist"):
        registry.register_model(trained, "orphan", export=False)
    assert (folder / "orphan.json").read_text() == "{}" and not (folder / "orphan.keras").exists()


def test_register_refuses_a_file_that_is_not_a_keras_model(tmp_path):
    legacy = tmp_path / "old.h5"
    legacy.write_bytes(b"\x89HDF")
    with pytest.raises(FerError, match="not a .keras model file"):
        registry.register_model(legacy, "old", export=False)


def test_the_cli_refuses_to_register_as_the_shipped_model_before_training(capsys):
    from fer.cli import main

    assert main(["train", "--dataset", "demo", "--preset", "tiny", "--epochs", "1", "--register", "fer2013"]) != 0
    assert "taken by the shipped model" in capsys.readouterr().err
    assert not runs_dir().exists()  # Refused before a run began.


def _own_copy(tiny_model_path, name: str = "mine") -> Path:
    """The tiny model registered as the user's own, with an ONNX export recorded on its card."""
    from fer.model.cards import Export, read_card, write_card
    from fer.paths import user_models_dir

    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.keras"
    shutil.copyfile(tiny_model_path, target)
    (folder / f"{name}.onnx").write_bytes(b"onnx")
    (folder / f"{name}.int8-static.onnx").write_bytes(b"int8")
    card = read_card(tiny_model_path).replace(
        name=name, serving=f"{name}.int8-static.onnx",
        exports=(Export("onnx", "float32", f"{name}.onnx"), Export("onnx", "int8-static", f"{name}.int8-static.onnx")))
    write_card(target, card)
    return target


def test_rename_moves_the_model_its_card_and_its_exports(tiny_model_path):
    from fer.model.cards import read_card
    from fer.model.registry import rename_model

    original = _own_copy(tiny_model_path)
    (original.parent / "mine.v2.keras").write_bytes(b"another model whose name starts the same")
    renamed = rename_model("mine", "keeper")
    assert sorted(path.name for path in renamed.parent.glob("keeper*")) == [
        "keeper.int8-static.onnx", "keeper.json", "keeper.keras", "keeper.onnx"]
    assert not list(renamed.parent.glob("mine.*.onnx")) and not (renamed.parent / "mine.keras").exists()
    assert (renamed.parent / "mine.v2.keras").exists()  # Another model's file is not this one's.
    card = read_card(renamed)
    assert card.name == "keeper" and card.serving == "keeper.int8-static.onnx"
    assert [export.file for export in card.exports] == ["keeper.onnx", "keeper.int8-static.onnx"]


def test_shipped_models_are_protected_and_names_checked(tiny_model_path):
    from fer.model.registry import delete_model, rename_model

    _own_copy(tiny_model_path)
    with pytest.raises(FerError, match="the model FER Studio ships; only your own models can be renamed"):
        rename_model("fer2013", "mine2")
    with pytest.raises(FerError, match="can be deleted"):
        delete_model("fer2013")
    with pytest.raises(FerError, match="taken by the shipped model"):
        rename_model("mine", "fer2013")
    with pytest.raises(FerError, match="must start with a letter or digit"):
        rename_model("mine", "../escape")
    with pytest.raises(FerError, match="no model called 'ghost'"):
        delete_model("ghost")


def test_delete_removes_every_file_and_the_default_choice(tiny_model_path):
    from fer.model.registry import chosen_default_name, default_model, delete_model, set_default_model

    model = _own_copy(tiny_model_path)
    set_default_model("mine")
    assert chosen_default_name() == "mine" and default_model().name == "mine"
    delete_model("mine")
    assert not list(model.parent.glob("mine.*"))
    assert chosen_default_name() is None and default_model().name == "fer2013"


def test_the_default_follows_a_rename(tiny_model_path):
    from fer.model.registry import chosen_default_name, rename_model, set_default_model

    _own_copy(tiny_model_path)
    set_default_model("mine")
    rename_model("mine", "keeper")
    assert chosen_default_name() == "keeper"


def test_an_admin_publishes_a_model_for_everyone_and_withdraws_it(monkeypatch):
    monkeypatch.setenv("FER_STUDIO_ADMINS", "ann")
    own = write_model(user_models_dir("ann"), "lab-model")
    own.with_suffix(".onnx").write_bytes(b"onnx")
    published = registry.publish_model("lab-model", "ann")
    assert published == published_models_dir() / "lab-model.keras"
    assert sorted(path.name for path in published_models_dir().iterdir()) == [
        "lab-model.json", "lab-model.keras", "lab-model.onnx"]
    assert not list(user_models_dir("ann").glob("lab-model.*"))  # Moved, not copied.
    for user in ("ann", "bob"):
        assert registry.resolve_model("lab-model", user).shelf == "published"
    with pytest.raises(FerError, match="a published model; only your own models can be deleted"):
        registry.delete_model("lab-model", "bob")
    with pytest.raises(FerError, match="only the server's administrators may withdraw"):
        registry.withdraw_model("lab-model", "bob")

    back = registry.withdraw_model("lab-model", "ann")
    assert back == user_models_dir("ann") / "lab-model.keras" and back.read_bytes() == b"keras"
    assert not list(published_models_dir().iterdir())
    with pytest.raises(FerError, match="no model called 'lab-model'"):
        registry.resolve_model("lab-model", "bob")


def test_only_an_admin_publishes_and_never_over_another_users_model(monkeypatch):
    monkeypatch.setenv("FER_STUDIO_ADMINS", "ann")
    write_model(user_models_dir("bob"), "shared-name")
    with pytest.raises(FerError, match="only the server's administrators may publish"):
        registry.publish_model("shared-name", "bob")
    write_model(user_models_dir("ann"), "shared-name")
    with pytest.raises(FerError, match="another user has a model called 'shared-name'"):
        registry.publish_model("shared-name", "ann")
    with pytest.raises(FerError, match="the model FER Studio ships; only your own models can be published"):
        registry.publish_model("fer2013", "ann")
    write_model(user_models_dir("ann"), "unique").with_suffix(".onnx").write_bytes(b"ann's export")
    published_models_dir().mkdir(parents=True)
    (published_models_dir() / "unique.onnx").write_bytes(b"left there")  # Not a model, but never written over.
    with pytest.raises(FerError, match="could not be published: a file of that name is already there"):
        registry.publish_model("unique", "ann")
    assert sorted(path.name for path in user_models_dir("ann").glob("unique.*")) == [
        "unique.json", "unique.keras", "unique.onnx"]  # Nothing moved.
    assert sorted(path.name for path in published_models_dir().iterdir()) == ["unique.onnx"]
    assert (published_models_dir() / "unique.onnx").read_bytes() == b"left there"
    assert (user_models_dir("bob") / "shared-name.keras").exists()

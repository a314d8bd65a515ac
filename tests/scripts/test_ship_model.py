"""scripts/ship_model.py: a run's best model → a shipped model with test-time augmentation and a full card."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers.run_files import write_run
from fer.data.datasets import open_dataset
from fer.model.cards import ModelCard
from fer.model.files import load_model
from fer.train.config import TrainConfig
from fer.train.loop import train
from fer.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT


def test_ship_model_picks_ensemble_and_tta_on_validation_and_writes_the_card(kaggle_folder, tmp_path):
    run = tmp_path / "run"
    train(open_dataset(kaggle_folder), TrainConfig(preset="tiny", epochs=1, batch_size=8), run, evaluate_splits=False)
    out = tmp_path / "shipped.keras"
    finished = subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_model.py"), str(run), "--name", "faces",
                               "--ensemble-with", str(run / "checkpoints" / "last.keras"), "--max-passes", "4",
                               "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    card = json.loads(out.with_suffix(".json").read_text())
    selection = card["selection"]
    names = list(selection["validation_accuracy"])
    assert names == ["none", "flip", "ensemble of 2", "ensemble of 2+flip", "shifts", "ensemble of 2+shifts"]
    assert [selection["forward_passes"][name] for name in names] == [1, 2, 2, 4, 10, 20]  # Cheapest first.
    assert selection["selected_on"] == "validation"
    assert selection["max_passes"] == 4 and selection["forward_passes"][selection["choice"]] <= 4
    allowed = [name for name in names if selection["forward_passes"][name] <= 4]
    accuracies = [selection["validation_accuracy"][name] for name in allowed]
    chosen = allowed.index(selection["choice"])
    # The cheapest choice within min_gain of the most accurate one of at most 4 passes.
    threshold = max(accuracies) - selection["min_gain"]
    assert accuracies[chosen] >= threshold - 1e-4 and all(cheaper < threshold + 1e-4 for cheaper in accuracies[:chosen])
    assert len(card.get("ensemble", [])) == (2 if selection["members"] == 2 else 0)
    assert card["metrics"]["validation"]["accuracy"] == selection["validation_accuracy"][selection["choice"]]
    assert card["metrics"]["train"]["images"] == 28 and card["name"] == "faces"
    assert card["recipe"].startswith(f"KERAS_BACKEND=tensorflow python -m fer train --dataset {kaggle_folder} "
                                     "--preset tiny --epochs 1 --batch-size 8")
    report = card["validation_report"]
    assert np.array(report["confusion_matrix"]).sum() == 14 and set(report["per_class"]) == set(card["classes"])
    report_script = str(ROOT / "scripts" / "model_report.py")
    markdown = subprocess.run([sys.executable, report_script, str(out.with_suffix(".json"))],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    assert "| true \\ predicted | angry | disgust |" in markdown and "| validation | 14 |" in markdown
    assert "among those of at most 4 passes" in markdown
    model, _ = load_model(out)
    assert model.predict(np.zeros((2, 48, 48, 1), "float32"), verbose=0).shape == (2, 7)
    # Exported as `python -m fer export --format onnx --quantise` does: float32 checked, the served variant kept.
    onnx = {entry["variant"]: entry for entry in card["exports"]}
    assert set(onnx) == {"float32", "float16", "int8-dynamic", "int8-static"}  # All measured ...
    assert onnx["float32"]["file"] == "shipped.onnx" and onnx["float32"]["max_abs_difference"] <= 1e-4
    served = tmp_path / card["serving"]  # ... and the served one kept beside the model.
    assert served.exists() and (tmp_path / "shipped.onnx").exists() and f"served: {served}" in finished.stdout


def test_ship_model_refuses_a_missing_member_with_a_message(tiny_model_path, tmp_path):
    # The member is checked before anything is scored, so a run written by hand (no training) will do.
    run = write_run(tmp_path / "run")
    shutil.copy(tiny_model_path, run / "best.keras")
    shutil.copy(tiny_model_path.with_suffix(".json"), run / "best.json")
    finished = subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_model.py"), str(run),
                               "--ensemble-with", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "x.keras")],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 1 and "missing.keras does not exist" in finished.stderr
    assert "Traceback" not in finished.stderr and not (tmp_path / "x.keras").exists()


def load_ship_model_script():
    spec = importlib.util.spec_from_file_location("ship_model", ROOT / "scripts" / "ship_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cards(*values: dict) -> list[ModelCard]:
    return [ModelCard.from_dict(value) for value in values]


def split(all_cards: list[ModelCard]) -> tuple[ModelCard, list[ModelCard]]:
    """The run's card and the members' cards, as separate_runs_training takes them."""
    return all_cards[0], all_cards[1:]


def test_ensemble_members_must_share_the_runs_classes_and_dataset():
    member_mismatch = load_ship_model_script().member_mismatch
    classes = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    run_card = {"classes": classes, "dataset": {"source": "a.zip", "fingerprint": "f1"}}
    sources = [Path("run/best.keras"), Path("other.keras")]
    same = {"classes": list(classes), "dataset": {"source": "copy/a.zip", "fingerprint": "f1"}}
    assert member_mismatch(sources, cards(run_card, same), "f1") is None
    reordered = {**same, "classes": classes[::-1]}
    assert "same classes in the same order" in member_mismatch(sources, cards(run_card, reordered), "f1")
    other_data = {**same, "dataset": {"source": "b.csv", "fingerprint": "f2"}}
    assert "trained on b.csv" in member_mismatch(sources, cards(run_card, other_data), "f1")
    unknown = {"classes": classes}  # Cards written before fingerprints were recorded are let through.
    assert member_mismatch(sources, cards(run_card, unknown), "f1") is None


def test_separate_runs_add_up_their_training_time_epochs_and_backends():
    separate_runs_training = load_ship_model_script().separate_runs_training
    run = {"training_seconds": 2700.0, "epochs_trained": 26, "training_backend": "tensorflow"}
    shipped = {"training_seconds": 17294.0, "epochs_trained": 46, "training_backend": "torch"}
    assert separate_runs_training(*split(cards(run, shipped))) == {
        "training_seconds": 19994.0, "epochs_trained": 72, "training_backend": "tensorflow+torch"}
    snapshot_card = {"training_seconds": 100.0, "epoch": 3}  # A run's best.json: no epochs_trained, no backend.
    assert separate_runs_training(*split(cards({"training_seconds": 50.0, "epochs_trained": 4}, snapshot_card))) == {
        "training_seconds": 150.0, "epochs_trained": 7, "training_backend": "tensorflow"}
    gpu_run = {"training_seconds": 192.3, "epochs_trained": 100, "training_backend": "jax",
               "training_device": "NVIDIA H200"}
    on_a_cpu = {**run, "training_device": "Intel Xeon, 2 cores"}
    assert separate_runs_training(*split(cards(gpu_run, gpu_run, on_a_cpu))) == {
        "training_seconds": 3084.6, "epochs_trained": 226, "training_backend": "jax+tensorflow",
        "training_device": "NVIDIA H200+Intel Xeon, 2 cores"}


def test_a_members_run_directory_supplies_its_whole_training_and_recipe(tmp_path):
    with_run_facts = load_ship_model_script().with_run_facts
    run = tmp_path / "member-run"
    run.mkdir()
    config = TrainConfig(preset="vgg40", epochs=26, seed=1)
    (run / "config.json").write_text(json.dumps({"config": config.to_dict(), "dataset": {"source": "faces.zip"}}))
    (run / "state.json").write_text(json.dumps({"epochs_done": 26, "best_epoch": 23, "training_seconds": 2816.61}))
    snapshot = {"epoch": 23, "training_seconds": 2545.5, "training_backend": "tensorflow"}  # best.keras's card
    completed = with_run_facts(run / "best.keras", ModelCard.from_dict(snapshot))
    assert completed.epochs_trained == 26 and completed.training_seconds == 2816.6
    assert completed.recipe.startswith("KERAS_BACKEND=tensorflow python -m fer train --dataset faces.zip "
                                          "--preset vgg40 --epochs 26")
    shipped = {"epochs_trained": 46, "training_seconds": 17293.6, "recipe": "KERAS_BACKEND=torch python -m fer …"}
    assert with_run_facts(tmp_path / "models" / "fer2013.keras", ModelCard.from_dict(shipped)).to_dict() == \
        ModelCard.from_dict(shipped).to_dict()

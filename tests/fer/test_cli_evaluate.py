"""`python -m fer evaluate`: the same numbers as fer.evaluate.scoring, as text or JSON; clear errors."""

from __future__ import annotations

import json
import shutil

import pytest

from fer.cli import main
from fer.data.datasets import open_dataset
from fer.evaluate.scoring import evaluate_split
from fer.labels import CLASSES
from fer.model.files import load_model
from fer.model.registry import DEFAULT_MODEL_NAME
from fer.paths import MODELS_DIR


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_report_matches_the_library(capsys, tiny_model_path, kaggle_folder):
    code, out, _ = run(capsys, "--model", tiny_model_path, "--dataset", kaggle_folder, "--split", "validation",
                       "--json")
    assert code == 0
    report = json.loads(out)
    model, card = load_model(tiny_model_path)
    truth = evaluate_split(model, card.classes, open_dataset(kaggle_folder), "validation").evaluation
    assert report["accuracy"] == pytest.approx(truth.accuracy, abs=1e-6)
    assert report["balanced_accuracy"] == pytest.approx(truth.balanced_accuracy, abs=1e-6)
    assert report["macro_f1"] == pytest.approx(truth.macro_f1, abs=1e-6)
    assert report["confusion_matrix"] == truth.confusion.tolist()
    assert report["classes"] == list(CLASSES) and list(report["per_class"]) == list(CLASSES)
    assert (report["split"], report["model"], report["images"], report["tta"]) == (
        "validation", str(tiny_model_path), 14, False)
    assert sum(map(sum, report["confusion_matrix"])) == 14
    assert report["per_class"]["happy"]["support"] == 2


def test_text_output_prints_the_same_numbers(capsys, tiny_model_path, kaggle_folder):
    code, out, _ = run(capsys, "--model", tiny_model_path, "--dataset", kaggle_folder, "--split", "train", "--tta")
    assert code == 0
    model, card = load_model(tiny_model_path)
    truth = evaluate_split(model, card.classes, open_dataset(kaggle_folder), "train", tta=True).evaluation
    assert "split 'train': 28 images  with flip TTA" in out
    assert f"accuracy                 {truth.accuracy:.4f}" in out
    assert f"macro F1                 {truth.macro_f1:.4f}" in out
    assert "confusion matrix (rows true, columns predicted):" in out
    happy_row = next(line for line in out.splitlines() if line.startswith("happy") and len(line.split()) == 8)
    assert [int(n) for n in happy_row.split()[1:]] == truth.confusion[3].tolist()


def test_model_defaults_to_the_shipped_model(capsys, kaggle_folder):
    code, out, _ = run(capsys, "--dataset", kaggle_folder, "--split", "validation", "--json")
    assert code == 0
    report = json.loads(out)
    shipped = MODELS_DIR / f"{DEFAULT_MODEL_NAME}.keras"
    assert report["model"] == str(shipped)
    model, card = load_model(shipped)
    truth = evaluate_split(model, card.classes, open_dataset(kaggle_folder), "validation").evaluation
    assert report["accuracy"] == round(truth.accuracy, 6) and report["macro_f1"] == round(truth.macro_f1, 6)


def test_a_model_with_other_classes_is_refused_clearly(capsys, tiny_model_path, kaggle_folder, tmp_path):
    other = tmp_path / "other.keras"
    shutil.copy(tiny_model_path, other)
    card = json.loads(tiny_model_path.with_suffix(".json").read_text())
    other.with_suffix(".json").write_text(json.dumps({**card, "classes": [f"c{i}" for i in range(7)]}))
    code, out, err = run(capsys, "--model", other, "--dataset", kaggle_folder)
    assert code == 2 and out == ""
    assert err.startswith("error: the model's classes (c0, c1") and "differ from the dataset's" in err


def test_bad_split_and_missing_model_are_one_line_errors(capsys, tiny_model_path, kaggle_folder, tmp_path):
    code, _, err = run(capsys, "--model", tiny_model_path, "--dataset", kaggle_folder, "--split", "test")
    assert code == 2 and "no 'test' split; it has: train, validation" in err
    code, _, err = run(capsys, "--model", tmp_path / "missing.keras", "--dataset", kaggle_folder)
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1

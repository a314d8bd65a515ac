"""scripts/ship_model.py: a run's best model → a shipped model with test-time augmentation and a full card."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from fer.datasets import open_dataset
from fer.models import load_model
from fer.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def test_ship_model_picks_tta_on_validation_and_writes_the_card(kaggle_folder, tmp_path):
    run = tmp_path / "run"
    train(open_dataset(kaggle_folder), TrainConfig(preset="tiny", epochs=1, batch_size=8), run, evaluate_splits=False)
    out = tmp_path / "shipped.keras"
    finished = subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_model.py"), str(run), "--name", "faces",
                               "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    card = json.loads(out.with_suffix(".json").read_text())
    tta = card["test_time_augmentation"]
    assert set(tta["validation_accuracy"]) == {"none", "flip", "shifts"} and tta["selected_on"] == "validation"
    accuracies = list(tta["validation_accuracy"].values())
    chosen = list(tta["validation_accuracy"]).index(tta["choice"])
    # More views only where they beat every choice with fewer views by the margin.
    assert all(accuracies[chosen] >= fewer + tta["min_gain"] for fewer in accuracies[:chosen])
    assert all(later < max(accuracies[:index]) + tta["min_gain"] for index, later in enumerate(accuracies)
               if index > chosen)
    assert card["metrics"]["validation"]["accuracy"] == tta["validation_accuracy"][tta["choice"]]
    assert card["metrics"]["train"]["images"] == 28 and card["name"] == "faces"
    assert card["recipe"].startswith(f"KERAS_BACKEND=tensorflow python -m fer train --dataset {kaggle_folder} "
                                     "--preset tiny --epochs 1 --batch-size 8")
    report = card["validation_report"]
    assert np.array(report["confusion_matrix"]).sum() == 14 and set(report["per_class"]) == set(card["classes"])
    markdown = subprocess.run([sys.executable, str(ROOT / "scripts" / "model_report.py"), str(out.with_suffix(".json"))],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    assert "| true \\ predicted | angry | disgust |" in markdown and "| validation | 14 |" in markdown
    model, _ = load_model(out)
    assert model.predict(np.zeros((2, 48, 48, 1), "float32"), verbose=0).shape == (2, 7)

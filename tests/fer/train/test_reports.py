"""fer.train.reports: the runs history table and the one-line summaries the Train page shows."""

import pytest

from helpers.run_files import record, write_run
from fer.train import jobs
from fer.train import reports as run_reports
from fer.model.augmentation import Augmentation
from fer.paths import runs_dir
from fer.train.config import TrainConfig


def test_runs_table_compares_metrics_time_and_config():
    config = TrainConfig(preset="tiny", epochs=2, learning_rate=3e-3, augmentation=Augmentation(contrast=0.2))
    write_run(runs_dir() / "a", config=config, records=[record(1), record(2)],
              state={"status": "finished", "epochs_done": 2, "best_val_accuracy": 0.25, "best_epoch": 2,
                     "training_seconds": 125, "registered_model": "/x/a.keras"})
    table = run_reports.runs_table(jobs.list_runs())
    row = table.iloc[0]
    assert row["run"] == "a" and row["status"] == "finished" and row["epochs"] == "2/2"
    assert row["best val acc"] == 25.0 and row["final val acc"] == pytest.approx(100 * record(2)["val_accuracy"])
    assert row["train time"] == "2m 05s" and row["learning rate"] == 3e-3 and row["model"] == "a"
    assert row["augmentation"] == "flip, rot ±20°, zoom 0.2, contrast 0.2"
    assert row["started from"] is None


def test_runs_table_names_the_model_a_run_started_from():
    write_run(runs_dir() / "b", config=TrainConfig(preset="vgg40", parent="/x/models/fer2013.keras"),
              state={"status": "finished", "epochs_done": 1})
    write_run(runs_dir() / "c", config=TrainConfig(preset="vgg40", parent="/x/runs/b/best.keras"),
              state={"status": "finished", "epochs_done": 1})
    table = run_reports.runs_table(jobs.list_runs()).set_index("run")
    assert (table.loc["b", "started from"], table.loc["c", "started from"]) == ("fer2013", "b")


@pytest.mark.parametrize("augmentation, text", [
    (None, "preset"),
    (Augmentation(rotation_degrees=0, zoom=0, horizontal_flip=False), "off"),
    (Augmentation(horizontal_flip=False, rotation_degrees=0, zoom=0, shift_pixels=4, crop_size=40),
     "shift 4px, crop 40"),
])
def test_describe_augmentation(augmentation, text):
    assert run_reports.describe_augmentation(augmentation) == text


@pytest.mark.parametrize("seconds, text", [(None, "–"), (42.4, "42s"), (185, "3m 05s"), (3725, "1h 02m")])
def test_format_duration(seconds, text):
    assert run_reports.format_duration(seconds) == text


def test_describe_epoch():
    line = run_reports.describe_epoch(record(2), epochs=3)
    assert line == ("Epoch 2/3: train loss 1.8000, accuracy 30.0% · validation loss 1.9000, accuracy 25.0% · "
                    "300 images/s")
    partial = run_reports.describe_epoch({"epoch": 1, "loss": 2.0, "partial": True})
    assert partial.startswith("Epoch 1 (stopped part-way):")


@pytest.mark.parametrize(("epoch", "text"), [
    (4, "at epoch 4"),
    (0, "from its starting model: no epoch read the validation faces better by more than chance"),
    (None, "at an unknown epoch"),
])
def test_describe_best_epoch_says_when_a_fine_tuning_run_kept_its_start(epoch, text):
    assert run_reports.describe_best_epoch(epoch) == text

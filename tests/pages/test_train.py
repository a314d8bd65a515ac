"""The Train page (AppTest): the form (drawn from fer.train.config's declared settings) starts a job, the
live view follows it, a run waits in the queue with its position shown, stop/resume, history."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.app_pages import app_on_page
from fer.train import jobs
from fer.data.datasets import open_dataset
from fer.model.registry import list_models
from fer.paths import PROJECT_ROOT, jobs_dir, runs_dir
from fer.train.config import SETTINGS, TrainConfig
from fer.train.run_dir import RunDir
from helpers.run_files import TINY, record, write_run

ROOT = PROJECT_ROOT
PAGE = "pages/train.py"
THREE_EPOCHS = dataclasses.replace(TINY, epochs=3)
DEFAULTS = TrainConfig()


@pytest.fixture
def app(kaggle_folder):
    """The Train page on a small dataset (the demo set would be drawn afresh in every test's home)."""
    open_dataset(kaggle_folder)  # Decoded into the disk cache now, so the page's first open is instant.
    return app_on_page(PAGE, dataset=kaggle_folder, timeout=60)


def by_label(elements, label):
    return next(element for element in elements if element.label == label)


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def running_run(name: str, sleepers, **state) -> Path:
    """A run directory whose job (a sleeper) holds the lock and is training epoch 2 of 3."""
    run_dir = runs_dir() / name
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(run_dir)])
    sleepers.append(job)
    write_run(run_dir, state={"status": "running", "pid": job.pid, "epochs_done": 1, **state},
              records=[record(1)], config=THREE_EPOCHS, spec={"dataset": "demo", "config": THREE_EPOCHS.to_dict()},
              progress={"epoch": 2, "epochs": 3, "batch": 5, "batches": 10, "images_per_second": 250.0})
    jobs_dir().mkdir(parents=True, exist_ok=True)
    (jobs_dir() / "slot-1.lock").write_text(json.dumps({"pid": job.pid, "marker": name,
                                                         "run": str(run_dir.resolve())}))
    return run_dir


def test_page_offers_the_form_and_says_there_are_no_runs(app):
    from fer.train.config import DTYPE_POLICIES, OPTIMIZERS, SCHEDULES

    assert not app.exception
    assert any(option.startswith("tiny: ") for option in by_label(app.selectbox, "Model preset").options)
    # The form's choices are fer.train.config's, with TrainConfig's defaults selected.
    for label, choices, default in (("Optimizer", OPTIMIZERS, "adam"), ("Learning-rate schedule", SCHEDULES,
                                    "constant"), ("Compute precision", DTYPE_POLICIES, "float32")):
        box = by_label(app.selectbox, label)
        assert (box.options, box.value) == (list(choices), default)
    assert by_label(app.selectbox, "Train split").value == "train"
    assert by_label(app.selectbox, "Validation split").value == "validation"
    assert "No training runs yet" in texts(app.info)


def test_start_launches_a_job_with_the_form_settings_and_shows_it(app, sleeping_jobs):
    by_label(app.selectbox, "Model preset").set_value("tiny")
    by_label(app.number_input, "Epochs").set_value(3)
    by_label(app.radio, "Augmentation").set_value("custom")
    app.run()  # The sliders can be changed once custom is chosen.
    by_label(app.slider, "Rotation (± degrees)").set_value(10)
    by_label(app.checkbox, "Class weights (inverse class frequency)").check()
    by_label(app.text_input, "Register the finished model as").input("my-model")
    by_label(app.selectbox, "Compute precision").set_value("mixed_bfloat16")
    by_label(app.button, "Start training").click()
    app.run()

    assert not app.exception
    [run_dir] = jobs.active_runs()
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert (config["preset"], config["epochs"], config["class_weights"]) == ("tiny", 3, True)
    assert config["dtype_policy"] == "mixed_bfloat16"
    assert config["augmentation"]["rotation_degrees"] == 10
    assert json.loads((run_dir / "job.json").read_text())["register_as"] == "my-model"
    assert "is training" in texts(app.info)
    assert "starting" in texts(app.markdown)


def test_a_run_without_a_name_is_not_registered(app, sleeping_jobs):
    """Registering is a choice: an empty name box no longer registers every finished run as itself."""
    by_label(app.selectbox, "Model preset").set_value("tiny")
    by_label(app.button, "Start training").click()
    app.run()
    assert not app.exception
    [run_dir] = jobs.active_runs()
    assert json.loads((run_dir / "job.json").read_text())["register_as"] is None


def test_a_bad_model_name_is_refused_in_the_page(app, sleeping_jobs):
    by_label(app.text_input, "Register the finished model as").input("no spaces allowed")
    by_label(app.button, "Start training").click()
    app.run()
    assert "Not started: model name" in texts(app.error)
    assert not sleeping_jobs


def test_live_view_shows_progress_curves_and_stop_requests_a_graceful_stop(app, sleeping_jobs):
    run_dir = running_run("live-run", sleeping_jobs)
    app.run()
    assert not app.exception
    progress = app.get("progress")[0].proto.text
    assert "Epoch 2/3 · batch 5/10 · 250 images/s · ETA" in progress
    assert "Last epoch · Epoch 1/3: train loss" in texts(app.caption)
    assert len(app.get("plotly_chart")) == 3

    by_label(app.button, "Stop").click()
    app.run()
    assert (run_dir / "STOP").exists()
    assert "stopping" in texts(app.markdown)


def test_failed_run_shows_the_error_and_log_and_can_resume(app, sleeping_jobs):
    run_dir = write_run(runs_dir() / "broken-run", state={"status": "failed", "epochs_done": 1,
                                                          "error": "ResourceExhaustedError: out of memory"},
                        records=[record(1)], spec={"dataset": "demo", "config": TINY.to_dict()},
                        log="epoch 1/2 ...\nTraceback (most recent call last):\nResourceExhaustedError: OOM\n")
    app.run()
    assert "Training failed: ResourceExhaustedError: out of memory" in texts(app.error)
    assert "Traceback (most recent call last)" in texts(app.code)

    by_label(app.button, "Resume").click()
    app.run()
    assert jobs.active_runs() == [run_dir.resolve()]
    assert json.loads((run_dir / "job.json").read_text())["resumed"] is not None


def test_finished_runs_fill_the_history_and_the_comparison(app):
    for name, created in (("run-a", 1.0), ("run-b", 2.0)):
        write_run(runs_dir() / name, records=[record(1), record(2)],
                  spec={"dataset": "demo", "config": TINY.to_dict(), "created": created},
                  state={"status": "finished", "epochs_done": 2, "best_val_accuracy": 0.25, "best_epoch": 2,
                         "training_seconds": 30, "registered_model": f"/models/{name}.keras"})
    app.run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["run"]) == ["run-b", "run-a"] and set(table["status"]) == {"finished"}
    assert "Registered as **run-b**" in texts(app.success)  # The newest run is shown by default.
    assert by_label(app.multiselect, "Compare runs").value == ["run-b", "run-a"]
    assert len(app.get("plotly_chart")) == 4  # Loss, accuracy, learning rate and the comparison.

    by_label(app.selectbox, "Run").set_value("run-a")
    app.run()
    assert "Registered as **run-a**" in texts(app.success)


def test_a_fine_tuning_run_that_kept_its_start_draws_the_start_and_stars_it(app):
    run = write_run(runs_dir() / "moods-run", records=[record(1, val_accuracy=0.70), record(2, val_accuracy=0.76)],
                    spec={"dataset": "demo", "config": TINY.to_dict(), "created": 1.0},
                    state={"status": "finished", "epochs_done": 2, "best_val_accuracy": 0.75, "best_epoch": 0,
                           "training_seconds": 30})
    RunDir(run).write_start_hits([True] * 3 + [False])  # 0.75; epoch 2's 0.76 did not pass the paired test.
    app.run()
    assert not app.exception
    assert "no epoch read the validation faces better by more than chance" in texts(app.success)
    accuracy = json.loads(app.get("plotly_chart")[1].proto.spec)
    traces = {trace.get("name"): trace for trace in accuracy["data"]}
    assert traces["start"]["y"] == [0.75, 0.75] and traces["start"]["x"] == [0, 2]
    assert (traces["kept"]["x"], traces["kept"]["y"]) == ([0], [0.75])


def slider_state(app) -> dict:
    """Label → (value, disabled) of the augmentation controls."""
    controls = [*app.slider, *app.select_slider, by_label(app.checkbox, "Horizontal flip")]
    return {control.label: (control.value, control.disabled) for control in controls
            if control.label not in ("Label smoothing", "Batch size")}


def test_augmentation_sliders_show_the_fixed_modes_values_disabled_and_custom_editable(app, sleeping_jobs):
    # Default: the preset's own (seed: rotation 20°, zoom 0.2, flip), shown but not editable.
    state = slider_state(app)
    assert state["Rotation (± degrees)"] == (20, True) and state["Horizontal flip"] == (True, True)
    assert all(disabled for _, disabled in state.values())

    by_label(app.selectbox, "Model preset").set_value("vgg40")
    app.run()
    state = slider_state(app)  # vgg40's own: random 40×40 crops, rotation 15°, shift 4, contrast 0.2.
    assert state["Rotation (± degrees)"] == (15, True) and state["Random crop size (0 = none)"] == (40, True)
    assert state["Shift (± pixels)"] == (4, True) and state["Contrast (±)"] == (0.2, True)

    by_label(app.radio, "Augmentation").set_value("off")
    app.run()
    state = slider_state(app)
    assert state["Rotation (± degrees)"] == (0, True) and state["Horizontal flip"] == (False, True)

    by_label(app.radio, "Augmentation").set_value("custom")
    app.run()
    state = slider_state(app)  # Custom starts from the seed recipe and can be changed.
    assert state["Rotation (± degrees)"] == (20, False) and not any(disabled for _, disabled in state.values())

    by_label(app.radio, "Augmentation").set_value("preset's own")
    by_label(app.button, "Start training").click()
    app.run()
    [run_dir] = jobs.active_runs()
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["preset"] == "vgg40" and config["augmentation"] is None  # The preset's own, as before.


def test_history_shows_a_running_runs_status_and_epochs_with_blank_unknowns_and_one_percent_format(app, sleeping_jobs):
    running_run("epoch-three", sleeping_jobs, epochs_done=2, best_val_accuracy=0.2723, best_epoch=2)
    app.run()
    assert not app.exception
    frame = app.dataframe[0]
    row = frame.value.iloc[0]
    assert (row["status"], row["epochs"], row["best val acc"]) == ("running", "2/3", pytest.approx(27.23))
    assert row["model"] is None  # Not registered yet: an empty cell, …
    assert frame.proto.HasField("placeholder") and frame.proto.placeholder == ""  # … shown blank, not "None".
    columns = json.loads(frame.proto.columns)
    assert {columns[name]["type_config"]["format"] for name in ("best val acc", "final train acc",
                                                                "final val acc")} == {"%.1f%%"}


def test_the_train_page_previews_the_presets_augmented_faces(kaggle_folder):

    app = app_on_page("pages/train.py", dataset=kaggle_folder, timeout=180)
    app.toggle(key="train_augmentation_preview").set_value(True).run()
    assert not app.exception, app.exception
    rows = list(app.get("image"))
    assert len(rows) == 6 and all(len(row.proto.imgs) == 7 for row in rows)  # Each face, then 6 draws.


def test_the_train_page_starts_a_distillation_run_from_a_registered_teacher(kaggle_folder, sleeping_jobs):
    """The Train page's teacher picker lists the registered models; the job gets the teacher, T and α."""
    import json

    from fer.data.datasets import open_dataset
    from fer.model.registry import list_models
    from fer.train import jobs

    open_dataset(kaggle_folder)
    at = app_on_page("pages/train.py", dataset=kaggle_folder, timeout=60)
    picker = next(box for box in at.selectbox if box.label == "Teacher (knowledge distillation)")
    registered = list_models()[0]
    teacher = str(registered.path)
    assert registered.card.label in picker.options and picker.value.startswith("(none")
    picker.set_value(teacher)
    at.run()
    next(box for box in at.number_input if box.label == "Distillation temperature T").set_value(2.0)
    next(box for box in at.slider if box.label == "Teacher's share of the loss (α)").set_value(0.7)
    next(button for button in at.button if button.label == "Start training").click()
    at.run()

    assert not at.exception
    [run_dir] = jobs.active_runs()
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert (config["teacher"], config["distill_temperature"], config["distill_alpha"]) == (teacher, 2.0, 0.7)


def widget(app, label):
    return next(element for kind in ("selectbox", "select_slider", "checkbox", "slider", "number_input")
                for element in app.get(kind) if element.label == label)


def another_value(setting):
    """A value the setting's widget offers that is not TrainConfig's default."""
    default = getattr(DEFAULTS, setting.field)
    if setting.choices is not None:
        return next(name for name in setting.choices if name != default)
    if setting.options is not None:
        return next(option for option in setting.options if option != default)
    if isinstance(default, bool):
        return not default
    value = default + setting.step
    return value if setting.maximum is None or value <= setting.maximum else default - setting.step


def test_every_declared_setting_has_its_widget_and_reaches_the_jobs_config(app, sleeping_jobs):
    teacher = str(list_models()[0].path)
    widget(app, "Teacher (knowledge distillation)").set_value(teacher)
    app.run()  # The distillation settings appear once a teacher is chosen.
    chosen = {}
    for setting in (setting for setting in SETTINGS if setting.group != "finetune"):  # Those: below.
        element = widget(app, setting.label)
        assert element.value == getattr(DEFAULTS, setting.field), setting.field  # Starts at the default.
        chosen[setting.field] = another_value(setting)
        element.set_value(chosen[setting.field])
    next(button for button in app.button if button.label == "Start training").click()
    app.run()

    assert not app.exception
    [run_dir] = jobs.active_runs()
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert {field: config[field] for field in chosen} == pytest.approx(chosen)
    assert config["teacher"] == teacher


def test_a_start_while_a_run_goes_waits_in_the_queue_and_shows_its_position(app, sleeping_jobs):
    busy = runs_dir() / "busy-run"  # A run whose job (a sleeper) holds the one slot.
    busy.mkdir(parents=True)
    (busy / "config.json").write_text(json.dumps({"config": DEFAULTS.to_dict(), "dataset": {"source": "demo"}}))
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(busy)])
    sleeping_jobs.append(job)
    jobs_dir().mkdir(parents=True, exist_ok=True)
    (jobs_dir() / "slot-1.lock").write_text(json.dumps({"pid": job.pid, "marker": busy.name,
                                                         "run": str(busy.resolve())}))
    next(button for button in app.button if button.label == "Start training").click()
    app.run()

    assert not app.exception
    assert "Queue position: **1**" in texts(app.info) and "queued" in texts(app.markdown)
    [waiting] = [run for run in jobs.list_runs() if run.status == "queued"]
    assert "queued (#1)" in list(app.dataframe[0].value["status"])
    assert [run.name for run in jobs.active_runs()] == ["busy-run"]

    next(button for button in app.button if button.label == "Leave the queue").click()
    app.run()
    assert not app.exception and jobs.run_summary(waiting.path).status == "stopped"
    assert [run.name for run in jobs.active_runs()] == ["busy-run"] and len(sleeping_jobs) == 1


def test_the_mlflow_switch_goes_into_the_job(app, sleepers, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("fer.train.tracking.mlflow_installed", lambda: True)
    app.run()
    switch = by_label(app.toggle, "Log to MLflow")
    assert (switch.value, switch.disabled) == (False, False)
    switch.set_value(True)
    by_label(app.button, "Start training").click()
    app.run()
    [run_dir] = runs_dir().iterdir()
    assert json.loads((run_dir / "job.json").read_text())["mlflow"] is True


def test_a_run_shows_the_devices_and_processes_it_trains_on(app, sleepers):
    placement = {"backend": "jax", "strategy": "DataParallel", "devices": 16, "processes": 2, "process_id": 0,
                 "device_kind": "gpu"}
    running_run("wide-run", sleepers, placement=placement)
    app.run()
    assert "Trains on DataParallel over 16 gpu devices in 2 processes under Keras's jax backend." in texts(app.caption)


def test_the_mlflow_switch_is_fixed_on_when_a_tracking_uri_is_set(kaggle_folder, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.org:5000")
    open_dataset(kaggle_folder)
    app = app_on_page(PAGE, dataset=kaggle_folder, timeout=60)
    switch = by_label(app.toggle, "Log to MLflow")
    assert (switch.value, switch.disabled) == (True, True)
    assert "http://mlflow.example.org:5000" in switch.help


def test_start_from_the_shipped_model_fills_in_the_small_data_recipe_and_the_job_gets_the_parent(
        kaggle_folder, sleeping_jobs):
    from fer.model.registry import resolve_model
    from pages.common import START_FROM_KEY

    open_dataset(kaggle_folder)
    app = app_on_page(PAGE, dataset=kaggle_folder, timeout=60)
    start = widget(app, "Start from")
    assert start.value == "" and start.options[:2] == ["random weights (train from scratch)",
                                                       "fer2013 · vgg40 · val acc 70.8% · shipped"]
    assert "Model preset" in [box.label for box in app.selectbox]
    app.session_state[START_FROM_KEY] = "fer2013"  # What Collect's "Fine-tune on these faces" sets.
    app.run()
    labels = [box.label for box in app.selectbox]
    assert "Model preset" not in labels and "Teacher (knowledge distillation)" not in labels
    assert "Compute precision" not in labels
    assert widget(app, "Epochs").value == 20 and widget(app, "Batch size").value == 32
    chosen = {}
    for setting in (setting for setting in SETTINGS if setting.group == "finetune"):
        element = widget(app, setting.label)
        assert element.value == getattr(TrainConfig(), setting.field), setting.field
        chosen[setting.field] = another_value(setting)
        element.set_value(chosen[setting.field])
    by_label(app.text_input, "Register the finished model as").input("my-faces")
    by_label(app.button, "Start training").click()
    app.run()

    assert not app.exception
    [run_dir] = jobs.active_runs()
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["parent"] == str(resolve_model("fer2013").path)
    assert {field: config[field] for field in chosen} == pytest.approx(chosen)
    assert (config["preset"], config["epochs"], config["batch_size"], config["augmentation"]) == ("vgg40", 20, 32, None)
    assert json.loads((run_dir / "job.json").read_text())["register_as"] == "my-faces"

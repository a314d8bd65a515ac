"""The Train page (AppTest): its form is drawn from fer.train.config's declared settings; a run waits in the
queue, with its position shown."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app_pages import app_on_page
from fer.data.datasets import open_dataset
from fer.model.registry import list_models
from fer.paths import jobs_dir, runs_dir
from fer.train import jobs
from fer.train.config import SETTINGS, TrainConfig

DEFAULTS = TrainConfig()


@pytest.fixture
def app(kaggle_folder):
    open_dataset(kaggle_folder)  # Decoded into the disk cache now, so the page's first open is instant.
    return app_on_page("pages/train.py", dataset=kaggle_folder, timeout=60)


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
    for setting in SETTINGS:
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


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


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

"""The Train page (AppTest): its form is drawn from fer.train.config's declared settings."""

from __future__ import annotations

import json

import pytest

from app_pages import app_on_page
from fer.data.datasets import open_dataset
from fer.model.registry import list_models
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

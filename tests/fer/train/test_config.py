"""fer.train.config: the training choices, TrainConfig, and the declared settings the Train form draws."""

from __future__ import annotations

from dataclasses import fields

import pytest

from fer.errors import FerError
from fer.train.config import FIELD_CHOICES, FORM_GROUPS, SETTINGS, TrainConfig, undeclared_fields


def test_every_trainconfig_field_is_declared_for_the_form_once():
    assert undeclared_fields() == set()
    declared = [setting.field for setting in SETTINGS]
    assert len(declared) == len(set(declared))
    assert set(declared) <= {item.name for item in fields(TrainConfig)}
    assert {setting.group for setting in SETTINGS} <= set(FORM_GROUPS)


def test_a_field_added_without_its_setting_is_reported(monkeypatch):
    from fer.train import config

    monkeypatch.setattr(config, "SETTINGS", tuple(s for s in SETTINGS if s.field != "label_smoothing"))
    assert config.undeclared_fields() == {"label_smoothing"}


def test_each_declared_setting_accepts_its_default_and_stays_in_its_bounds():
    defaults = TrainConfig()
    for setting in SETTINGS:
        default = getattr(defaults, setting.field)
        if setting.choices is not None:
            assert default in setting.choices and setting.choices is FIELD_CHOICES.get(setting.field, setting.choices)
        if setting.options is not None:
            assert default in setting.options
        if setting.minimum is not None:
            assert default >= setting.minimum, setting.field
        if setting.maximum is not None:
            assert default <= setting.maximum, setting.field


def test_a_config_outside_its_choices_is_refused_in_words():
    with pytest.raises(FerError, match="unknown optimizer 'rmsprop'; choose adam, adamw or sgd"):
        TrainConfig(optimizer="rmsprop")

"""Training configs (fer.train.config): checked in words, each choice declared once, round-tripping through JSON,
and the settings the Train form draws declared for every field."""

import json
from dataclasses import fields

import pytest

from fer.errors import FerError
from fer.train.config import FIELD_CHOICES, FORM_GROUPS, SETTINGS, TrainConfig, undeclared_fields



def test_bad_config_is_a_clear_error():
    with pytest.raises(FerError, match="unknown optimizer 'rmsprop'"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(FerError, match="epochs and batch size must be at least 1"):
        TrainConfig(epochs=0)
    with pytest.raises(FerError, match="unknown dtype policy 'float16'; choose float32 or mixed_bfloat16"):
        TrainConfig(dtype_policy="float16")


def test_each_choice_is_declared_once_beside_the_config_and_checked_from_there():
    from fer.train.config import FIELD_CHOICES, SCHEDULES

    defaults = TrainConfig()
    assert all(getattr(defaults, name) in choices for name, choices in FIELD_CHOICES.items())
    with pytest.raises(FerError, match="unknown schedule 'linear'; choose constant, cosine or plateau"):
        TrainConfig(schedule="linear")
    assert list(SCHEDULES) == ["constant", "cosine", "plateau"]


def test_config_round_trips_through_json():
    from fer.model.augmentation import CROP_AUGMENTATION

    config = TrainConfig(preset="vgg40", augmentation=CROP_AUGMENTATION, label_smoothing=0.1)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


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

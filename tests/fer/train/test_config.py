"""Training configs (fer.train.config): checked in words, each choice declared once, round-tripping through JSON."""

import json

import pytest

from fer.errors import FerError
from fer.train.config import TrainConfig


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

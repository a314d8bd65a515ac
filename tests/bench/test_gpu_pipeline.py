"""bench/gpu_pipeline.py's arithmetic: FLOPs counted from a model, and epochs sized from a probe."""

import importlib.util
import sys

import keras

from fer.paths import PROJECT_ROOT

SPEC = importlib.util.spec_from_file_location("gpu_pipeline", PROJECT_ROOT / "bench" /
                                              "gpu_pipeline.py")
pipeline = importlib.util.module_from_spec(SPEC)
sys.modules["gpu_pipeline"] = pipeline  # Its dataclasses look their module up there.
SPEC.loader.exec_module(pipeline)


def test_flops_count_each_conv_and_dense_layer_by_hand_and_look_inside_ensembles():
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    outputs = keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    by_hand = 2 * 48 * 48 * 3 * 3 * 1 * 8 + 2 * 8 * 7
    assert pipeline.flops_per_face(model) == by_hand
    from fer.model.presets import build_model, ensemble

    tiny = pipeline.flops_per_face(build_model("tiny"))
    assert pipeline.flops_per_face(ensemble([build_model("tiny"), build_model("tiny")])) == 2 * tiny


def test_epochs_fit_the_budget_after_what_the_probe_paid_once():
    probe = pipeline.Job("p", "teacher", "tiny", 3, epochs=2, wall_seconds=40.0, returncode=0,
                         epoch_seconds=[30.0, 2.0])
    assert pipeline.fitted_epochs(probe, 100, probe_epochs=2, max_epochs=100) == 32  # (100 − (40 − 2·2)) // 2
    assert pipeline.fitted_epochs(probe, 100, probe_epochs=2, max_epochs=10) == 10
    assert pipeline.fitted_epochs(probe, 10, probe_epochs=2, max_epochs=10) == 1  # Never below one epoch.
    failed = pipeline.Job("f", "teacher", "tiny", 3, returncode=1)
    assert pipeline.fitted_epochs(failed, 100, probe_epochs=2, max_epochs=10) == 0

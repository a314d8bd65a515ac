"""fer.train.tasks: the out-of-fold audit and the TFLite export in a child process holding a job slot."""

from __future__ import annotations

import numpy as np
import pytest

from fer.errors import FerError
from fer.explain.audit import OutOfFold
from fer.paths import jobs_dir
from fer.train import tasks


def test_out_of_fold_probabilities_come_from_a_child_process_with_its_progress(kaggle_folder):
    told = []
    probabilities = tasks.out_of_fold_in_child(str(kaggle_folder), "train", OutOfFold(folds=2, epochs=1),
                                               progress=lambda fraction, message: told.append((fraction, message)))
    assert probabilities.shape == (28, 7) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert any("training model 1 of 2" in message for _, message in told)
    assert not list(jobs_dir().glob("slot-*.lock"))  # The slot is free again.


def test_an_out_of_fold_audit_of_a_missing_split_fails_in_words(kaggle_folder):
    with pytest.raises(FerError, match="the out-of-fold audit failed: .*test"):
        tasks.out_of_fold_in_child(str(kaggle_folder), "test", OutOfFold(folds=2, epochs=1))


def test_a_tflite_export_of_a_missing_model_fails_in_words_at_once(tmp_path):
    with pytest.raises(FerError, match="could not make the TFLite files: there is no model file missing.keras"):
        tasks.make_tflite(tmp_path / "missing.keras")


def test_a_tflite_export_finds_every_slot_busy_in_words(model_copy, sleepers):
    from fer.train import jobs
    from fer.train.config import TrainConfig

    jobs.start_job("demo", TrainConfig(preset="tiny", epochs=1), spawn=sleepers.spawn)
    with pytest.raises(jobs.JobBusy, match="every job slot is busy .*TFLite export"):
        tasks.make_tflite(model_copy)

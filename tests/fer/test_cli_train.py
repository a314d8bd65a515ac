"""`fer train` on the command line: what it writes and where, quietly, and its command reproducing a config."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from fer.cli import main
from fer.errors import FerError
from fer.paths import PROJECT_ROOT
from fer.train.config import TrainConfig
from helpers.stand_ins import TENSORFLOW_START_UP

ROOT = PROJECT_ROOT


def test_train_writes_a_model_with_its_card(kaggle_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(kaggle_folder), "--preset", "tiny", "--epochs", "1",
                 "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "val_accuracy" in out
    assert (run / "best.keras").exists()
    assert json.loads((run / "best.json").read_text())["preset"] == "tiny"


def test_train_without_out_writes_its_run_under_the_studio_home_where_the_train_page_lists_it(
        kaggle_folder, fer_home, capsys):
    from fer.train import jobs

    assert main(["train", "--dataset", str(kaggle_folder), "--preset", "tiny", "--epochs", "1"]) == 0
    [run] = jobs.list_runs()  # What the Train page shows.
    assert run.path.parent == fer_home / "runs" and run.name.endswith("-tiny")
    assert (run.status, run.epochs_done) == ("finished", 1)
    assert f"run directory: {run.path}" in capsys.readouterr().out
    assert not (ROOT / "runs" / run.name).exists()  # Nothing in the checkout.


def test_train_on_a_terminal_prints_no_tensorflow_start_up_lines(kaggle_folder, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "fer", "train", "--dataset", str(kaggle_folder), "--preset", "tiny",
                           "--epochs", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("dataset: ") and "epoch 1/1" in done.stdout
    assert not [line for line in done.stderr.splitlines() if any(noise in line for noise in TENSORFLOW_START_UP)], \
        done.stderr


def test_train_help_lists_the_choices_declared_beside_train_config(capsys):
    from fer.train.config import FIELD_CHOICES

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for choices in FIELD_CHOICES.values():
        for name, description in choices.items():
            assert f"{name}: {description}" in help_text or f"{name} (the default): {description}" in help_text
    assert "$FER_STUDIO_HOME/runs" in help_text


def test_train_command_reproduces_the_config():
    import shlex

    from fer.cli import _parser, _train_config, train_command
    from fer.train.config import TrainConfig

    config = TrainConfig(preset="vgg40", epochs=30, optimizer="sgd", learning_rate=0.05, schedule="cosine",
                         warmup_epochs=2, weight_decay=5e-4, label_smoothing=0.1, class_weights=True)
    command = train_command(config, "data/images.zip", out="runs/x")
    assert command.startswith("python -m fer train --dataset data/images.zip --preset vgg40 --epochs 30")
    args = _parser().parse_args(shlex.split(command)[3:])
    assert _train_config(args) == config and args.out == "runs/x"


def test_train_options_left_out_take_the_seed_recipe_from_train_config():
    from fer.cli import _parser, _train_config
    from fer.train.config import TrainConfig

    args = _parser().parse_args(["train", "--dataset", "demo", "--epochs", "3"])
    assert _train_config(args) == TrainConfig(epochs=3)


def test_train_from_a_model_fine_tunes_it_and_records_the_parent(tiny_model_path, tmp_path, capsys):
    from helpers.dataset_files import write_faces

    from fer.model.cards import read_card

    moods = tuple(f"mood{number}" for number in range(7))
    write_faces(tmp_path / "moods", per_class=10, seed=4, classes=moods)
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(tmp_path / "moods"), "--from", str(tiny_model_path), "--epochs", "2",
                 "--head-epochs", "1", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"starting from: {tiny_model_path}" in out and "epoch 2/2" in out
    card = read_card(run / "best.keras")
    kept = "best model (from its starting model: no epoch read the validation faces better by more than chance)"
    assert (f"best model (at epoch {card.epoch}): " if card.epoch else kept) in out
    assert card.classes == moods and card.lineage.parent == "tiny" and card.lineage.new_head
    assert card.hyperparameters["batch_size"] == 32  # A small-data default, not the seed recipe's 64.


def test_train_from_a_model_with_too_few_faces_says_how_many_are_needed(tiny_model_path, tmp_path, capsys):
    from helpers.dataset_files import write_faces

    write_faces(tmp_path / "few", per_class=3, seed=4, classes=tuple(f"mood{number}" for number in range(7)))
    assert main(["train", "--dataset", str(tmp_path / "few"), "--from", str(tiny_model_path)]) == 2
    assert capsys.readouterr().err.startswith("error: fine-tuning needs at least 10 faces in every class: "
                                              "'mood0' has 3 (add 7)")


def test_train_command_reproduces_a_fine_tuning_config(tiny_model_path):
    import shlex

    from fer.cli import _parser, _train_config, train_command
    from fer.train.finetune import finetune_config

    config = finetune_config(tiny_model_path, epochs=12, head_epochs=4, parent_members=2)
    command = train_command(config, "faces")
    assert f"--from {tiny_model_path}" in command and "--members 2" in command
    assert _train_config(_parser().parse_args(shlex.split(command)[3:])) == config
    assert "--head-epochs" not in train_command(config.__class__(), "faces")


def test_the_cli_takes_a_teacher_and_its_command_line_reproduces_the_config():
    import shlex

    from fer.cli import _parser, _train_config, train_command

    config = TrainConfig(preset="vgg40s", teacher="runs/teachers.keras", distill_temperature=2.0, distill_alpha=0.9)
    command = train_command(config, "data/images.zip")
    assert "--teacher runs/teachers.keras --distill-temperature 2.0 --distill-alpha 0.9" in command
    assert _train_config(_parser().parse_args(shlex.split(command)[3:])) == config
    assert "--teacher" not in train_command(TrainConfig(), "data/images.zip")  # No teacher, no distillation options.


def test_the_cli_adds_random_erasing_to_the_presets_own_augmentation():
    import shlex

    from fer.cli import _parser, _train_config, train_command
    from fer.model.presets import PRESETS

    args = _parser().parse_args(["train", "--dataset", "demo", "--preset", "vgg40", "--random-erasing", "0.5"])
    config = _train_config(args)
    assert config.augmentation == dataclasses.replace(PRESETS["vgg40"].augmentation, erasing=0.5)
    assert _train_config(_parser().parse_args(shlex.split(train_command(config, "demo"))[3:])) == config
    with pytest.raises(FerError, match="random-erasing"):
        _train_config(_parser().parse_args(["train", "--dataset", "demo", "--random-erasing", "2"]))


def test_train_says_in_a_sentence_when_devices_or_hosts_cannot_be_had(kaggle_folder, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    options = ["train", "--dataset", str(kaggle_folder), "--preset", "tiny", "--out", str(run)]
    assert main([*options, "--devices", "2"]) == 2
    assert capsys.readouterr().err.startswith("error: --devices 2: TensorFlow sees 1 cpu device here")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1", "localhost:2"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    assert main(options) == 2
    assert "error: TF_CONFIG asks for 2 TensorFlow hosts (this is worker 0)" in capsys.readouterr().err
    assert not run.exists()

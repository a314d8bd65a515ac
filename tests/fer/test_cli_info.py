"""`fer info` on the command line: a dataset's classes, counts and skipped files, without loading Keras."""

import json
import os
import subprocess
import sys

from fer.cli import main
from fer.labels import CLASSES
from fer.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT


def test_info_json_lists_classes_counts_and_skipped(kaggle_folder, capsys):
    (kaggle_folder / "images" / "train" / "happy" / "bad.jpg").write_bytes(b"nope")
    assert main(["info", "--dataset", str(kaggle_folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classes"] == list(CLASSES)
    assert report["splits"]["train"] == {name: 4 for name in CLASSES}
    assert report["splits"]["validation"]["sad"] == 2
    assert [entry["file"] for entry in report["skipped"]] == ["images/train/happy/bad.jpg"]
    reason = report["skipped"][0]["reason"]
    assert reason.startswith("not a readable image (")  # In words, without a Python repr of the bytes.
    assert "object at 0x" not in reason and "<" not in reason


def test_info_table(fer_csv, capsys):
    assert main(["info", "--dataset", str(fer_csv)]) == 0
    out = capsys.readouterr().out
    assert "fer2013-csv" in out and "train" in out and "validation" in out and "test" in out
    assert out.splitlines()[2].startswith("angry")


def test_info_does_not_load_keras():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = "import sys; from fer.cli import main; main(['info', '--dataset', 'x']); print('keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]

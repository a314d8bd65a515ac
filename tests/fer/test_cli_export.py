"""`fer export` on the command line: what it writes and reports, quietly, and its errors."""

from __future__ import annotations

from fer.cli import main
from helpers.stand_ins import TENSORFLOW_START_UP


def test_cli_export_writes_onnx_and_reports_the_check(model_copy, capsys):
    assert main(["export", str(model_copy), "--format", "onnx"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("tiny.onnx: ") and "matches Keras within" in out
    assert model_copy.with_suffix(".onnx").exists()


def test_cli_export_on_a_terminal_prints_no_tensorflow_start_up_lines(model_copy):
    import os
    import subprocess
    import sys

    from fer.paths import PROJECT_ROOT

    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "fer", "export", str(model_copy), "--format", "onnx"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("tiny.onnx: "), done.stderr[-2000:]
    assert not [line for line in done.stderr.splitlines() if any(noise in line for noise in TENSORFLOW_START_UP)], \
        done.stderr


def test_cli_export_of_a_missing_model_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.keras"), "--format", "onnx"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'nope.keras'} is not a .keras model file; "
                                       "export takes a .keras file or a registered model's name\n")


def test_cli_export_of_a_shipped_model_is_refused_and_writes_nothing(capsys):
    from fer.paths import SHIPPED_MODELS_DIR

    before = {path.name: path.stat().st_mtime_ns for path in SHIPPED_MODELS_DIR.iterdir()}
    assert main(["export", "fer2013", "--format", "onnx"]) == 2
    assert capsys.readouterr().err.startswith("error: fer2013 is a shipped model, and shipped models are read-only: "
                                              "its served export is already beside it in ")
    assert {path.name: path.stat().st_mtime_ns for path in SHIPPED_MODELS_DIR.iterdir()} == before

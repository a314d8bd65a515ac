"""`python -m fer info|train`: output shapes and one-line errors with a non-zero exit."""

import os
import subprocess
import sys


from fer.cli import main
from fer.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["info", "--dataset", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert main(["train", "--dataset", "demo", "--preset", "nope", "--epochs", "1"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "fer", "info", "--dataset", str(tmp_path / "x.zip")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr

"""scripts/venv.sh: pip runs only when the requirements changed, whichever command ran last."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Stands in for python3: `python3 -m venv .venv` makes a .venv whose pip only logs its arguments.
FAKE_PYTHON = """#!/usr/bin/env bash
mkdir -p .venv/bin
printf '#!/usr/bin/env bash\\necho "$*" >> pip.log\\n' > .venv/bin/pip
chmod +x .venv/bin/pip
"""


def checkout(tmp_path: Path) -> Path:
    """A copy of the scripts and requirements files, with a fake python3 first on PATH."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "venv.sh", tmp_path / "scripts" / "venv.sh")
    for name in [path.name for path in ROOT.glob("requirements*.txt")]:
        shutil.copy(ROOT / name, tmp_path / name)
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def install(root: Path, requirements: str) -> int:
    """Run venv.sh as run.sh or test.sh does; the number of `pip install -r` calls it made."""
    env = {**os.environ, "PATH": f"{root / 'bin'}:{os.environ['PATH']}"}
    before = (root / "pip.log").read_text().count("-r ") if (root / "pip.log").exists() else 0
    subprocess.run(["bash", "scripts/venv.sh", requirements], cwd=root, env=env, check=True)
    return (root / "pip.log").read_text().count("-r ") - before


def test_alternating_app_and_tests_installs_once_each(tmp_path):
    root = checkout(tmp_path)
    assert install(root, "requirements-test.txt") == 1
    assert install(root, "requirements.txt") == 0  # The test tools' install covered the app.
    assert install(root, "requirements-test.txt") == 0
    assert install(root, "requirements.txt") == 0


def test_a_changed_requirements_file_installs_again(tmp_path):
    root = checkout(tmp_path)
    assert install(root, "requirements.txt") == 1
    assert install(root, "requirements-test.txt") == 1
    with open(root / "requirements.txt", "a") as requirements:
        requirements.write("# changed\n")
    assert install(root, "requirements.txt") == 1
    assert install(root, "requirements-test.txt") == 1


def test_a_version_changed_in_an_included_file_installs_the_tests_again(tmp_path):
    root = checkout(tmp_path)
    (root / "requirements-extra.txt").write_text("-r requirements.txt\nsomething==1\n")
    with open(root / "requirements-test.txt", "a") as requirements:
        requirements.write("-r requirements-extra.txt\n")
    assert install(root, "requirements-test.txt") == 1
    (root / "requirements-extra.txt").write_text("-r requirements.txt\nsomething==2\n")
    assert install(root, "requirements-test.txt") == 1
    assert install(root, "requirements.txt") == 0
